"""Reliability of ingestion, each with real processes, files and a real broker:
kill -9 of the HTTP and the MQTT ingest process in the middle of a steady stream,
50 concurrent HTTP clients, and a full disk (a small tmpfs as the archive)."""

import itertools
from pathlib import Path
import subprocess
import threading
import time

import orjson
import pytest
import requests

from data import archive, services
from data.archive import LocalArchiveStore
from tests.data.broker import broker, publisher  # noqa: F401
from tests.data.processes import Child, IngestProcess, reap
from tests.factories import UserFactory, make_project

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _reap_children():
    """No ingest process outlives its test (nor the test database under it)."""
    yield
    reap()


def wait_until(predicate, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def archived(archive_dir: Path, key: str) -> list[dict]:
    store = LocalArchiveStore(archive_dir)
    return [r for rel in archive.stream_segments(store, key) for r in archive.read_records(store, rel)]


def http_stream(**kwargs):
    owner = UserFactory()
    project = make_project(owner=owner)
    stream = services.stream_create(project=project, actor=owner, name="Line", **kwargs)
    _, token = services.ingest_token_create(stream=stream, actor=owner)
    return stream, token, f"{project.slug}/{stream.slug}"


def test_kill9_of_the_http_ingest_process_loses_nothing_acknowledged(tmp_path):
    # Given an ingest process taking batches from 8 clients
    stream, token, key = http_stream()
    archive_dir = tmp_path / "archive"
    process = IngestProcess(archive_dir).start()
    acknowledged, stop, numbers = set(), threading.Event(), itertools.count()
    lock = threading.Lock()

    def client():
        session = requests.Session()
        while not stop.is_set():
            with lock:
                batch = [next(numbers) for _ in range(10)]
            try:
                response = session.post(
                    f"{process.base}/ingest/{key}",
                    data=orjson.dumps([{"n": n, "v": n * 0.5} for n in batch]),
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=5,
                )
            except requests.RequestException:
                continue
            if response.status_code == 202:
                with lock:
                    acknowledged.update(batch)

    clients = [threading.Thread(target=client) for _ in range(8)]
    for t in clients:
        t.start()
    # When it is killed -9 in the middle of the stream
    wait_until(lambda: len(acknowledged) >= 2000, what="a steady stream")
    process.kill9()
    stop.set()
    for t in clients:
        t.join(10)
    # Then after a restart every acknowledged record is in the archive, once, in a
    # gap-free sequence (a torn last line, if any, is trimmed and its number reused)
    process = IngestProcess(archive_dir).start()
    try:
        after = requests.post(
            f"{process.base}/ingest/{key}", data=b'{"n": -1, "v": 0.0}', headers={"Authorization": f"Bearer {token}"}
        )
        assert after.status_code == 202
    finally:
        process.stop()
    rows = archived(archive_dir, key)
    assert [r["seq"] for r in rows] == list(range(len(rows)))
    found = [r["r"]["n"] for r in rows]
    assert len(found) == len(set(found))
    assert acknowledged <= set(found)


def test_50_concurrent_clients_every_record_once_gap_free(tmp_path):
    stream, token, key = http_stream()
    archive_dir = tmp_path / "archive"
    process = IngestProcess(archive_dir).start()
    results, errors = [], []

    def client(c):
        session = requests.Session()
        for b in range(10):
            batch = [{"_id": f"{c}-{b}-{i}", "c": c, "b": b, "i": i} for i in range(10)]
            response = session.post(
                f"{process.base}/ingest/{key}", data=orjson.dumps(batch), headers={"Authorization": f"Bearer {token}"}
            )
            (results if response.status_code == 202 else errors).append(response.json())

    threads = [threading.Thread(target=client, args=(c,)) for c in range(50)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        process.stop()
    assert errors == [] and len(results) == 500
    assert sum(r["accepted"] for r in results) == 5000
    rows = archived(archive_dir, key)
    assert [r["seq"] for r in rows] == list(range(5000))
    assert len({r["r"]["_id"] for r in rows}) == 5000
    positions = sorted((r["position"]["first_seq"], r["position"]["last_seq"]) for r in results)
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(positions))


def wait_subscribed(pub, archive_dir: Path, key: str) -> None:
    """Probes until the subscriber process has its session (before that, the broker
    keeps nothing for it)."""
    for probe in range(120):
        pub.publish("line/probe/v", orjson.dumps({"n": -1 - probe, "v": 0.0}), qos=1)
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            if archived(archive_dir, key):
                return
            time.sleep(0.05)
    raise AssertionError("the subscriber process never subscribed")


def test_kill9_of_the_mqtt_subscriber_redelivers_exactly_once(tmp_path, broker):  # noqa: F811
    owner = UserFactory()
    project = make_project(owner=owner)
    stream = services.stream_create(
        project=project, actor=owner, name="Mq", source="mqtt", mqtt_url=broker.url, mqtt_topics=["line/+/v"]
    )
    key = f"{project.slug}/{stream.slug}"
    archive_dir = tmp_path / "archive"
    subscriber = Child(["ingest_mqtt", "--interval", "0.2"], archive_dir).start()
    pub = publisher(broker)
    total = 3000

    def steady():
        for n in range(total):
            pub.publish(f"line/{n % 4}/v", orjson.dumps({"n": n, "v": n / 3}), qos=1)
            if n % 25 == 24:
                time.sleep(0.02)

    try:
        wait_subscribed(pub, archive_dir, key)
        sender = threading.Thread(target=steady)
        sender.start()
        wait_until(lambda: len(archived(archive_dir, key)) >= 500, what="a steady stream")
        subscriber.kill9()
        subscriber.start()
        sender.join(60)
        wait_until(lambda: len(archived(archive_dir, key)) >= total + 1, timeout=120, what="every message")
        time.sleep(1.5)  # a redelivered copy would land now
    finally:
        subscriber.stop()
        pub.loop_stop()
    rows = archived(archive_dir, key)
    assert sorted(r["r"]["n"] for r in rows if r["r"]["n"] >= 0) == list(range(total))
    assert [r["seq"] for r in rows] == list(range(len(rows)))


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Takes all but about `leave` bytes of the disk with a filler file."""
    filler = disk / "filler"
    import shutil

    free = shutil.disk_usage(disk).free
    filler.write_bytes(b"\0" * max(0, free - leave))
    return filler


def test_a_full_disk_answers_503_keeps_running_and_recovers(small_disk, send, plane, stream_token, settings):
    from data.plane import build_app

    stream, token = stream_token
    app = build_app(archive_dir=small_disk / "archive", poll_interval=0.1)
    send.app = app
    path = f"/ingest/{stream.project.slug}/{stream.slug}"
    key = f"{stream.project.slug}/{stream.slug}"
    try:
        assert send.post(path, b'{"n": 0, "pad": "x"}', token=token).status_code == 202
        filler = fill(small_disk, leave=48 * 1024)
        acknowledged, refused = {0}, 0
        for n in range(1, 400):
            body = orjson.dumps({"n": n, "pad": "x" * 1000})
            status = send.post(path, body, token=token).status_code
            if status == 202:
                acknowledged.add(n)
            else:
                assert status == 503
                refused += 1
                if refused >= 5:
                    break
        assert refused >= 5, "the disk never filled"
        # the process keeps running: every refusal is an answer, and space coming back is enough
        filler.unlink()
        for n in range(400, 410):
            assert send.post(path, orjson.dumps({"n": n, "pad": "y"}), token=token).status_code == 202
            acknowledged.add(n)
        rows = archived(small_disk / "archive", key)
        assert [r["seq"] for r in rows] == list(range(len(rows)))
        assert {r["r"]["n"] for r in rows} == acknowledged
    finally:
        app.ticker.stop()
        app.ingestor.close()


def test_a_full_disk_holds_the_puback_and_mqtt_resumes(small_disk, broker, settings):  # noqa: F811
    from data import mqtt

    owner = UserFactory()
    project = make_project(owner=owner)
    stream = services.stream_create(
        project=project, actor=owner, name="Mq", source="mqtt", mqtt_url=broker.url, mqtt_topics=["disk/#"]
    )
    key = f"{project.slug}/{stream.slug}"
    archive_dir = small_disk / "archive"
    ingestor, subscribers = mqtt.build(archive_dir=archive_dir)
    ingestor.refresh()
    subscribers.sync()
    sub = next(iter(subscribers.subscribers.values()))
    try:
        wait_until(sub.connected.is_set, what="the subscription")
        pub = publisher(broker)
        pub.publish("disk/a", orjson.dumps({"n": 0}), qos=1).wait_for_publish(5)
        wait_until(lambda: sub.acked == 1, what="the first ack")
        filler = fill(small_disk, leave=48 * 1024)
        for n in range(1, 200):
            pub.publish("disk/a", orjson.dumps({"n": n, "pad": "x" * 1000}), qos=1)
        wait_until(lambda: sub.generation > 2, what="a refused write")  # it dropped the connection
        acked_while_full = sub.acked
        assert acked_while_full < 200
        # Every acknowledged record is archived. Records fsync'd just before the refused
        # write may miss their PUBACK (the connection is already being dropped): the
        # broker redelivers them and dedup keeps one copy, checked below.
        assert len(archived(archive_dir, key)) >= acked_while_full
        filler.unlink()
        wait_until(lambda: len(archived(archive_dir, key)) >= 200, timeout=90, what="every message after space returns")
        time.sleep(1)
        assert sorted(r["r"]["n"] for r in archived(archive_dir, key)) == list(range(200))
        pub.loop_stop()
    finally:
        subscribers.stop()
        ingestor.close()
