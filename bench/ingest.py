"""Ingestion throughput, with this machine's raw limits measured in the same run.

Starts an HTTP ingest process (`manage.py ingest`: uvloop + httptools) on a fresh
SQLite (or DATABASE_URL) and archive in a temp dir, a stream with a JSON Schema and a
token, then measures:

  raw      1 KB records appended to a file with an fsync every 500 (and every 50)
  http     batches of 500 x 1 KB records, 16 connections (wrk, bench/ingest.lua)
  single   1 record per POST, 64 connections
  mqtt     4 publishers, QoS 1, 1 KB messages, through `manage.py ingest_mqtt`
           (archive before PUBACK) vs a do-nothing paho subscriber, on a broker of
           the bench's own (mosquitto on a free port)
  compact  1 M records of 1 KB appended to a stream's archive (not timed), then the
           time spent sealing its segments (the platform's seal limits) and compacting
           them to Parquet (data.segments.segment_compact, as the compaction task does)

Every acknowledged record is counted only after its 202 (fsync'd). Prints a table of
medians and ratios. The client runs on the same 2 cores as the server: absolute
numbers are context, the ratios are the point.

    .venv/bin/python bench/ingest.py [--seconds 8] [--compact-records 1000000]"""

import argparse
import os
from pathlib import Path
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import orjson

ROOT = Path(__file__).resolve().parents[1]
PAD = "x" * 940  # a record of about 1 KB


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup(data_dir: str, broker_url: str) -> tuple[str, str, str]:
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
    os.environ["MLP_DATA_DIR"] = data_dir
    os.environ["MLP_ARCHIVE_DIR"] = str(Path(data_dir) / "archive")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from data import services
    from mlplatform.models import User
    from projects import services as project_services

    user = User.objects.create_user("bench", "bench@example.com", "bench-pass-123")
    project = project_services.project_create(owner=user, name="Bench", slug="bench")
    schema = {
        "type": "object",
        "properties": {"sensor": {"type": "string"}, "n": {"type": "integer"}, "v": {"type": "number"}},
        "required": ["sensor", "n", "v"],
    }
    stream = services.stream_create(project=project, actor=user, name="Http", schema=schema)
    _, token = services.ingest_token_create(stream=stream, actor=user)
    services.stream_create(
        project=project, actor=user, name="Mqtt", source="mqtt", mqtt_url=broker_url, mqtt_topics=["bench/+"]
    )
    return f"/ingest/bench/{stream.slug}", token, "bench/mqtt"


# --- raw fsync limit ----------------------------------------------------------------------


def raw_limit(directory: str, seconds: float, every: int) -> float:
    record = orjson.dumps({"sensor": "s", "n": 0, "v": 1.0, "pad": PAD}) + b"\n"
    path = Path(directory) / f"raw-{every}.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    count, start = 0, time.perf_counter()
    try:
        while time.perf_counter() - start < seconds:
            os.write(fd, record * every)
            os.fdatasync(fd)
            count += every
    finally:
        os.close(fd)
        path.unlink()
    return count / (time.perf_counter() - start)


# --- HTTP ------------------------------------------------------------------------------------


