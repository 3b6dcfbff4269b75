import datetime as dt
import threading

import orjson
import pytest

from data.archive import Limits, LocalArchiveStore, StreamLog
from data.models import Segment, Stream


@pytest.fixture
def dataset_dirs(settings, tmp_path):
    """Uploads and the archive of each test in their own directories."""
    settings.DATASETS_DIR = tmp_path / "datasets"
    settings.DATA_ARCHIVE_DIR = tmp_path / "archive"
    return tmp_path


def index_segment(stream: Stream, sealed) -> Segment:
    """What the ingest plane does when a segment is sealed: index it."""
    return Segment.objects.create(
        stream=stream,
        first_seq=sealed.first_seq,
        last_seq=sealed.last_seq,
        records=sealed.records,
        bytes=sealed.bytes,
        path=sealed.path,
        sha256=sealed.sha256,
        first_at=dt.datetime.fromtimestamp(sealed.first_at_ms / 1000, tz=dt.UTC),
        last_at=dt.datetime.fromtimestamp(sealed.last_at_ms / 1000, tz=dt.UTC),
        sealed_at=dt.datetime.fromtimestamp(sealed.sealed_at_ms / 1000, tz=dt.UTC),
    )


@pytest.fixture
def archived_stream(dataset_dirs):
    """archived_stream(project, slug, batches) -> stream: each batch is (ingest ms,
    [records]) appended and sealed as one segment, indexed like the ingest plane does."""

    def make(project, slug: str, batches: list[tuple[int, list[dict]]]) -> Stream:
        stream = Stream.objects.create(project=project, name=slug, slug=slug)
        store = LocalArchiveStore(dataset_dirs / "archive")
        log = StreamLog(store, f"{project.slug}/{slug}", limits=Limits(records=10**9, seconds=10**9))
        n = 0
        for at_ms, rows in batches:
            durable = threading.Event()
            log.append(
                [(orjson.dumps(r), f"k{n + i}") for i, r in enumerate(rows)],
                on_durable=lambda exc, d=durable: d.set(),
                now_ms=at_ms,
            )
            assert durable.wait(10)
            n += len(rows)
            # Two hours later is another partition: the segment is due and seals.
            index_segment(stream, log.seal_if_due(now_ms=at_ms + 2 * 3600 * 1000))
        log.close()
        return stream

    return make
