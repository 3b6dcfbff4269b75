"""The `mlp` command and `mlp_client.Client` against the real platform on a real port:
auth and profiles, the commands, exit codes, and each bad input of issue 16."""

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import os
import stat
import threading

import pytest

from mlp_client import Client, Table
from mlp_client.bundle import bundle_files
from mlp_client.config import resolve
from mlplatform import services as core_services
from mlplatform.roles import Role
from projects import services as project_services
from tests.client.conftest import job_worker, run_mlp
from tests.conftest import free_port
from tests.factories import UserFactory, make_project


@pytest.fixture
def owner(transactional_db):
    return UserFactory(username="alice")


@pytest.fixture
def proj(owner):
    return make_project(owner=owner, slug="churn", name="Churn")


@pytest.fixture
def token(owner):
    return core_services.api_token_create(user=owner, name="cli")[1]


# --- auth and profiles ----------------------------------------------------------------


def test_login_saves_profiles_in_a_0600_file_and_env_and_mlflow_variables_are_used(
    server, token, tmp_path, monkeypatch
):
    result = run_mlp("login", "--url", server, "--token", token, "--profile", "dev", "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["user"] == "alice"
    path = tmp_path / "mlp-config.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert run_mlp("login", "--url", "http://other:1", "--token", "x", "--profile", "ci", "--no-verify").exit_code == 0
    saved = json.loads(path.read_text())
    assert saved["default"] == "dev" and set(saved["profiles"]) == {"dev", "ci"}
    assert run_mlp("whoami").exit_code == 0  # the default profile
    assert resolve(profile="ci").url == "http://other:1"
    # MLP_URL beats the default profile; a named profile beats MLP_URL.
    monkeypatch.setenv("MLP_URL", "http://env:2")
    assert resolve().url == "http://env:2" and resolve(profile="dev").url == server
    # With neither, an MLflow user's variables are used.
    path.unlink()
    monkeypatch.delenv("MLP_URL")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    result = run_mlp("whoami", "-o", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["username"] == "alice"
    assert run_mlp("whoami", "--profile", "nope").exit_code == 2


def test_a_wrong_token_at_login_is_refused_and_nothing_is_saved(server, tmp_path):
    result = run_mlp("login", "--url", server, "--token", "mlp_wrong")
    assert result.exit_code == 3 and "run `mlp login`" in result.stderr
    assert not (tmp_path / "mlp-config.json").exists()


# --- bad input (issue 16) ------------------------------------------------------------


def test_wrong_url_connection_refused_is_one_line_naming_the_url():
    url = f"http://127.0.0.1:{free_port()}"
    result = run_mlp("projects", "list", url=url, token="mlp_x")
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0 and url in result.stderr and "refused" in result.stderr
    assert "Traceback" not in result.output


def test_wrong_url_unknown_host_is_one_line_naming_the_url():
    result = run_mlp("projects", "list", url="http://no-such-host.invalid", token="mlp_x")
    assert result.exit_code == 1 and "http://no-such-host.invalid" in result.stderr
    assert "does not resolve" in result.stderr and result.stderr.strip().count("\n") == 0


@pytest.mark.parametrize("how", ["revoked", "expired"])
def test_an_expired_or_revoked_token_says_run_mlp_login_with_exit_3(server, owner, proj, how):
    from django.utils import timezone

    token, raw = core_services.api_token_create(user=owner, name="old")
    assert run_mlp("projects", "list", url=server, token=raw).exit_code == 0
    if how == "revoked":
        core_services.api_token_revoke(token_id=token.pk, actor=owner)
    else:
        type(token).objects.filter(pk=token.pk).update(expires_at=timezone.now())
    result = run_mlp("projects", "list", url=server, token=raw)
    assert result.exit_code == 3
    assert "token expired/revoked, run `mlp login`" in result.stderr
    assert ("revoked" if how == "revoked" else "expired") in result.stderr


def test_a_bundle_over_the_servers_limit_is_refused_before_upload(server, token, proj, settings, tmp_path):
    from jobs.models import Job

    settings.MLP_JOB_BUNDLE_MAX_BYTES = 2000
    code = tmp_path / "code"
    code.mkdir()
    (code / "main.py").write_text("print('hi')\n")
    (code / "weights.bin").write_bytes(os.urandom(10_000))
    result = run_mlp("jobs", "submit", str(code), "--project", "churn", url=server, token=token)
    assert result.exit_code == 3
    assert "limit is 2,000 bytes" in result.stderr and ".mlpignore" in result.stderr
    assert not Job.objects.exists()
    # Left out by .mlpignore, the same directory goes through.
    (code / ".mlpignore").write_text("*.bin\n")
    result = run_mlp("jobs", "submit", str(code), "--project", "churn", "-o", "json", url=server, token=token)
    assert result.exit_code == 0, result.output
    assert Job.objects.get().bundle_name == "code.zip"


def test_a_param_without_equals_is_a_usage_error(tmp_path):
    script = tmp_path / "main.py"
    script.write_text("print(1)\n")
    result = run_mlp("jobs", "submit", str(script), "--project", "p", "--param", "lr0.1", url="http://x", token="t")
    assert result.exit_code == 2 and "'lr0.1' is not KEY=VALUE" in result.output


class Failing(BaseHTTPRequestHandler):
    """A server that fails every request with 503 and remembers the request ids."""

    seen: list[tuple[str, str]] = []

    def _fail(self) -> None:
        Failing.seen.append((self.command, self.headers.get("X-Request-ID", "")))
        body = json.dumps({"error": {"code": "unavailable", "message": "database is down"}}).encode()
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _fail  # noqa: N815

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def failing_server():
    Failing.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Failing)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_5xx_is_retried_for_idempotent_calls_only_then_exit_1_with_the_request_id(failing_server, tmp_path):
    result = run_mlp("projects", "list", url=failing_server, token="t", env={"MLP_RETRIES": "3"})
    assert result.exit_code == 1
    assert [m for m, _ in Failing.seen] == ["GET"] * 4
    assert "HTTP 503: database is down" in result.stderr and "after 4 attempts" in result.stderr
    assert f"request id {Failing.seen[-1][1]}" in result.stderr
    assert len({rid for _, rid in Failing.seen}) == 4
    Failing.seen = []
    script = tmp_path / "main.py"
    script.write_text("print(1)\n")
    result = run_mlp("jobs", "submit", str(script), "-p", "churn", url=failing_server, token="t")
    assert result.exit_code == 1 and [m for m, _ in Failing.seen] == ["POST"]
    assert f"request id {Failing.seen[0][1]}" in result.stderr


def test_debug_shows_the_traceback(failing_server):
    import mlp_client.cli as cli_module

    try:
        result = run_mlp("projects", "list", "--debug", url=failing_server, token="t", env={"MLP_RETRIES": "0"})
    finally:
        cli_module._debug[0] = False
    assert result.exit_code == 1 and "Traceback" in result.stderr


# --- commands -------------------------------------------------------------------------


def test_projects_kpis_gates_and_not_found(server, token, owner, proj):
    project_services.kpi_create(project=proj, actor=owner, name="Retention", target=0.9)
    listed = run_mlp("projects", "list", "-o", "json", url=server, token=token)
    assert listed.exit_code == 0 and [p["slug"] for p in json.loads(listed.stdout)] == ["churn"]
    assert "churn" in run_mlp("projects", "list", "-o", "csv", url=server, token=token).stdout.splitlines()[1]
    shown = run_mlp("projects", "show", "churn", url=server, token=token)
    assert shown.exit_code == 0 and "Retention" in shown.stdout
    assert run_mlp("projects", "show", "nope", url=server, token=token).exit_code == 4
    recorded = run_mlp("kpis", "record", "churn", "Retention", "0.87", "-o", "json", url=server, token=token)
    assert recorded.exit_code == 0 and json.loads(recorded.stdout)["value"] == 0.87
    assert run_mlp("kpis", "record", "churn", "Nope", "1", url=server, token=token).exit_code == 4

    project_services.gate_create(project=proj, actor=owner, to_stage="Production", approver_roles=[Role.OWNER])
    requested = run_mlp("gates", "request", "churn", "Production", "-o", "json", url=server, token=token)
    assert requested.exit_code == 0 and json.loads(requested.stdout)["status"] == "in_review"
    assert run_mlp("gates", "vote", "churn", "Production", "go", url=server, token=token).exit_code == 0
    early = run_mlp("gates", "wait", "churn", "Production", "--timeout", "1s", "--interval", "0.2s", url=server,
                    token=token)  # fmt: skip
    assert early.exit_code == 5 and "still in_review" in early.stderr
    decided = run_mlp("gates", "decide", "churn", "Production", "go", url=server, token=token)
    assert decided.exit_code == 0
    waited = run_mlp("gates", "wait", "churn", "Production", "-o", "json", url=server, token=token)
    assert waited.exit_code == 0 and json.loads(waited.stdout)["verdict"] == "go"
    assert run_mlp("gates", "status", "churn", "Moon", url=server, token=token).exit_code == 4
    # Someone else's project is simply not found.
    stranger = core_services.api_token_create(user=UserFactory(), name="x")[1]
    assert run_mlp("gates", "status", "churn", url=server, token=stranger).exit_code == 4


def test_a_viewer_is_refused_with_exit_3(server, owner, proj, tmp_path):
    viewer = UserFactory()
    project_services.membership_add(project=proj, username=viewer.username, role=Role.VIEWER, actor=owner)
    raw = core_services.api_token_create(user=viewer, name="v")[1]
    script = tmp_path / "main.py"
    script.write_text("print(1)\n")
    result = run_mlp("jobs", "submit", str(script), "-p", "churn", url=server, token=raw)
    assert result.exit_code == 3, result.output


def test_jobs_submit_follow_streams_the_log_and_exits_with_the_jobs_status(server, token, proj, tmp_path):
    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text("import sys\nprint('hello from', sys.argv[1:])\n")
    bad.write_text("raise SystemExit(3)\n")
    with job_worker():
        result = run_mlp("jobs", "submit", str(good), "-p", "churn", "--param", "lr=0.1", "--follow",
                         url=server, token=token)  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "hello from ['--lr', '0.1']" in result.stdout
        result = run_mlp("jobs", "submit", str(bad), "-p", "churn", "--wait", "-o", "json", url=server, token=token)
        assert result.exit_code == 1 and "failed" in result.stderr
        job = json.loads(result.stdout)
        assert job["status"] == "failed" and job["exit_code"] == 3
    logs = run_mlp("jobs", "logs", str(job["id"] - 1), url=server, token=token)
    assert logs.exit_code == 0 and "hello from" in logs.stdout
    listed = run_mlp("jobs", "list", "-p", "churn", "-o", "json", url=server, token=token)
    assert sorted(j["status"] for j in json.loads(listed.stdout)) == ["failed", "succeeded"]


def test_runs_search_as_json_csv_html_and_pandas(server, token, owner, proj):
    from experiments import services as exp_services

    experiment = exp_services.experiment_get_or_create(project=proj, name="ci", user=owner)
    for acc in (0.7, 0.9, 0.8):
        run = exp_services.run_create(experiment=experiment, user=owner)
        exp_services.run_log_batch(run=run, metrics=[("accuracy", acc, 0, 0)])
    args = ["runs", "search", "churn/ci", "--column", "metrics.accuracy", "--order-by", "metrics.accuracy DESC"]
    result = run_mlp(*args, "--filter", "metrics.accuracy > 0.75", "-o", "json", url=server, token=token)
    assert result.exit_code == 0, result.output
    assert [r["metrics.accuracy"] for r in json.loads(result.stdout)] == [0.9, 0.8]
    csv_out = run_mlp(*args, "-o", "csv", url=server, token=token).stdout.splitlines()
    assert csv_out[0].endswith("metrics.accuracy") and len(csv_out) == 4
    assert run_mlp("runs", "search", "churn/nope", url=server, token=token).exit_code == 4
    bad = run_mlp("runs", "search", "churn/ci", "--filter", "metrics.accuracy >>> 1", url=server, token=token)
    assert bad.exit_code == 2 and bad.stderr.strip().count("\n") == 0

    with Client(server, token) as client:
        table = client.runs.search("ci", project="churn", columns=["metrics.accuracy"], order_by="metrics.accuracy")
        assert (
            isinstance(table, Table) and "<table>" in table._repr_html_() and "metrics.accuracy" in table._repr_html_()
        )
        frame = table.to_pandas()
        assert list(frame["metrics.accuracy"]) == [0.7, 0.8, 0.9]
        assert "<td>alice</td>" in client.me()._repr_html_()
        ids = [r["run_id"] for r in table]
    compared = run_mlp("runs", "compare", *ids[:2], "-o", "json", url=server, token=token)
    assert compared.exit_code == 0 and {r["metrics.accuracy"] for r in json.loads(compared.stdout)} == {0.7, 0.8}


def test_bundles_honour_gitignore_and_mlpignore(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / ".git").mkdir()
    for name in ("train.py", "src/model.py", "src/notes.log", "data/big.csv", ".git/HEAD", "keep.log"):
        (tmp_path / name).write_text("x")
    (tmp_path / ".gitignore").write_text("*.log\n!keep.log\n")
    (tmp_path / ".mlpignore").write_text("data/\n")
    names = sorted(p.relative_to(tmp_path).as_posix() for p in bundle_files(tmp_path))
    assert names == [".gitignore", ".mlpignore", "keep.log", "src/model.py", "train.py"]


def test_every_command_has_help_with_an_example():
    from mlp_client.cli import cli

    def walk(group, prefix):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from walk(command, [*prefix, name])
            else:
                yield [*prefix, name]

    commands = list(walk(cli, []))
    assert len(commands) >= 25
    for path in commands:
        result = run_mlp(*path, "--help")
        assert result.exit_code == 0 and "Example:" in result.stdout and "mlp " in result.stdout, path


def test_sweeps_submit_creates_a_child_job_per_combination(server, token, proj, tmp_path):
    from jobs.models import Job

    script = tmp_path / "train.py"
    script.write_text("print('x')\n")
    args = ["sweeps", "submit", str(script), "-p", "churn", "--name", "lr", "--grid", "lr=0.1,0.01", "--grid", "d=3"]
    result = run_mlp(*args, "--metric", "auc", "-o", "json", url=server, token=token)
    assert result.exit_code == 0, result.output
    sweep = json.loads(result.stdout)
    assert sweep["space"] == {"lr": ["0.1", "0.01"], "d": ["3"]}
    assert Job.objects.filter(sweep_id=sweep["id"]).count() == 2
    bad = run_mlp(*args[:-2], "--grid", "d", "--metric", "auc", url=server, token=token)
    assert bad.exit_code == 2
