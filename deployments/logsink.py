"""The prediction log's database side: what the serving processes' spool flushers call.

One `write` is one transaction: the log rows, the feedback rows, the per-minute stats
they add to, and the spool cursor that says they are stored. Rows are bulk-inserted;
MinuteStat rows are merged under a row lock, because several serving processes add to
the same minute."""

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from django.db import close_old_connections, transaction

from deployments import monitoring
from deployments.models import DroppedRecords, Feedback, MinuteStat, PredictionLog, SpoolCursor


def _at(record: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(record["t"], tz=UTC)


class DatabaseSink:
    def committed_offset(self, spool: str) -> int:
        close_old_connections()
        return SpoolCursor.objects.filter(name=spool).values_list("offset", flat=True).first() or 0

    def write(self, records: list[dict[str, Any]], *, spool: str, offset: int) -> None:
        close_old_connections()
        predictions = [_prediction(r) for r in records if r.get("k") != "f"]
        feedback = [
            Feedback(endpoint_id=r["e"], request_id=r["rid"][:64], actual=r.get("actual"), at=_at(r))
            for r in records
            if r.get("k") == "f"
        ]
        with transaction.atomic():
            PredictionLog.objects.bulk_create(predictions, batch_size=2000)
            Feedback.objects.bulk_create(feedback, batch_size=2000)
            _merge_minute_stats(predictions)
            SpoolCursor.objects.update_or_create(name=spool, defaults={"offset": offset})

    def dropped(self, count: int, *, reason: str, endpoint_id: int | None = None) -> None:
        close_old_connections()
        DroppedRecords.objects.create(endpoint_id=endpoint_id, count=count, reason=reason[:200])

    def forget(self, spool: str) -> None:
        close_old_connections()
        SpoolCursor.objects.filter(name=spool).delete()


def _prediction(record: dict[str, Any]) -> PredictionLog:
    return PredictionLog(
        endpoint_id=record["e"],
        revision_id=record.get("r"),
        request_id=str(record.get("rid", ""))[:64],
        role=record.get("role", "")[:12],
        status=record["s"],
        latency_ms=record["ms"],
        n_rows=record.get("n", 0),
        payload=record.get("payload", ""),
        error=record.get("err", ""),
        at=_at(record),
    )


def _merge_minute_stats(predictions: list[PredictionLog]) -> None:
    groups: dict[tuple, list[PredictionLog]] = defaultdict(list)
    for p in predictions:
        groups[(p.endpoint_id, p.revision_id or 0, p.role, p.at.replace(second=0, microsecond=0))].append(p)
    if not groups:
        return
    existing = {
        (s.endpoint_id, s.revision_id, s.role, s.minute): s
        for s in MinuteStat.objects.select_for_update().filter(
            endpoint_id__in={k[0] for k in groups}, minute__in={k[3] for k in groups}
        )
    }
    created = []
    for key, rows in groups.items():
        stat = existing.get(key)
        if stat is None:
            stat = MinuteStat(endpoint_id=key[0], revision_id=key[1], role=key[2], minute=key[3], histogram={})
            created.append(stat)
        stat.requests += len(rows)
        stat.errors += sum(1 for r in rows if r.status >= 500)
        stat.client_errors += sum(1 for r in rows if 400 <= r.status < 500)
        stat.latency_sum_ms += sum(r.latency_ms for r in rows)
        monitoring.histogram_add(stat.histogram, (r.latency_ms for r in rows))
        if key in existing:
            stat.save(update_fields=["requests", "errors", "client_errors", "latency_sum_ms", "histogram"])
    MinuteStat.objects.bulk_create(created)
