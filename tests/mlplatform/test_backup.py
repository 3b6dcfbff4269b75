"""`manage.py backup` and `restore`: everything comes back in a fresh database, data
dir and archive (a new PostgreSQL database, or a fresh SQLite file in the embedded
default)."""

from datetime import UTC, datetime
import json
import os
from pathlib import Path
import subprocess
import sys
import uuid

from django.conf import settings
from django.core.management import call_command
from django.db import connection
import pytest

from data import archive
from data.models import Segment, Stream
from deployments import services as deployment_services
from experiments import services as exp_services
from experiments.artifacts import get_store, run_root
from jobs import secrets
from mlplatform.models import AuditEvent
from tests.deployments.conftest import register_version
from tests.factories import UserFactory, make_project

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]

# Runs in a subprocess against the restored database, data dir and archive: what the
# platform's own code finds there.
INVENTORY = """
import hashlib, json
from django.conf import settings
from data import archive
from data.models import Segment, Stream
from experiments.models import LoggedModel, Run
from experiments.artifacts import get_store, model_local_dir, run_root
from jobs import secrets
from registry.models import ModelVersion
from deployments.models import Endpoint
from mlplatform.models import AuditEvent
store = archive.LocalArchiveStore(settings.DATA_ARCHIVE_DIR)
records, segments = {}, []
for stream in Stream.objects.select_related("project"):
    key = f"{stream.project.slug}/{stream.slug}"
    records[key] = [r["r"] for rel in archive.stream_segments(store, key) for r in archive.read_records(store, rel)]
for segment in Segment.objects.all():
    data = store.local_path(segment.path).read_bytes()
    segments.append([segment.first_seq, segment.last_seq, hashlib.sha256(data).hexdigest() == segment.sha256])
try:
    secret = secrets.decrypt_values({"p": Stream.objects.get().mqtt_password})["p"]
except Exception as error:
    secret = f"error: {error}"
runs = {r.pk: sorted(f.path for f in get_store().list(run_root(r), "notes")) for r in Run.objects.all()}
print(json.dumps({
    "runs": runs,
    "versions": sorted(f"{v.registered_model.name}/{v.version}" for v in ModelVersion.objects.all()),
    "model_files": all((model_local_dir(m) / "MLmodel").exists() for m in LoggedModel.objects.all()),
    "endpoints": sorted(Endpoint.objects.values_list("slug", flat=True)),
    "audit": sorted(AuditEvent.objects.values_list("pk", flat=True)),
    "archived": records,
    "segments": sorted(segments),
    "secret": secret,
}))
"""
RECORDS = [{"temp": 20 + i, "site": "north"} for i in range(5)]


@pytest.fixture
def data_dir(settings, tmp_path):
    """A data dir with the archive in it (the default layout)."""
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir()
    settings.DATA_ARCHIVE_DIR = settings.DATA_DIR / "archive"
    return settings.DATA_DIR


def archive_records(project, user) -> dict:
    """A stream's records through the archive library: a sealed segment (indexed by a
    Segment row, as on_seal does) and an open one still being written."""
    stream = Stream.objects.create(
        project=project,
        name="Sensors",
        slug="sensors",
        created_by=user,
        mqtt_password=secrets.encrypt_values({"p": "s3cret"})["p"],
    )

    def index(sealed: archive.SealedSegment) -> None:
        def moment(ms: int) -> datetime:
            return datetime.fromtimestamp(ms / 1000, tz=UTC)

        Segment.objects.create(
            stream=stream,
            first_seq=sealed.first_seq,
            last_seq=sealed.last_seq,
            records=sealed.records,
            bytes=sealed.bytes,
            path=sealed.path,
            sha256=sealed.sha256,
            first_at=moment(sealed.first_at_ms),
            last_at=moment(sealed.last_at_ms),
            sealed_at=moment(sealed.sealed_at_ms),
        )

    key = f"{project.slug}/{stream.slug}"
    log = archive.StreamLog(
        archive.LocalArchiveStore(settings.DATA_ARCHIVE_DIR), key, limits=archive.Limits(records=3), on_seal=index
    )
    encoded = [json.dumps(r).encode() for r in RECORDS]
    try:
        for batch in (encoded[:3], encoded[3:]):  # the second append seals the first three
            log.append_sync([(raw, archive.dedup_key(b"test", raw)) for raw in batch])
    finally:
        log.close()
    return {key: RECORDS}


