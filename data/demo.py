"""The demo stream of `make run`: pump sensor readings sent by a small generator over
HTTP every couple of seconds (the beat's data.demo_feed_task), so the Data page moves;
now and then a reading with a broken sensor value lands in the quarantine."""

import json
from pathlib import Path
import random
import time
import urllib.request

from django.conf import settings

from data import services
from data.models import Stream
from mlplatform.models import User
from projects.models import Project

STREAM_SLUG = "pump-sensors"
SCHEMA = {
    "type": "object",
    "properties": {
        "pump": {"type": "string"},
        "at": {"type": "number"},
        "temperature": {"type": "number"},
        "vibration": {"type": "number"},
        "pressure": {"type": "number"},
    },
    "required": ["pump", "at", "temperature", "vibration", "pressure"],
}


def token_file() -> Path:
    return Path(settings.DATA_DIR) / "demo-ingest-token"


def seed(admin: User, project: Project) -> Stream:
    stream = Stream.objects.filter(project=project, slug=STREAM_SLUG).first()
    if stream is None:
        stream = services.stream_create(
            project=project,
            actor=admin,
            name="Pump sensors",
            slug=STREAM_SLUG,
            description="Temperature, vibration and pressure of the line's pumps (demo generator in embedded mode).",
            schema=SCHEMA,
            retention_days=30,
        )
    if not token_file().exists():
        _, raw = services.ingest_token_create(stream=stream, actor=admin, name="demo generator")
        token_file().write_text(raw)
        token_file().chmod(0o600)
    return stream


def readings(rng: random.Random, count: int) -> list[dict]:
    now = time.time()
    rows = []
    for i in range(count):
        pump = f"P-{rng.randint(1, 6):02d}"
        row = {
            "pump": pump,
            "at": round(now + i / 1000, 3),
            "temperature": round(rng.gauss(61, 4), 2),
            "vibration": round(abs(rng.gauss(2.2, 0.6)), 3),
            "pressure": round(rng.gauss(4.1, 0.2), 3),
        }
        if rng.random() < 0.003:
            row["temperature"] = "sensor fault"  # the quarantine's demo
        rows.append(row)
    return rows


def feed(*, base_url: str, count: int | None = None) -> int:
    """One batch to the demo stream over HTTP; returns how many were accepted."""
    path = token_file()
    stream = Stream.objects.select_related("project").filter(slug=STREAM_SLUG).first()
    if stream is None or not path.exists():
        return 0
    rng = random.Random()
    body = json.dumps(readings(rng, count or rng.randint(20, 80))).encode()
    request = urllib.request.Request(  # noqa: S310 - our own loopback URL from settings
        f"{base_url}{stream.ingest_path}",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {path.read_text().strip()}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return json.loads(response.read())["accepted"]
    except OSError:
        return 0
