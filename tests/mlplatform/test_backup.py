"""`manage.py backup` and `restore`: everything comes back in a fresh database and data
dir (a new PostgreSQL database, or a fresh SQLite file in the embedded default)."""

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

from deployments import services as deployment_services
from experiments import services as exp_services
from experiments.artifacts import get_store, run_root
from mlplatform.models import AuditEvent
from tests.deployments.conftest import register_version
from tests.factories import UserFactory, make_project

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]

# Runs in a subprocess against the restored database and data dir: what it finds there.
INVENTORY = """
import json
from experiments.models import Run
from experiments.artifacts import get_store, run_root
from registry.models import ModelVersion
from deployments.models import Endpoint
from mlplatform.models import AuditEvent
runs = {r.pk: sorted(f.path for f in get_store().list(run_root(r), "notes")) for r in Run.objects.all()}
print(json.dumps({
    "runs": runs,
    "versions": sorted(f"{v.registered_model.name}/{v.version}" for v in ModelVersion.objects.all()),
    "endpoints": sorted(Endpoint.objects.values_list("slug", flat=True)),
    "audit": sorted(AuditEvent.objects.values_list("pk", flat=True)),
}))
"""


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir()
    return settings.DATA_DIR


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
    # Whatever else lives in the data dir (the data archive) comes back too; a job's
    # scratch work dir does not.
    (data_dir / "archive" / "stream-1").mkdir(parents=True)
    (data_dir / "archive" / "stream-1" / "000001.jsonl").write_text('{"x": 1}\n')
    (data_dir / "jobs" / "7" / "work").mkdir(parents=True)
    (data_dir / "jobs" / "7" / "work" / "scratch.txt").write_text("tmp")
    return {
        "run": run.pk,
        "version": f"{version.registered_model.name}/{version.version}",
        "endpoint": endpoint.slug,
        "audit": sorted(AuditEvent.objects.values_list("pk", flat=True)),
    }


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )


def restore_env(tmp_path: Path) -> tuple[dict[str, str], str | None]:
    """The environment of a fresh platform: a new database name (PostgreSQL), or the
    SQLite file inside a new data dir."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DJANGO_SETTINGS_MODULE="mlplatform.settings", DJANGO_DEBUG="1", MLP_DATA_DIR=str(tmp_path / "fresh"))
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


def test_a_backup_restores_every_run_artifact_model_endpoint_audit_event_and_archived_record(data_dir, tmp_path):
    if connection.vendor == "postgresql" and not settings.DATABASES["default"].get("USER"):
        pytest.skip("needs DATABASE_URL with a user")
    expected = populate(data_dir, tmp_path)
    backup_dir = tmp_path / "backup"

    # Given a backup of the running platform…
    call_command("backup", str(backup_dir))
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["database"]["vendor"] == connection.vendor
    assert "archive/stream-1/000001.jsonl" in manifest["files"]
    assert not any(path.startswith("jobs/7/") for path in manifest["files"]), "a job's scratch dir was backed up"

    env, fresh_db = restore_env(tmp_path)
    try:
        # …when it is restored into a fresh database and data dir…
        restored = manage("restore", str(backup_dir), env=env)
        assert restored.returncode == 0, restored.stderr
        assert "Restored" in restored.stdout and "files" in restored.stdout

        # …then everything is there, read by the platform's own code on the restored copy.
        found = manage("shell", "-c", INVENTORY, env=env)
        assert found.returncode == 0, found.stderr
        inventory = json.loads(found.stdout.strip().splitlines()[-1])
        assert inventory["runs"][expected["run"]] == ["notes/readme.txt"]
        assert expected["version"] in inventory["versions"]
        assert inventory["endpoints"] == [expected["endpoint"]]
        assert inventory["audit"] == expected["audit"] and expected["audit"]
        fresh = tmp_path / "fresh"
        assert (fresh / "archive" / "stream-1" / "000001.jsonl").read_text() == '{"x": 1}\n'
        assert not (fresh / "jobs" / "7").exists()

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
    (backup_dir / "data" / "archive" / "stream-1" / "000001.jsonl").write_text('{"x": 2}\n')
    env, fresh_db = restore_env(tmp_path)
    try:
        result = manage("restore", str(backup_dir), env=env)
        assert result.returncode != 0 and "checksum" in result.stderr
        assert not (tmp_path / "fresh" / "archive").exists()
    finally:
        if fresh_db:
            drop_database(fresh_db)
