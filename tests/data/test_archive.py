"""The archive on its own: gap-free sequence numbers, dedup, sealing with manifests,
recovery of a torn tail, and one fsync covering concurrent appends."""

import os
import threading

import orjson
import pytest

from data import archive
from data.archive import ArchiveUnavailable, Limits, LocalArchiveStore, StreamLog


def records(n, start=0):
    return [(orjson.dumps({"i": i}), f"id-{i}") for i in range(start, start + n)]


def all_lines(store, key):
    return [r for rel in archive.stream_segments(store, key) for r in archive.read_records(store, rel)]


def test_appends_are_gap_free_deduplicated_and_sealed_with_a_manifest(tmp_path):
    store = LocalArchiveStore(tmp_path)
    sealed = []
    log = StreamLog(store, "p/s", limits=Limits(records=5), on_seal=sealed.append)
    first = log.append_sync(records(3))
    again = log.append_sync(records(4))  # ids 0-2 already in, 3 is new
    rest = log.append_sync(records(6, start=4))
    log.append_sync(records(1, start=10))  # finds the segment past its limit: seals it first
    log.close()
    assert (first.first_seq, first.last_seq, again.accepted, again.duplicates) == (0, 2, 1, 3)
    assert rest.first_seq == 4
    lines = all_lines(store, "p/s")
    assert [r["seq"] for r in lines] == list(range(11))
    assert [r["r"]["i"] for r in lines] == list(range(11))
    assert [(s.first_seq, s.last_seq) for s in sealed] == [(0, 9)]
    manifest = orjson.loads(store.read(sealed[0].path.replace(".jsonl", ".json")))
    assert manifest["sha256"] == __import__("hashlib").sha256(store.read(sealed[0].path)).hexdigest()


def test_recovery_trims_a_torn_line_and_keeps_dedup_keys(tmp_path):
    store = LocalArchiveStore(tmp_path)
    log = StreamLog(store, "p/s")
    log.append_sync(records(3))
    log.close()
    (open_rel,) = store.list("p/s", "dt=*/hr=*/*.jsonl.open")
    with open(store.local_path(open_rel), "ab") as handle:
        handle.write(b'{"seq":3,"t":1,"k":"x","r":{"i"')  # a write cut short by a crash
    reopened = StreamLog(store, "p/s")
    result = reopened.append_sync(records(5))
    reopened.close()
    assert (result.accepted, result.duplicates, result.first_seq) == (2, 3, 3)
    assert [r["seq"] for r in all_lines(store, "p/s")] == [0, 1, 2, 3, 4]


def test_concurrent_appends_share_fsyncs_and_get_distinct_sequences(tmp_path, monkeypatch):
    calls = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (calls.append(fd), real(fd))[1])
    store = LocalArchiveStore(tmp_path)
    log = StreamLog(store, "p/s")
    results = []

    def client(n):
        for j in range(20):
            results.append(log.append_sync(records(10, start=n * 1000 + j * 10)))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    seqs = sorted(s for r in results for s in range(r.first_seq, r.last_seq + 1))
    assert seqs == list(range(1600))
    assert len(calls) < len(results)  # group commit: fewer fsyncs than requests


def test_a_failed_write_keeps_nothing_and_the_next_one_continues_the_sequence(tmp_path, monkeypatch):
    store = LocalArchiveStore(tmp_path)
    log = StreamLog(store, "p/s")
    log.append_sync(records(2))
    real = os.write

    def full(fd, data):
        real(fd, bytes(data)[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(ArchiveUnavailable):
        log.append_sync(records(3, start=2))
    monkeypatch.setattr(os, "write", real)
    log.append_sync(records(3, start=2))
    log.close()
    assert [r["seq"] for r in all_lines(store, "p/s")] == [0, 1, 2, 3, 4]
