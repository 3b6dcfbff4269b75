"""The high-volume writes of a running job: log lines and metric points, in batches
(bulk inserts, no audit per row)."""

import base64
from datetime import datetime
import functools
import re
from urllib.parse import quote, quote_plus

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from jobs import events as job_events
from jobs import secrets
from jobs.models import Job, JobLogLine, JobMetric
from mlplatform import events

PROGRESS_METRIC = "progress"
# A live page needs only the tail; the rest is paged from the database.
MAX_LINES_PER_EVENT = 200


# Encoded forms shorter than this are not masked: a few base64 or hex characters
# occur in ordinary output too often.
MIN_ENCODED = 6


def mask(text: str, secrets: list[str]) -> str:
    pattern = _mask_pattern(tuple(secrets))
    return pattern.sub("****", text) if pattern is not None else text


@functools.lru_cache(maxsize=64)
def _mask_pattern(secrets: tuple[str, ...]) -> re.Pattern | None:
    """One alternation, longest first, so a value containing a shorter one is masked whole."""
    values = sorted({v for v in secrets if v}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, values))) if values else None


def encoded_forms(value: str) -> set[str]:
    """`value` as a job might print it to get past a plain mask: base64 (standard and
    URL-safe, also inside a longer encoded string: each of the three byte alignments,
    without the edge characters that depend on the neighbours), hex, URL-encoding."""
    raw = value.encode()
    forms = {value, raw.hex(), raw.hex().upper(), quote(value, safe=""), quote_plus(value)}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        forms.add(encode(raw).decode())
        for shift in range(3):
            text = encode(b"\0" * shift + raw).decode().rstrip("=")
            # The first `lead` characters carry bits of the bytes before the value; the
            # last one carries bits of the bytes after it unless the length fits exactly.
            lead = (0, 2, 3)[shift]
            tail = 0 if (shift + len(raw)) % 3 == 0 else 1
            forms.add(text[lead : len(text) - tail])
    return {form for form in forms if form == value or len(form) >= MIN_ENCODED}


def secrets_of(job: Job, extra: list[str] | None = None) -> list[str]:
    """The values to mask in everything the job prints, with their encoded forms.
    Masking is a courtesy against accidents (a value printed while debugging), not a
    boundary: code that has a secret can always get it out in a form no mask knows."""
    plain = secrets.decrypt_values(job.secret_env)
    values = [v for v in plain.values() if len(v) >= 3] + [v for v in (extra or []) if v]
    forms = set().union(*(encoded_forms(v) for v in values)) if values else set()
    return sorted(forms, key=len, reverse=True)


@transaction.atomic
def job_log_append(*, job: Job, start_seq: int, lines: list[str], secrets: list[str]) -> int:
    """Stores lines numbered from `start_seq` and streams them to the job's page.
    Returns the next sequence number."""
    if not lines:
        return start_seq
    now = timezone.now()
    masked = [mask(line, secrets)[:10_000] for line in lines]
    JobLogLine.objects.bulk_create(
        [JobLogLine(job_id=job.pk, seq=start_seq + i, text=text, created_at=now) for i, text in enumerate(masked)],
        batch_size=1000,
    )
    Job.objects.filter(pk=job.pk).update(log_lines=F("log_lines") + len(masked))
    tail = masked[-MAX_LINES_PER_EVENT:]
    events.publish(
        job_events.job_group(job.pk),
        "job.log",
        {"first_seq": start_seq + len(masked) - len(tail), "lines": tail, "skipped": len(masked) - len(tail)},
    )
    return start_seq + len(masked)


@transaction.atomic
def job_metrics_record(*, job: Job, points: list[tuple[str, float, int, datetime]]) -> None:
    """Stores metric points (key, value, step, timestamp), updates the job's progress
    from a `progress` metric, and streams them to the job's page."""
    if not points:
        return
    JobMetric.objects.bulk_create(
        [JobMetric(job_id=job.pk, key=k[:250], value=float(v), step=int(s), timestamp=t) for k, v, s, t in points]
    )
    progress = [v for k, v, _s, _t in points if k == PROGRESS_METRIC]
    if progress:
        value = max(0.0, min(1.0, float(progress[-1])))
        Job.objects.filter(pk=job.pk).update(progress=value)
        job.progress = value
    events.publish(
        job_events.job_group(job.pk),
        "job.metrics",
        {
            "points": [{"key": k, "value": v, "step": s, "ts": t.isoformat()} for k, v, s, t in points[-500:]],
            "progress": job.progress,
        },
    )
