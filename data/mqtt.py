"""MQTT ingestion: one paho client per broker, subscribed (QoS 1) to the topic patterns
of every stream on that broker, with a persistent session (clean_session false, a
client id that stays the same across restarts) and manual acknowledgement: the PUBACK
goes out only once the record is fsync'd in the archive.

A message the archive cannot take is not acknowledged. The broker sends an
unacknowledged QoS 1 message again only on a new connection, so the subscriber then
drops its connection and reconnects after a pause: the broker redelivers, and the
archive's dedup (a digest of topic + payload, or the record's `_id`) keeps each record
once. An acknowledgement is sent only on the connection that received the message:
after a reconnect the broker may reuse a packet id for another message.

Payloads: a JSON object (one record) or a JSON array (several). Anything else is held
in the quarantine with its raw text and acknowledged: it is kept, not lost."""

from dataclasses import dataclass
import hashlib
import logging
import threading
import time
from urllib.parse import urlsplit

import orjson
import paho.mqtt.client as mqtt

from data.archive import ArchiveUnavailable
from data.ingest import Ingestor, Quarantined, StreamSpec
from mlplatform import jsondepth

logger = logging.getLogger(__name__)

RETRY_PAUSE = 1.0
MAX_RAW = 10_000


@dataclass(frozen=True)
class Broker:
    url: str
    username: str
    password: str

    @property
    def client_id(self) -> str:
        digest = hashlib.sha256(f"{self.url}\0{self.username}".encode()).hexdigest()[:16]
        return f"mlp-ingest-{digest}"


def broker_of(spec: StreamSpec) -> Broker | None:
    if not spec.mqtt_url or not spec.mqtt_topics:
        return None
    return Broker(spec.mqtt_url, spec.mqtt_username, spec.mqtt_password)


class BrokerSubscriber:
    def __init__(self, ingestor: Ingestor, broker: Broker, specs: list[StreamSpec], *, max_bytes: int) -> None:
        self.ingestor = ingestor
        self.broker = broker
        self.specs = specs
        self.max_bytes = max_bytes
        self.topics = sorted({t for s in specs for t in s.mqtt_topics})
        self.generation = 0  # bumped on every (re)connection
        self.connected = threading.Event()
        self.received = 0
        self.acked = 0
        self._failed = threading.Event()
        self._stop = threading.Event()
        self._client: mqtt.Client | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{self.broker.client_id}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._failed.set()
        if self._thread is not None:
            self._thread.join(10)

    def _client_for(self) -> mqtt.Client:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.broker.client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        parts = urlsplit(self.broker.url)
        if self.broker.username:
            client.username_pw_set(self.broker.username, self.broker.password or None)
        if parts.scheme == "mqtts":
            client.tls_set()
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _run(self) -> None:
        """Connects, and after an archive failure drops the connection and connects
        again (paho reconnects by itself after a network failure)."""
        parts = urlsplit(self.broker.url)
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        while not self._stop.is_set():
            client = self._client = self._client_for()
            self._failed.clear()
            try:
                client.connect_async(parts.hostname, port, keepalive=30)
                client.loop_start()
                self._failed.wait()
            finally:
                self.connected.clear()
                self.generation += 1
                client.disconnect()
                client.loop_stop()
            if not self._stop.is_set():
                time.sleep(RETRY_PAUSE)

    # -- callbacks (paho's network thread) -------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            logger.warning("MQTT broker %s refused the connection: %s", self.broker.url, reason_code)
            return
        self.generation += 1
        client.subscribe([(topic, 1) for topic in self.topics])
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        self.generation += 1

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        self.received += 1
        generation = self.generation
        spec = self._stream_for(message.topic)
        if spec is None:  # a topic no stream wants any more (its patterns changed)
            self._ack(client, message, generation)
            return
        try:
            self._ingest(client, message, spec, generation)
        except ArchiveUnavailable as exc:
            logger.warning("archive unavailable for %s (%s): not acknowledging, reconnecting", spec.key, exc)
            self._failed.set()
        except Exception:
            logger.exception("MQTT ingest failed for %s: not acknowledging, reconnecting", spec.key)
            self._failed.set()

    def _stream_for(self, topic: str) -> StreamSpec | None:
        current = self.ingestor.by_id
        for spec in self.specs:
            if any(mqtt.topic_matches_sub(pattern, topic) for pattern in spec.mqtt_topics):
                return current.get(spec.id, spec)
        return None

    def _ingest(self, client, message: mqtt.MQTTMessage, spec: StreamSpec, generation: int) -> None:
        records, unusable = self._records(message.payload)
        ingestor = self.ingestor
        if unusable is not None:
            ingestor.source.quarantine(stream_id=spec.id, items=[unusable], received_ms=int(time.time() * 1000))
            ingestor.count(spec, accepted=0, duplicates=0, nbytes=0, quarantined=1)
            self._ack(client, message, generation)
            return
        if spec.validator is None:
            ingestor.ensure_schema(spec, records)
        batch = ingestor.prepare(spec, records, origin=message.topic.encode())
        if batch.quarantined:
            ingestor.source.quarantine(stream_id=spec.id, items=batch.quarantined, received_ms=batch.received_ms)
        if not batch.records:
            ingestor.count(spec, accepted=0, duplicates=0, nbytes=0, quarantined=len(batch.quarantined))
            self._ack(client, message, generation)
            return
        log = ingestor.log(spec)
        before = log.appended_bytes

        def durable(error: BaseException | None) -> None:
            if error is not None:
                logger.warning("fsync failed for %s (%s): not acknowledging, reconnecting", spec.key, error)
                self._failed.set()
                return
            self._ack(client, message, generation)

        result = log.append(batch.records, on_durable=durable)
        ingestor.count(
            spec,
            accepted=result.accepted,
            duplicates=result.duplicates,
            nbytes=log.appended_bytes - before if result.accepted else 0,
            quarantined=len(batch.quarantined),
        )

    def _records(self, payload: bytes) -> tuple[list, Quarantined | None]:
        def unusable(reason: str) -> tuple[list, Quarantined]:
            return [], Quarantined(index=0, reason=reason, raw=payload[:MAX_RAW].decode("utf-8", "replace"))

        if len(payload) > self.max_bytes:
            return unusable(f"The message is over the limit of {self.max_bytes} bytes (kept truncated).")
        try:
            jsondepth.check(payload, jsondepth.MAX_DEPTH + 1)
            value = orjson.loads(payload)
        except (orjson.JSONDecodeError, jsondepth.TooDeep) as exc:
            return unusable(f"Not a JSON document: {exc}")
        records = value if isinstance(value, list) else [value]
        if not records:
            return unusable("An empty JSON array holds no record.")
        return records, None

    def _ack(self, client: mqtt.Client, message: mqtt.MQTTMessage, generation: int) -> None:
        if generation != self.generation:
            return  # that connection is gone: the broker redelivers, dedup drops the copy
        client.ack(message.mid, message.qos)
        self.acked += 1


