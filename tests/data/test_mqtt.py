"""MQTT ingestion against a real Mosquitto: topic patterns to streams, the PUBACK only
after the archive's fsync, redelivery after a failed write ending up exactly once,
bad payloads quarantined, and a broker restart survived."""

import os
import threading
import time

import orjson
import pytest

from data import archive, mqtt, services
from data.archive import LocalArchiveStore
from data.models import QuarantinedRecord
from tests.data.broker import broker, publisher  # noqa: F401
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db(transaction=True)


def wait_until(predicate, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def rows(store, stream):
    key = f"{stream.project.slug}/{stream.slug}"
    return [r for rel in archive.stream_segments(store, key) for r in archive.read_records(store, rel)]


@pytest.fixture
def mqtt_stream(broker):  # noqa: F811
    owner = UserFactory()
    project = make_project(owner=owner)
    return services.stream_create(
        project=project,
        actor=owner,
        name="Plant",
        source="mqtt",
        mqtt_url=broker.url,
        mqtt_topics=["plant/+/temp"],
    )


@pytest.fixture
def subscriber(tmp_path, settings):
    """mqtt.run in a thread, as runplatform runs it; yields (store, ingest handle)."""
    settings.DATA_ARCHIVE_DIR = tmp_path / "archive"
    stop = threading.Event()
    started = {}

    def build_and_run():
        ingestor, subs = mqtt.build(archive_dir=tmp_path / "archive")
        started["subs"] = subs
        original = mqtt.build
        try:
            mqtt.build = lambda **_: (ingestor, subs)
            mqtt.run(stop, interval=0.2)
        finally:
            mqtt.build = original

    thread = threading.Thread(target=build_and_run, daemon=True)
    thread.start()
    wait_until(lambda: "subs" in started and started["subs"].subscribers, what="a broker subscriber")
    subscriber = next(iter(started["subs"].subscribers.values()))
    wait_until(subscriber.connected.is_set, what="the subscription")
    yield LocalArchiveStore(tmp_path / "archive"), subscriber
    stop.set()
    thread.join(15)


def test_messages_are_archived_then_acknowledged_and_bad_ones_quarantined(mqtt_stream, broker, subscriber):  # noqa: F811
    store, sub = subscriber
    pub = publisher(broker)
    for i in range(20):
        pub.publish(f"plant/{i % 3}/temp", orjson.dumps({"n": i, "celsius": 20.0 + i}), qos=1).wait_for_publish(5)
    pub.publish("plant/9/temp", b"not json at all", qos=1).wait_for_publish(5)
    pub.publish("plant/9/temp", orjson.dumps({"n": 99, "celsius": "hot"}), qos=1).wait_for_publish(5)
    pub.publish("plant/9/humidity", orjson.dumps({"n": 100}), qos=1).wait_for_publish(5)  # no stream wants it
    wait_until(lambda: sub.acked >= 22, what="acknowledgements")
    archived = rows(store, mqtt_stream)
    assert sorted(r["r"]["n"] for r in archived) == list(range(20))
    assert [r["seq"] for r in archived] == list(range(20))
    held = {q.reason.split(":")[0]: q for q in QuarantinedRecord.objects.filter(stream=mqtt_stream)}
    assert held["Not a JSON document"].raw == "not json at all"
    assert any(q.payload == {"n": 99, "celsius": "hot"} for q in held.values())
    pub.loop_stop()


def test_no_puback_while_the_archive_fails_then_redelivered_exactly_once(mqtt_stream, broker, subscriber, monkeypatch):  # noqa: F811
    store, sub = subscriber
    pub = publisher(broker)
    pub.publish("plant/a/temp", orjson.dumps({"n": 0, "celsius": 1.5}), qos=1).wait_for_publish(5)
    wait_until(lambda: len(rows(store, mqtt_stream)) == 1 and sub.acked == 1, what="the first record")
    real = os.fdatasync
    failing = threading.Event()
    failing.set()

    def fdatasync(fd):
        if failing.is_set():
            raise OSError(28, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    generation = sub.generation
    for i in range(1, 6):
        pub.publish("plant/a/temp", orjson.dumps({"n": i, "celsius": 1.5}), qos=1)
    wait_until(lambda: sub.generation > generation, what="the subscriber to drop its connection")
    assert sub.acked == 1 and [r["r"]["n"] for r in rows(store, mqtt_stream)] == [0]
    failing.clear()
    wait_until(lambda: len(rows(store, mqtt_stream)) >= 6, what="the redelivered records")
    time.sleep(1)  # anything still redelivered would land now
    assert sorted(r["r"]["n"] for r in rows(store, mqtt_stream)) == list(range(6))
    pub.loop_stop()


def test_a_broker_restart_is_survived_without_loss(mqtt_stream, broker, subscriber):  # noqa: F811
    store, sub = subscriber
    pub = publisher(broker)
    sent = []

    def send(start, count):
        for i in range(start, start + count):
            pub.publish("plant/r/temp", orjson.dumps({"n": i, "celsius": 3.0}), qos=1)
            sent.append(i)

    send(0, 200)
    generation = sub.generation
    broker.restart()
    send(200, 200)
    wait_until(lambda: sub.generation > generation and sub.connected.is_set(), what="the subscriber to reconnect")
    wait_until(lambda: len(rows(store, mqtt_stream)) >= 400, timeout=60, what="every record")
    time.sleep(1)
    numbers = sorted(r["r"]["n"] for r in rows(store, mqtt_stream))
    assert numbers == list(range(400))
    pub.loop_stop()