def populate(data_dir: Path, tmp_path: Path) -> dict:
    user = UserFactory()
    project = make_project(owner=user)
    experiment = exp_services.experiment_get_or_create(project=project, name="churn", user=user)
    run = exp_services.run_create(experiment=experiment, user=user)
    get_store().write(run_root(run), "notes/readme.txt", [b"hello"])
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("flavors: {}\n")
    version = register_version(project=project, user=user, model_dir=model_dir, name="churn-model")
    endpoint, _ = deployment_services.endpoint_create(project=project, actor=user, name="Churn API")
    archived = archive_records(project, user)
    # A job's scratch work dir is not backed up.
    (data_dir / "jobs" / "7" / "work").mkdir(parents=True)
    (data_dir / "jobs" / "7" / "work" / "scratch.txt").write_text("tmp")
    return {
        "run": run.pk,
        "version": f"{version.registered_model.name}/{version.version}",
        "endpoint": endpoint.slug,
        "audit": sorted(AuditEvent.objects.values_list("pk", flat=True)),
        "archived": archived,
    }


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )


def restore_env(tmp_path: Path, **extra: str) -> tuple[dict[str, str], str | None]:
    """The environment of a fresh platform: a new database name (PostgreSQL), or the
    SQLite file inside a new data dir. The secret key is this platform's (settings_test
    put it in the environment): the restored secrets are encrypted with it."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "MLP_ARCHIVE_DIR"}}
    env.update(DJANGO_SETTINGS_MODULE="mlplatform.settings", DJANGO_DEBUG="1", MLP_DATA_DIR=str(tmp_path / "fresh"))
    env.update(extra)
    fresh_db = None
    if connection.vendor == "postgresql":
        db = connection.settings_dict
        fresh_db = f"mlp_restore_{uuid.uuid4().hex[:10]}"
        env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{fresh_db}"
    return env, fresh_db


def drop_database(name: str) -> None:
    import psycopg

    db = connection.settings_dict
    with psycopg.connect(dbname="postgres", user=db["USER"], host=db["HOST"], port=db["PORT"], autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def inventory(env: dict[str, str]) -> dict:
    found = manage("shell", "-c", INVENTORY, env=env)
    assert found.returncode == 0, found.stderr
    return json.loads(found.stdout.strip().splitlines()[-1])


def test_a_backup_restores_every_run_artifact_model_endpoint_audit_event_and_archived_record(
    data_dir, tmp_path, settings
):
    if connection.vendor == "postgresql" and not settings.DATABASES["default"].get("USER"):
        pytest.skip("needs DATABASE_URL with a user")
    settings.DATA_ARCHIVE_DIR = tmp_path / "archive-elsewhere"  # MLP_ARCHIVE_DIR outside the data dir
    expected = populate(data_dir, tmp_path)
    backup_dir = tmp_path / "backup"

    # Given a backup of the running platform…
    call_command("backup", str(backup_dir))
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["database"]["vendor"] == connection.vendor
    segments = [path.rsplit(".", 2)[-2:] for path in manifest["archive_files"]]
    assert ["jsonl", "open"] in segments and any(s[-1] == "jsonl" for s in segments), manifest["archive_files"]
    assert not any(path.startswith("jobs/7/") for path in manifest["files"]), "a job's scratch dir was backed up"

    fresh_archive = tmp_path / "fresh-archive"
    env, fresh_db = restore_env(tmp_path, MLP_ARCHIVE_DIR=str(fresh_archive))
    try:
        # …when it is restored into a fresh database, data dir and archive…
        restored = manage("restore", str(backup_dir), env=env)
        assert restored.returncode == 0, restored.stderr
        assert "Restored" in restored.stdout and "files" in restored.stdout

        # …then everything is there, read by the platform's own code on the restored copy.
        found = inventory(env)
        assert found["runs"][expected["run"]] == ["notes/readme.txt"]
        assert expected["version"] in found["versions"] and found["model_files"]
        assert found["endpoints"] == [expected["endpoint"]]
        assert found["audit"] == expected["audit"] and expected["audit"]
        assert found["archived"] == expected["archived"]
        assert found["segments"] == [[0, 2, True]], "the sealed segment's index or checksum did not survive"
        assert found["secret"] == "s3cret"
        assert any(fresh_archive.iterdir()) and not (tmp_path / "fresh" / "archive").exists()
        assert not (tmp_path / "fresh" / "jobs" / "7").exists()

        # Encrypted secrets need the same secret key (or MLP_SECRETS_KEY) as the backup's.
        other_key = inventory({**env, "DJANGO_SECRET_KEY": "another-key-" + "x" * 40})
        assert other_key["secret"].startswith("error:") and "secrets key changed" in other_key["secret"]

        # A second restore into the now non-empty target is refused and changes nothing.
        again = manage("restore", str(backup_dir), env=env)
        assert again.returncode != 0 and "not empty" in again.stderr and "--force" in again.stderr
        assert manage("restore", str(backup_dir), "--force", env=env).returncode == 0
    finally:
        if fresh_db:
            drop_database(fresh_db)


def test_a_damaged_backup_is_refused_before_anything_is_touched(data_dir, tmp_path):
    populate(data_dir, tmp_path)
    backup_dir = tmp_path / "backup"
    call_command("backup", str(backup_dir))
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    # The archive inside the data dir (the default) is backed up once, as the archive.
    assert not any(path.startswith("archive/") for path in manifest["files"])
    sealed = next(path for path in manifest["archive_files"] if path.endswith(".jsonl"))
    (backup_dir / "archive" / sealed).write_text('{"seq":0,"t":0,"k":"x","r":{"temp":99}}\n')
    env, fresh_db = restore_env(tmp_path)
    try:
        result = manage("restore", str(backup_dir), env=env)
        assert result.returncode != 0 and "checksum" in result.stderr
        assert not (tmp_path / "fresh" / "archive").exists()
    finally:
        if fresh_db:
            drop_database(fresh_db)


@pytest.mark.parametrize("seal", ["before", "after"])
def test_a_segment_sealed_while_the_backup_copies_is_backed_up_sealed_and_whole(data_dir, tmp_path, monkeypatch, seal):
    from mlplatform import backup

    (key,) = populate(data_dir, tmp_path)["archived"]
    store = archive.LocalArchiveStore(settings.DATA_ARCHIVE_DIR)
    real_copy, sealed = backup._copy, []

    def seal_now() -> None:
        # The stream's own code seals its open segment, as its age limit would.
        log = archive.StreamLog(store, key, limits=archive.Limits(seconds=0))
        log.next_seq()
        sealed.append(log.seal_if_due())
        log.close()

    def copy(source: Path, target: Path) -> dict:
        """The real copy, with the open segment sealed just before or just after it."""
        if not source.name.endswith(".jsonl.open") or sealed:
            return real_copy(source, target)
        if seal == "before":
            seal_now()  # its open name is gone: the copy finds nothing there
            return real_copy(source, target)
        copied = real_copy(source, target)
        seal_now()
        return copied

    # Given a backup during which the stream seals its open segment…
    monkeypatch.setattr(backup, "_copy", copy)
    manifest = backup.backup(target=tmp_path / "backup", say=lambda _: None)
    assert sealed and sealed[0] is not None

    # …then the backup holds the sealed segment, whole, and no stale open copy of it.
    segments = sorted(p for p in manifest["archive_files"] if p.endswith((".jsonl", ".jsonl.open")))
    assert len(segments) == 2 and not any(p.endswith(".open") for p in segments), segments
    for rel in segments:
        assert (tmp_path / "backup" / "archive" / rel).read_bytes() == store.local_path(rel).read_bytes()
    backed_up = archive.LocalArchiveStore(tmp_path / "backup" / "archive")
    assert [r["r"] for rel in segments for r in archive.read_records(backed_up, rel)] == RECORDS
    assert backup.verify(tmp_path / "backup", backup.read_manifest(tmp_path / "backup"))