class MqttIngest:
    """Keeps one BrokerSubscriber per broker that MQTT streams name, in step with the
    stream specs (call `sync` after each refresh)."""

    def __init__(self, ingestor: Ingestor, *, max_bytes: int) -> None:
        self.ingestor = ingestor
        self.max_bytes = max_bytes
        self.subscribers: dict[Broker, BrokerSubscriber] = {}
        self._shape: dict[Broker, tuple] = {}

    def sync(self) -> None:
        wanted: dict[Broker, list[StreamSpec]] = {}
        for spec in self.ingestor.streams.values():
            broker = broker_of(spec)
            if broker is not None and spec.active:
                wanted.setdefault(broker, []).append(spec)
        for broker in list(self.subscribers):
            shape = tuple(sorted((s.id, s.mqtt_topics) for s in wanted.get(broker, [])))
            if broker not in wanted or shape != self._shape[broker]:
                self.subscribers.pop(broker).stop()
        for broker, specs in wanted.items():
            if broker not in self.subscribers:
                subscriber = BrokerSubscriber(self.ingestor, broker, specs, max_bytes=self.max_bytes)
                self.subscribers[broker] = subscriber
                self._shape[broker] = tuple(sorted((s.id, s.mqtt_topics) for s in specs))
                subscriber.start()

    def stop(self) -> None:
        for subscriber in self.subscribers.values():
            subscriber.stop()
        self.subscribers.clear()


def build(**overrides) -> tuple[Ingestor, MqttIngest]:
    """The ingestor and MQTT subscribers with the platform's settings."""
    from django.conf import settings

    from data.archive import Limits, LocalArchiveStore
    from data.source import DatabaseSource

    ingestor = Ingestor(
        source=overrides.get("source") or DatabaseSource(),
        store=LocalArchiveStore(overrides.get("archive_dir") or settings.DATA_ARCHIVE_DIR),
        limits=Limits(
            records=settings.INGEST_SEAL_RECORDS,
            bytes=settings.INGEST_SEAL_BYTES,
            seconds=settings.INGEST_SEAL_SECONDS,
            dedup_window=settings.INGEST_DEDUP_WINDOW,
        ),
    )
    return ingestor, MqttIngest(ingestor, max_bytes=settings.INGEST_MAX_BODY_BYTES)


def run(stop: threading.Event, *, interval: float | None = None, **overrides) -> None:
    """The subscriber loop (`manage.py ingest_mqtt`, or a thread in `runplatform`):
    reload the streams, start/stop broker subscribers to match, seal idle segments and
    flush counters, every `interval` seconds, until `stop` is set."""
    from django.conf import settings

    ingestor, subscribers = build(**overrides)
    interval = interval or settings.INGEST_POLL_INTERVAL
    try:
        while True:
            try:
                ingestor.refresh()
                subscribers.sync()
                ingestor.tick()
            except Exception:
                logger.exception("MQTT ingest refresh/flush failed; retrying")
            if stop.wait(interval):
                break
    finally:
        subscribers.stop()
        try:
            ingestor.tick()
        finally:
            ingestor.close()


def start_thread() -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(stop,), name="mqtt-ingest", daemon=True)
    thread.start()
    return thread, stop
