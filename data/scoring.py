"""Live scoring: a stream that names a deployment endpoint has its records scored
through the serving plane in micro-batches (the Open Inference Protocol's `infer`, one
request per batch, each record a row, each top-level field a column) and the
predictions archived as a stream of their own, `<stream>-predictions`, each with the
record's sequence number and the endpoint revision that answered.

The predictions stream is its own cursor: its last record's `source_seq` says where to
go on, and its dedup key (`s:<source_seq>`) makes a batch retried after a crash land
once."""

import json
import urllib.error
import urllib.request

from django.db.models import F
from django.utils import timezone

from data import secrets, segments, services
from data.archive import LocalArchiveStore, tail
from data.models import SourceKind, Stream

BATCH = 500
BACKLOG = 1000  # a newly configured hook starts this far back, not at the beginning


def predictions_stream(stream: Stream) -> Stream:
    slug = f"{stream.slug}-predictions"[:50]
    found = Stream.objects.select_related("project").filter(project=stream.project, slug=slug).first()
    if found is None:
        found = services.stream_create(
            project=stream.project,
            actor=None,
            name=f"{stream.name} predictions"[:120],
            slug=slug,
            description=f"Predictions of endpoint '{stream.score_endpoint}' for the records of '{stream.slug}'.",
            source=SourceKind.HTTP,
        )
    return found


def _cursor(stream: Stream, predictions: Stream) -> int:
    store = LocalArchiveStore(segments.store().root)
    last = tail(store, segments.stream_key(predictions), 1)
    if last:
        return last[0]["r"]["source_seq"] + 1
    end = services.stream_log(stream).next_seq()
    return max(0, end - BACKLOG)


def _infer_body(records: list[dict]) -> dict:
    columns = [k for k, v in records[0].items() if k != "_id" and isinstance(v, (int, float, str, bool))]
    inputs = []
    for name in columns:
        values = [r.get(name) for r in records]
        if all(isinstance(v, bool) for v in values):
            datatype = "BOOL"
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            datatype, values = "FP64", [float(v) for v in values]
        else:
            datatype, values = "BYTES", ["" if v is None else str(v) for v in values]
        inputs.append({"name": name, "datatype": datatype, "shape": [len(values)], "data": values})
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}


def stream_score_once(*, stream: Stream, base_url: str) -> int:
    """Scores the next micro-batch of `stream`; returns how many predictions were
    archived (0 when there is nothing new). Raises urllib errors when the endpoint
    does not answer; the next call retries the same records."""
    if not stream.score_endpoint:
        return 0
    predictions = predictions_stream(stream)
    start = _cursor(stream, predictions)
    lines = []
    for line in segments.read_range(stream, start, start + BATCH - 1):
        if line["seq"] != start + len(lines):
            break  # a segment sealed but not indexed yet: score up to the gap
        lines.append(line)
    rows = [line for line in lines if isinstance(line["r"], dict)]
    if not rows:
        return 0
    slug = stream.score_endpoint
    request = urllib.request.Request(  # noqa: S310 - the platform's own serving URL
        f"{base_url}/serve/{slug}/v2/models/{slug}/infer",
        data=json.dumps(_infer_body([line["r"] for line in rows])).encode(),
        headers={"Content-Type": "application/json", **_auth(stream)},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        answer = json.loads(response.read())
    values = answer["outputs"][0]["data"]
    revision = answer.get("model_version")
    records = [
        (
            json.dumps(
                {"source_seq": line["seq"], "prediction": value, "endpoint": slug, "revision": revision},
                separators=(",", ":"),
            ).encode(),
            f"s:{line['seq']}",
        )
        for line, value in zip(rows, values, strict=False)
    ]
    result = services.stream_log(predictions).append_sync(records)
    Stream.objects.filter(pk=predictions.pk).update(
        records_total=F("records_total") + result.accepted, last_record_at=timezone.now()
    )
    return result.accepted


def _auth(stream: Stream) -> dict[str, str]:
    token = secrets.decrypt(stream.score_token)
    return {"Authorization": f"Bearer {token}"} if token else {}


def streams_score(*, base_url: str) -> dict[str, int | str]:
    """One pass over every stream with a scoring endpoint (the beat's task)."""
    outcome: dict[str, int | str] = {}
    for stream in Stream.objects.select_related("project").exclude(score_endpoint=""):
        try:
            outcome[segments.stream_key(stream)] = stream_score_once(stream=stream, base_url=base_url)
        except (OSError, urllib.error.URLError, KeyError, ValueError) as exc:
            outcome[segments.stream_key(stream)] = f"failed: {exc}"
    return outcome
