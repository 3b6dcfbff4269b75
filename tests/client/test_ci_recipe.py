"""The CI/CD recipe of docs/ci.md, end to end: a fresh venv with only
`pip install ./client` runs docs/ci-recipe.sh against the live platform. A human (the
test, through the API as the project owner) decides the production gate while the
pipeline waits. A No-go fails the pipeline with exit 3 and deploys nothing; a Go lets
it deploy the new version as a 10% canary."""

import hashlib
import json
import os
from pathlib import Path
import shutil
import subprocess
import sys
import time

import pytest

from deployments import services as deploy_services
from mlplatform import services as core_services
from mlplatform.roles import Role
from projects import services as project_services
from projects.models import Gate
from tests.client.conftest import CLIENT_DIR, job_worker
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.slow
ROOT = CLIENT_DIR.parent
RECIPE = ROOT / "docs" / "ci-recipe.sh"
EXAMPLE = ROOT / "docs" / "ci-example"


def _digest(paths) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.relative_to(CLIENT_DIR).as_posix().encode() + path.read_bytes())
    return h.hexdigest()[:16]


def client_venv() -> Path:
    """var/client-venv-<pyproject hash>: created once (pip reaches PyPI for httpx, click,
    rich); the client itself is reinstalled, without dependencies, when its code changed."""
    venv = ROOT / "var" / f"client-venv-{_digest([CLIENT_DIR / 'pyproject.toml'])}"
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    if not (venv / "bin" / "mlp").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=120)
        done = subprocess.run([*pip, "install", str(CLIENT_DIR)], capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            pytest.skip(f"`pip install ./client` into a fresh venv failed (needs PyPI access): {done.stderr[-500:]}")
    code = _digest(
        [p for p in CLIENT_DIR.rglob("*") if p.is_file() and "egg-info" not in str(p) and "build" not in p.parts]
    )
    marker = venv / "client-source"
    if not marker.exists() or marker.read_text() != code:
        subprocess.run(
            [*pip, "install", "--no-deps", "--force-reinstall", str(CLIENT_DIR)],
            check=True,
            timeout=300,
        )
        marker.write_text(code)
    return venv


@pytest.fixture
def venv():
    return client_venv()


@pytest.fixture
def platform(server, tmp_path):
    """A project with a Production gate decided by its owner, an endpoint serving a
    champion (deployed earlier by an admin), and a CI user with the ML engineer role."""
    from tests.deployments.conftest import _save, register_version

    owner = UserFactory(username="alice")
    ci = UserFactory(username="ci-bot")
    admin = UserFactory(username="root", is_superuser=True)
    project = make_project(owner=owner, slug="churn", members={ci: Role.ML_ENGINEER, admin: Role.OWNER})
    project_services.gate_create(project=project, actor=owner, to_stage="Production", approver_roles=[Role.OWNER])
    endpoint = deploy_services.endpoint_create(project=project, actor=owner, name="Churn API")[0]
    champion = register_version(project=project, user=owner, model_dir=_save(tmp_path / "champion"), name="churn-model")
    deploy_services.revision_deploy(
        endpoint=endpoint, actor=admin, model_name="churn/churn-model", version=champion.version,
        gate_override_reason="the model in production before CI existed",
    )  # fmt: skip
    return {
        "endpoint": endpoint,
        "ci_token": core_services.api_token_create(user=ci, name="ci")[1],
        "owner_token": core_services.api_token_create(user=owner, name="human")[1],
        "owner": owner,
        "project": project,
    }


def run_recipe(venv: Path, server: str, platform: dict, out: Path, verdict: str) -> subprocess.CompletedProcess:
    """Runs the recipe; when it has requested the gate, the human votes and decides."""
    from mlp_client import Client

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLP_"))}
    env |= {
        "PATH": f"{venv / 'bin'}:{env['PATH']}",
        "HOME": str(out),
        "MLP_URL": server,
        "MLP_TOKEN": platform["ci_token"],
        "PROJECT": "churn",
        "ENDPOINT": "churn-api",
        "MODEL": "churn/churn-model",
        "CODE_DIR": str(EXAMPLE),
        "PARAMS": "C=0.5",
        "OUT": str(out),
        "GATE_TIMEOUT": "3m",
        "GATE_INTERVAL": "0.3s",
        "JOB_TIMEOUT": "5m",
    }
    proc = subprocess.Popen(["bash", str(RECIPE)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        gate = Gate.objects.filter(project=platform["project"]).exclude(status="decided").first()
        if gate is not None and gate.status == "in_review":
            with Client(server, platform["owner_token"]) as human:
                human.gates.vote("churn", "Production", verdict)
                human.gates.decide("churn", "Production", verdict, rationale=f"{verdict} from the test")
            break
        time.sleep(0.3)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def test_the_ci_recipe_end_to_end_refusal_then_approval(venv, server, platform, tmp_path):
    endpoint = platform["endpoint"]
    with job_worker():
        # A No-go fails the pipeline at the gate, with "refused" (3); nothing is deployed.
        refused = run_recipe(venv, server, platform, tmp_path / "first", "no_go")
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert "decided no_go by alice" in refused.stderr
        assert not (tmp_path / "first" / "deploy.json").exists()
        endpoint.refresh_from_db()
        assert endpoint.challenger_id is None

        # The next pull request: a new gate, a Go, and the canary goes out.
        project_services.gate_create(
            project=platform["project"], actor=platform["owner"], to_stage="Production", approver_roles=[Role.OWNER]
        )
        approved = run_recipe(venv, server, platform, tmp_path / "second", "go")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    out = tmp_path / "second"
    job = json.loads((out / "job.json").read_text())
    assert job["status"] == "succeeded" and job["params"] == {"C": "0.5"}
    runs = json.loads((out / "runs.json").read_text())
    assert job["run_id"] in [r["run_id"] for r in runs] and all("metrics.accuracy" in r for r in runs)
    version = json.loads((out / "version.json").read_text())
    assert version["version"] == 3  # the champion is 1, the refused pull request's is 2
    deployed = json.loads((out / "deploy.json").read_text())
    assert deployed["model_version"] == 3
    endpoint.refresh_from_db()
    assert endpoint.challenger.model_version_number == 3
    assert endpoint.challenger_mode == "canary" and endpoint.traffic == pytest.approx(0.1)

    # After the canary: the same venv aliases the version, scores a CSV on the
    # endpoint, rolls the canary back, and is refused a promote with nothing to promote.
    mlp = str(venv / "bin" / "mlp")
    env = {"PATH": os.environ["PATH"], "HOME": str(out), "MLP_URL": server, "MLP_TOKEN": platform["ci_token"]}

    def cli(*args):
        return subprocess.run([mlp, *args], env=env, capture_output=True, text=True, timeout=120)

    aliased = cli("models", "alias", "churn/churn-model", "3", "candidate", "-o", "json")
    assert aliased.returncode == 0 and json.loads(aliased.stdout)["version"] == 3, aliased.stderr
    rows = out / "rows.csv"
    rows.write_text(
        "sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"
    )
    token = deploy_services.endpoint_token_rotate(endpoint=endpoint, actor=platform["owner"])
    predicted = cli("predict", "churn-api", str(rows), "--endpoint-token", token, "-o", "json")
    assert predicted.returncode == 0, predicted.stderr
    assert len(json.loads(predicted.stdout)["predictions"]) == 2
    assert cli("endpoints", "rollback", "churn-api", "--reason", "test").returncode == 0
    endpoint.refresh_from_db()
    assert endpoint.challenger_id is None
    refused = cli("endpoints", "promote", "churn-api")
    assert refused.returncode == 3 and refused.stderr.strip().count("\n") == 0