def wrk_load(url: str, token: str, *, connections: int, batch: int, seconds: float) -> tuple[float, float, float]:
    """Records acknowledged per second (every answer a 202 after fsync, else it fails),
    p50 and p99 latency in ms, from wrk with bench/ingest.lua."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(ROOT / "bench" / "ingest.lua"), url],
        env={**os.environ, "TOKEN": token, "BATCH": str(batch)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"some requests were not acknowledged:\n{out}")
    values = {}
    for line in out.splitlines():
        parts = line.split()
        if parts[:1] in (["50%"], ["99%"]):
            values[parts[0]] = _ms(parts[1])
        elif parts[:1] == ["Requests/sec:"]:
            values["rps"] = float(parts[1])
    return values["rps"] * batch, values["50%"], values["99%"]


def _ms(text: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


# --- MQTT ------------------------------------------------------------------------------------


def mosquitto(directory: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    conf = Path(directory) / "mosquitto.conf"
    user = "user root\n" if os.geteuid() == 0 else ""
    # The PUBACK waits for an fsync, so the broker must let more than its default 20
    # messages be in flight to a subscriber (README "## Data", MQTT).
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\n{user}max_queued_messages 0\n"
        "max_inflight_messages 1000\nlog_dest none\n"
    )
    process = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)])
    time.sleep(0.5)
    return process, port


def publish(port: int, topic: str, total: int, publishers: int) -> None:
    import paho.mqtt.client as mqtt

    def one(p: int) -> None:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{p}-{time.time()}")
        client.max_inflight_messages_set(100)
        client.max_queued_messages_set(0)
        client.connect("127.0.0.1", port)
        client.loop_start()
        infos = []
        for i in range(p, total, publishers):
            payload = orjson.dumps({"sensor": f"s{p}", "n": i, "v": i * 0.5, "pad": PAD})
            infos.append(client.publish(topic, payload, qos=1))
        for info in infos:
            info.wait_for_publish(60)
        client.loop_stop()
        client.disconnect()

    threads = [threading.Thread(target=one, args=(p,)) for p in range(publishers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def null_subscriber_rate(port: int, total: int, publishers: int) -> float:
    import paho.mqtt.client as mqtt

    got = threading.Event()
    count = [0, 0.0]

    def on_message(client, userdata, message):
        count[0] += 1
        if count[0] == 1:
            count[1] = time.perf_counter()
        if count[0] >= total:
            got.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-null", clean_session=False)
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe("bench/null", qos=1)
    client.loop_start()
    time.sleep(0.5)
    start = time.perf_counter()
    publish(port, "bench/null", total, publishers)
    got.wait(300)
    client.loop_stop()
    return count[0] / (time.perf_counter() - start)


def archived_count(archive: Path) -> int:
    total = 0
    for path in archive.glob("bench/mqtt/dt=*/hr=*/*.jsonl*"):
        with open(path, "rb") as handle:
            total += sum(block.count(b"\n") for block in iter(lambda h=handle: h.read(1 << 20), b""))
    return total


def platform_subscriber_rate(port: int, total: int, publishers: int, env: dict, archive: Path) -> float:
    process = subprocess.Popen(
        [sys.executable, "manage.py", "ingest_mqtt", "--interval", "0.5"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        probe = 0
        while archived_count(archive) == 0:  # the subscriber has its session
            if probe % 10 == 0:
                publish(port, "bench/mqtt", 1, 1)
            probe += 1
            time.sleep(0.1)
            if time.monotonic() > deadline:
                raise RuntimeError("ingest_mqtt did not subscribe")
        base = archived_count(archive)
        start = time.perf_counter()
        publish(port, "bench/mqtt", total, publishers)
        while archived_count(archive) < base + total - 1:
            time.sleep(0.05)
            if time.perf_counter() - start > 300:
                raise RuntimeError("ingest_mqtt did not archive every message")
        return total / (time.perf_counter() - start)
    finally:
        process.terminate()
        process.wait(15)


def wait_up(port: int) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError("manage.py ingest did not come up")


# --- sealing and compacting ---------------------------------------------------------------


def seal_and_compact(records: int) -> tuple[float, float, int]:
    """Seconds spent sealing and seconds compacting `records` 1 KB records, and how many
    segments that made. The appends themselves are not timed (that is the ingest rows)."""
    from django.conf import settings

    from data import segments, services
    from data.archive import Limits, LocalArchiveStore, StreamLog
    from data.models import Segment
    from data.source import segment_index
    from mlplatform.models import User
    from projects.models import Project

    project = Project.objects.get(slug="bench")
    stream = services.stream_create(project=project, actor=User.objects.get(username="bench"), name="Compact")
    key = segments.stream_key(stream)
    limits = Limits(records=settings.INGEST_SEAL_RECORDS, bytes=settings.INGEST_SEAL_BYTES, seconds=10**9)
    log = StreamLog(LocalArchiveStore(settings.DATA_ARCHIVE_DIR), key, limits=limits)
    log.on_seal = lambda sealed: segment_index([(stream.pk, sealed)])
    sealing = [0.0]
    seal = log._seal

    def timed_seal():
        started = time.perf_counter()
        try:
            return seal()
        finally:
            sealing[0] += time.perf_counter() - started

    log._seal = timed_seal  # seals happen inside appends when a segment is full
    batch = 5000
    for start in range(0, records, batch):
        rows = [
            (orjson.dumps({"sensor": f"s{i % 50}", "n": i, "v": i * 0.5, "pad": PAD}), f"c{i}")
            for i in range(start, min(start + batch, records))
        ]
        log.append_sync(rows)
    log.seal_if_due(now_ms=int(time.time() * 1000) + 2 * 3600 * 1000)  # the last one, as the timer would
    log.close()
    pending = list(Segment.objects.filter(stream=stream).order_by("first_seq"))
    assert sum(s.records for s in pending) == records, "every record is in a sealed segment"
    started = time.perf_counter()
    for segment in pending:
        segments.segment_compact(segment=segment)
    return sealing[0], time.perf_counter() - started, len(pending)


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--mqtt-messages", type=int, default=6000)
    parser.add_argument("--compact-records", type=int, default=1_000_000, help="0 skips sealing/compacting")
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="mlp-bench-ingest-")
    broker, broker_port = mosquitto(data_dir)
    path, token, _ = setup(data_dir, f"mqtt://127.0.0.1:{broker_port}")
    port = free_port()
    env = {**os.environ, "MLP_INGEST_POLL_INTERVAL": "0.5"}
    server = subprocess.Popen(
        [sys.executable, "manage.py", "ingest", "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}{path}"
    try:
        wait_up(port)
        wrk_load(url, token, connections=4, batch=50, seconds=1)  # warm-up
        load_at_start = os.getloadavg()[0]
        raw500 = raw_limit(data_dir, args.seconds / 2, 500)
        raw50 = raw_limit(data_dir, args.seconds / 2, 50)
        batch = wrk_load(url, token, connections=16, batch=500, seconds=int(args.seconds))
        single = wrk_load(url, token, connections=64, batch=1, seconds=int(args.seconds))
        null_rate = null_subscriber_rate(broker_port, args.mqtt_messages, 4)
        ours = platform_subscriber_rate(broker_port, args.mqtt_messages, 4, env, Path(data_dir) / "archive")
        load_at_end = os.getloadavg()[0]
        server.terminate()
        server.wait(15)
        compact = seal_and_compact(args.compact_records) if args.compact_records else None
    finally:
        server.terminate()
        server.wait(15)
        broker.terminate()
        shutil.rmtree(data_dir, ignore_errors=True)
    print(
        f"\nIngest benchmark ({os.cpu_count()} cores, shared and noisy: "
        f"1-min load average {load_at_start:.1f} at the start, {load_at_end:.1f} at the end)"
    )
    print(f"{'what':58} {'records/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    rows = [
        ("raw: 1 KB appends, fsync every 500 (same run)", raw500, None),
        ("raw: 1 KB appends, fsync every 50 (same run)", raw50, None),
        ("HTTP batches 500 x 1 KB, 16 connections, after fsync", batch[0], batch[1:]),
        ("HTTP 1 record per POST, 64 connections, after fsync", single[0], single[1:]),
        ("MQTT QoS 1, 4 publishers: do-nothing paho subscriber", null_rate, None),
        ("MQTT QoS 1, 4 publishers: ingest_mqtt (archive, then PUBACK)", ours, None),
    ]
    for name, rate, lat in rows:
        extra = f"{lat[0]:8.1f} {lat[1]:8.1f}" if lat else f"{'':8} {'':8}"
        print(f"{name:58} {rate:10,.0f} {extra}")
    print(f"\nHTTP batches / raw fsync-every-500 limit: {batch[0] / raw500:.2f}")
    print(f"HTTP batches / raw fsync-every-50 limit:  {batch[0] / raw50:.2f}")
    print(f"MQTT ingest_mqtt / do-nothing subscriber: {ours / null_rate:.2f} (target >= 0.80)")
    print("Targets: HTTP batches >= 50,000 records/s with p99 <= 50 ms; single records >= 5,000/s.")
    if compact:
        sealing, compacting, count = compact
        print(
            f"\nSealing and compacting {args.compact_records:,} records of 1 KB ({count} segments): "
            f"sealing {sealing:.1f} s + Parquet {compacting:.1f} s = {sealing + compacting:.1f} s (target <= 20 s)"
        )


if __name__ == "__main__":
    main()
