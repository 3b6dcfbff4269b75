"""Sealed segments: indexed, read back by the reader API (sha256 checked), compacted
to Parquet with the file's sha256; retention's dry run and deletion; the demo stream."""

from datetime import timedelta
import hashlib

import orjson
import pyarrow.parquet as pq
import pytest

from data import segments, services
from data.archive import Limits, LocalArchiveStore, StreamLog
from data.models import Segment
from data.source import segment_index
from mlplatform.models import AuditEvent


@pytest.fixture
def sealed(settings, tmp_path, project, user):
    """A stream whose archive holds 3 sealed segments of 4 records and 2 open ones."""
    settings.DATA_ARCHIVE_DIR = tmp_path / "archive"
    stream = services.stream_create(project=project, actor=user, name="S")
    sealed = []
    log = StreamLog(
        LocalArchiveStore(settings.DATA_ARCHIVE_DIR),
        f"{project.slug}/s",
        limits=Limits(records=4),
        on_seal=sealed.append,
    )
    for n in range(14):
        log.append_sync([(orjson.dumps({"n": n}), f"m:{n}")])
    log.close()
    return stream, sealed


def test_index_read_range_and_compaction(sealed):
    stream, done = sealed
    segment_index([(stream.pk, done[0])])  # the first was flushed; two were sealed before a crash
    assert segments.segments_index_missing(stream=stream) == 2
    assert list(Segment.objects.filter(stream=stream).values_list("first_seq", "last_seq")) == [(0, 3), (4, 7), (8, 11)]
    assert [r["r"]["n"] for r in segments.read_range(stream, 2, 13)] == list(range(2, 14))
    assert segments.segments_compact_pending() == 3
    segment = Segment.objects.get(stream=stream, first_seq=4)
    data = segments.store().read(segment.parquet_path)
    assert hashlib.sha256(data).hexdigest() == segment.parquet_sha256 and len(data) == segment.parquet_bytes
    table = pq.read_table(segments.store().local_path(segment.parquet_path))
    assert table.column("seq").to_pylist() == [4, 5, 6, 7]
    assert [orjson.loads(r)["n"] for r in table.column("record").to_pylist()] == [4, 5, 6, 7]
    assert segments.segments_compact_pending() == 0


def test_a_tampered_segment_is_refused(sealed):
    stream, done = sealed
    segments.segments_index_missing(stream=stream)
    segment = Segment.objects.get(stream=stream, first_seq=0)
    path = segments.store().local_path(segment.path)
    path.write_bytes(path.read_bytes().replace(b'"n":1', b'"n":9'))
    with pytest.raises(segments.SegmentCorrupt):
        list(segments.read_range(stream, 0, 3))


def test_retention_dry_run_lists_apply_deletes_and_guards_keep(
    sealed, user, monkeypatch, django_capture_on_commit_callbacks
):
    stream, _ = sealed
    segments.segments_index_missing(stream=stream)
    Segment.objects.filter(stream=stream).update(last_at=Segment.objects.first().last_at - timedelta(days=40))
    assert segments.stream_retention_apply(stream=stream, actor=user)["delete"] == []  # keeps forever
    services.stream_update(stream=stream, actor=user, retention_days=30)
    monkeypatch.setattr(segments, "RETENTION_GUARDS", [lambda s: s.first_seq == 4])
    dry = segments.stream_retention_apply(stream=stream, actor=user, dry_run=True)
    assert [d["first_seq"] for d in dry["delete"]] == [0] and len(dry["kept_referenced"]) == 1
    assert Segment.objects.filter(stream=stream).count() == 3  # newest (8) is never deleted
    path = Segment.objects.get(stream=stream, first_seq=0).path
    with django_capture_on_commit_callbacks(execute=True):
        applied = segments.stream_retention_apply(stream=stream, actor=user, dry_run=False)
    assert not applied["dry_run"]
    assert list(Segment.objects.filter(stream=stream).values_list("first_seq", flat=True)) == [4, 8]
    assert not segments.store().local_path(path).exists()
    assert AuditEvent.objects.filter(action="stream.retention").exists()
    log = StreamLog(segments.store(), f"{stream.project.slug}/s")
    assert log.next_seq() == 14  # the sequence goes on
    log.close()


def test_demo_stream_is_fed_over_http(live_asgi, settings, tmp_path, user, project):
    from data import demo

    settings.DATA_DIR = tmp_path
    stream = demo.seed(user, project)
    assert demo.seed(user, project) == stream and stream.tokens.count() == 1  # idempotent
    assert demo.feed(base_url=live_asgi, count=50) >= 45  # about 1 in 300 goes to the quarantine
