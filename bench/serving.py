"""Serving benchmark: our endpoints against the serving peers, side by side, one run,
same machine, one server at a time, loaded by wrk (`-t2`) on loopback.

    .venv/bin/python bench/serving.py [--duration 5] [--runs 1] [--models forest,pyfunc,lightgbm]
                                      [--peers mlflow,mlserver,bentoml,kserve] [--workers 1] [--profile]

Models, each served by every peer with its own runtime (bench/serving_peers.py):
- `forest`: scikit-learn RandomForestClassifier (50 trees) on iris; ours on its fast path;
- `pyfunc`: the same forest wrapped as a generic `python_function` model (a custom
  PythonModel), off every fast path;
- `lightgbm`: a LightGBM booster (multiclass, 50 rounds) on iris.
Settings: 1 and 100 rows per request, 8 and 64 connections. Ours (`manage.py serve`,
SQLite data dir) logs every prediction (checked at the end: logged == answered) and
answers the MLflow protocol; the forest also through the Open Inference Protocol.
`floor` is a bare uvicorn ASGI app answering a constant (same uvicorn options as ours):
what any Python ASGI server here can do at best.

Prints, per model and setting: requests/s, p50, p99, CPU seconds per 1,000 requests
(all processes of the server's session), our ratio to the best peer (most requests/s)
and whether our p99 is below its p50; medians over `--runs`. Then start-up times, the
time from deploy to a new revision answering, and the peers that could not run, why.
The machine is shared (2 cores): read ratios, not absolute numbers."""

import argparse
from contextlib import contextmanager
import json
import os
from pathlib import Path
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serving_peers import COLUMNS, Peer, ensure_venv, peers  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SETTINGS = [(1, 8), (1, 64), (100, 8), (100, 64)]
MODELS = ("forest", "pyfunc", "lightgbm")
OURS = "ours"
OURS_OIP = "ours (OIP)"
FLOOR = "floor (bare ASGI)"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- models ---------------------------------------------------------------------------

SAVE_MODELS = """
import sys
from pathlib import Path
import joblib, lightgbm, mlflow.lightgbm, mlflow.pyfunc, mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier

work = Path(sys.argv[1])
X, y = load_iris(return_X_y=True, as_frame=True)
forest = RandomForestClassifier(n_estimators=50, random_state=0).fit(X, y)
signature = infer_signature(X, forest.predict(X))
mlflow.sklearn.save_model(forest, str(work / "forest"), signature=signature,
                          skops_trusted_types=["sklearn.tree._tree.Tree"], pip_requirements=["scikit-learn"])
joblib.dump(forest, work / "forest.joblib")


class WrappedForest(mlflow.pyfunc.PythonModel):
    def __init__(self, forest):
        self.forest = forest

    def predict(self, context, model_input, params=None):
        return self.forest.predict(model_input)


mlflow.pyfunc.save_model(str(work / "pyfunc"), python_model=WrappedForest(forest), signature=signature,
                         pip_requirements=["scikit-learn"])
booster = lightgbm.train({"objective": "multiclass", "num_class": 3, "verbose": -1}, lightgbm.Dataset(X, y), 50)
mlflow.lightgbm.save_model(booster, str(work / "lightgbm"), signature=infer_signature(X, booster.predict(X)),
                           pip_requirements=["lightgbm"])
booster.save_model(str(work / "lightgbm.txt"))
"""


def save_models(work: Path) -> dict[str, Path]:
    subprocess.run([PYTHON, "-c", SAVE_MODELS, str(work)], check=True, capture_output=True)
    return {
        "forest": work / "forest",
        "forest_joblib": work / "forest.joblib",
        "pyfunc": work / "pyfunc",
        "lightgbm": work / "lightgbm",
        "lightgbm_txt": work / "lightgbm.txt",
    }


# -- requests -------------------------------------------------------------------------


def rows_of(n: int) -> list[list[float]]:
    return [[5.1 + (i % 7) / 10, 3.5, 1.4 + (i % 5), 0.2 + (i % 3) / 2] for i in range(n)]


def payload(kind: str, n: int) -> str:
    rows = rows_of(n)
    flat = [v for row in rows for v in row]
    tensor = {"inputs": [{"name": "input-0", "shape": [n, 4], "datatype": "FP64", "data": flat}]}
    if kind == "mlflow":
        return json.dumps({"dataframe_split": {"columns": COLUMNS, "data": rows}})
    if kind in {"oip", "mlserver-tensor"}:
        return json.dumps(tensor)
    if kind == "mlserver-pd":
        inputs = [
            {"name": c, "shape": [n], "datatype": "FP64", "data": [r[i] for r in rows]} for i, c in enumerate(COLUMNS)
        ]
        return json.dumps({"parameters": {"content_type": "pd"}, "inputs": inputs})
    if kind == "bento":
        return json.dumps({"input": rows})
    if kind == "kserve-v1":
        return json.dumps({"instances": rows})
    raise ValueError(kind)


def lua_script(directory: Path, body: str, token: str | None) -> Path:
    headers = 'wrk.headers["Content-Type"] = "application/json"\n'
    if token:
        headers += f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    escaped = body.replace("\\", "\\\\").replace('"', '\\"')
    path = directory / f"post-{abs(hash((body, token)))}.lua"
    path.write_text(f'wrk.method = "POST"\n{headers}wrk.body = "{escaped}"\n')
    return path


def check_answers(url: str, body: str, token: str | None) -> None:
    """One request before measuring: a server answering errors is not benchmarked."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


# -- measuring ------------------------------------------------------------------------


def to_ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def session_cpu_seconds(sid: int) -> float:
    """utime + stime of every live process in the server's session or below it (its
    workers too: BentoML starts its own in new sessions)."""
    processes: dict[int, tuple[int, int, int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields after the name: state, ppid, pgrp, session, ..., utime (11), stime (12)
        processes[int(stat.parent.name)] = (int(fields[1]), int(fields[3]), int(fields[11]) + int(fields[12]))
    total = 0
    for ppid, session, ticks in processes.values():
        while session != sid and ppid > 1 and ppid != sid:
            ppid, session, _ = processes.get(ppid, (0, 0, 0))
        if session == sid or ppid == sid:
            total += ticks
    return total / CLOCK_TICKS


def run_wrk(url: str, script: Path, *, duration: int, connections: int, sid: int | None) -> dict:
    cpu_before = session_cpu_seconds(sid) if sid else 0.0
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    cpu = session_cpu_seconds(sid) - cpu_before if sid else float("nan")
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": requests,
        "p50": to_ms(latency["50"]),
        "p99": to_ms(latency["99"]),
        "cpu_1k": cpu / requests * 1000 if requests else float("nan"),
        "errors": (int(errors.group(1)) if errors else 0)
        + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
    }


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 180) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except (OSError, urllib.error.HTTPError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"not ready within {timeout:.0f} s")


@contextmanager
def server(command: list[str], *, log: Path, env: dict | None = None, cwd: Path | None = None):
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        # A file, not a pipe: some servers log every request, and a full pipe stalls them.
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def measure_settings(label, model, url, kind, token, work, args, sid, results) -> None:
    for rows, connections in SETTINGS:
        body = payload(kind, rows)
        check_answers(url, body, token)
        script = lua_script(work, body, token)
        run_wrk(url, script, duration=2, connections=connections, sid=None)  # warm-up
        result = run_wrk(url, script, duration=args.duration, connections=connections, sid=sid)
        results.setdefault((model, label, rows, connections), []).append(result)
        print(f"  {model:9} {label:22} {rows:>3} rows {connections:>2} conns: {result['rps']:8.0f} req/s", flush=True)


# -- ours -----------------------------------------------------------------------------

SETUP_OURS = """
from pathlib import Path
import sys
from deployments import links, services
from mlplatform.models import User
from projects import services as project_services
work = Path(sys.argv[-1])
admin = User.objects.create_superuser("bench", "bench@example.com", "bench-pass-123", is_platform_admin=True)
project = project_services.project_create(owner=admin, name="Bench", slug="bench")
tokens = {}
for version, (slug, directory, trusted) in enumerate(
    [("forest", "forest", False), ("pyfunc", "pyfunc", True), ("lightgbm", "lightgbm", False)], start=1
):
    endpoint, tokens[slug] = services.endpoint_create(project=project, actor=admin, name=slug, slug=slug)
    info = links.VersionInfo(model_name=slug, version=version, project_id=project.pk, model_dir=work / directory)
    services.revision_deploy(endpoint=endpoint, actor=admin, model_name=slug, version=version, version_info=info,
                             gate_override_reason="benchmark", trusted=trusted)
import json
print(json.dumps(tokens))
"""

REDEPLOY = """
import json, sys, time
from pathlib import Path
from deployments import links, services
from deployments.models import Endpoint
from mlplatform.models import User
admin = User.objects.get(username="bench")
endpoint = Endpoint.objects.get(slug="forest")
info = links.VersionInfo(model_name="forest", version=9, project_id=endpoint.project_id,
                         model_dir=Path(sys.argv[-1]) / "forest")
revision = services.revision_deploy(endpoint=endpoint, actor=admin, model_name="forest", version=9,
                                    version_info=info, gate_override_reason="benchmark")
print(json.dumps({"id": revision.pk, "at": time.time()}))
"""


def ours_env(data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(MLP_DATA_DIR=str(data_dir), DJANGO_DEBUG="1", MLP_LOG_LEVEL="WARNING")
    return env


def manage_shell(code: str, data_dir: Path, work: Path) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=ours_env(data_dir),
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip().splitlines()[-1]


def setup_ours(data_dir: Path, work: Path) -> dict[str, str]:
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=ours_env(data_dir), check=True)
    return json.loads(manage_shell(SETUP_OURS.replace("sys.argv[-1]", repr(str(work))), data_dir, work))


def logged_count(data_dir: Path, work: Path) -> tuple[int, int]:
    code = (
        "from deployments.models import PredictionLog, DroppedRecords\nfrom django.db.models import Sum\n"
        "print(PredictionLog.objects.count(), DroppedRecords.objects.aggregate(n=Sum('count'))['n'] or 0)"
    )
    logged, dropped = manage_shell(code, data_dir, work).split()
    return int(logged), int(dropped)


def bench_ours(work, files, args, port, results, notes) -> None:
    data_dir = work / "data"
    tokens = setup_ours(data_dir, work)
    base = f"http://127.0.0.1:{port}/serve"
    command = [PYTHON, "manage.py", "serve", "--port", str(port), "--workers", str(args.workers)]
    started = time.monotonic()
    with server(command, log=work / "ours.log", env=ours_env(data_dir), cwd=ROOT) as process:
        for slug in MODELS:
            wait_ready(f"{base}/{slug}/ping", process)
        notes["startup"][OURS] = time.monotonic() - started
        if args.profile:
            notes["profile"] = start_profile(process.pid, work)
        for model in args.models:
            url = f"{base}/{model}/invocations"
            measure_settings(OURS, model, url, "mlflow", tokens[model], work, args, process.pid, results)
            if model == "forest":
                oip_url = f"{base}/forest/v2/models/forest/infer"
                measure_settings(OURS_OIP, model, oip_url, "oip", tokens[model], work, args, process.pid, results)
        if args.profile:
            stop_profile(notes["profile"])
        notes["deploy_to_ready"].append(deploy_to_ready(base, tokens["forest"], data_dir, work))
    time.sleep(1)
    answered = sum(r["requests"] for (m, label, *_), runs in results.items() if label.startswith(OURS) for r in runs)
    notes["log"] = (*logged_count(data_dir, work), answered)


def deploy_to_ready(base: str, token: str, data_dir: Path, work: Path) -> float:
    """Seconds from a deploy's commit to the new revision answering as a served version."""
    deployed = json.loads(manage_shell(REDEPLOY.replace("sys.argv[-1]", repr(str(work))), data_dir, work))
    url = f"{base}/forest/v2/models/forest/versions/{deployed['id']}/ready"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    while time.time() - deployed["at"] < 120:
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return time.time() - deployed["at"]
        except (OSError, urllib.error.HTTPError):
            time.sleep(0.05)
    return float("nan")


def start_profile(pid: int, work: Path) -> subprocess.Popen | None:
    py_spy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
    if not Path(py_spy).exists():
        print("py-spy is not installed (requirements-dev): no profile")
        return None
    out = work.parent / f"serving-profile-{int(time.time())}.txt"
    print(f"profiling the serving process into {out}")
    return subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "200", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profile(process: subprocess.Popen | None) -> None:
    if process is not None:
        process.send_signal(signal.SIGINT)
        process.wait(30)


# -- the floor and the peers ------------------------------------------------------------

FLOOR_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"predictions": [0]}'})
"""


def bench_floor(work, args, port, results) -> None:
    (work / "floor_app.py").write_text(FLOOR_APP)
    command = [PYTHON, "-m", "uvicorn", "floor_app:app", "--port", str(port), "--loop", "uvloop"]
    command += ["--http", "httptools", "--no-access-log", "--log-level", "warning", "--lifespan", "off"]
    with server(command, log=work / "floor.log", cwd=work) as process:
        url = f"http://127.0.0.1:{port}/"
        wait_ready(url, process)
        measure_settings(FLOOR, "floor", url, "mlflow", None, work, args, process.pid, results)


def bench_peer(peer: Peer, python: Path | None, work: Path, args, results, notes) -> None:
    bin_dir = str(python.parent) if python else str(Path(PYTHON).parent)
    command = [part.replace("{bin}", bin_dir) for part in peer.command]
    env = {**os.environ, **peer.env}
    for key in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"):
        env.pop(key, None)
    log = work / f"{peer.venv or 'mlflow'}-{peer.model}-{len(notes['startup'])}.log"
    started = time.monotonic()
    label = peer.label
    try:
        # Their own working directory: some write files there (mlflow: .metrics/).
        with server(command, log=log, env=env, cwd=peer.cwd or work) as process:
            wait_ready(f"http://127.0.0.1{peer.ready_path}", process)
            notes["startup"][f"{label} ({peer.model})"] = time.monotonic() - started
            url = f"http://127.0.0.1{peer.url_path}"
            measure_settings(label, peer.model, url, peer.request, None, work, args, process.pid, results)
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:]) if log.exists() else ""
        notes["failed"][f"{label} ({peer.model})"] = f"could not be started or measured: {exc}; log: {tail[:400]}"


# -- the report -------------------------------------------------------------------------


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def report(results: dict, notes: dict, models: list[str], workers: int) -> None:
    print(f"\nours = manage.py serve --workers {workers}. Medians over runs; CPU s/1k = CPU seconds of the")
    print("server's processes per 1,000 requests.")
    print("The machine has 2 cores shared with other work: compare ratios, not absolute numbers.")
    for model in models:
        print(f"\n== {model} ==")
        print(f"{'setting':16}{'server':24}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU s/1k':>10}{'errors':>8}")
        for rows, connections in SETTINGS:
            setting = f"{rows} row{'s' if rows > 1 else ''}, {connections} c"
            cells = {
                label: runs for (m, label, r, c), runs in results.items() if (m, r, c) == (model, rows, connections)
            }
            floor = results.get(("floor", FLOOR, rows, connections))
            if floor:
                cells[FLOOR] = floor
            for label, runs in cells.items():
                print(
                    f"{setting:16}{label:24}{median(runs, 'rps'):>9.0f}{median(runs, 'p50'):>9.2f}"
                    f"{median(runs, 'p99'):>9.2f}{median(runs, 'cpu_1k'):>10.2f}{sum(r['errors'] for r in runs):>8}"
                )
                setting = ""
            print_ratio(cells)
        for label, reason in notes["failed"].items():
            if label.endswith(f"({model})"):
                print(f"  not measured: {label}: {reason}")


def print_ratio(cells: dict) -> None:
    peers_only = {k: v for k, v in cells.items() if not k.startswith(OURS) and k != FLOOR}
    ours = cells.get(OURS)
    if not peers_only or not ours:
        return
    best = max(peers_only, key=lambda k: median(peers_only[k], "rps"))
    ratio = median(ours, "rps") / median(peers_only[best], "rps")
    below = median(ours, "p99") < median(peers_only[best], "p50")
    line = f"{'':16}ours ÷ best peer ({best}): {ratio:.1f}x req/s; our p99 {'below' if below else 'NOT below'} its p50"
    if OURS_OIP in cells:
        line += f"; OIP ÷ MLflow protocol {median(cells[OURS_OIP], 'rps') / median(ours, 'rps'):.2f}"
    if FLOOR in cells:
        line += f"; ours ÷ floor {median(ours, 'rps') / median(cells[FLOOR], 'rps'):.2f}"
    print(line)


def report_notes(notes: dict) -> None:
    print("\nstart-up (process start → ready), seconds:")
    for label, seconds in notes["startup"].items():
        print(f"  {label:34}{seconds:6.1f}")
    if notes["deploy_to_ready"]:
        print(f"deploy → new revision answering: {statistics.median(notes['deploy_to_ready']):.2f} s (median)")
    if notes.get("log"):
        logged, dropped, answered = notes["log"]
        print(f"prediction log: {logged} stored, {dropped} dropped, for {answered} measured requests (+ warm-ups)")
    for label, reason in notes["failed"].items():
        print(f"not measured: {label}: {reason}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--peers", default="mlflow,mlserver,bentoml,kserve", help="'' for ours and the floor only")
    parser.add_argument("--port-base", type=int, default=18600)
    parser.add_argument("--profile", action="store_true", help="py-spy record our process (raw stacks)")
    parser.add_argument("--workers", type=int, default=1, help="our serving processes (manage.py serve --workers)")
    args = parser.parse_args()
    args.models = [m for m in args.models.split(",") if m]
    wanted_peers = {p for p in args.peers.split(",") if p}
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    base = args.port_base
    ports = {"ours": base + 1, "mlflow": base + 2, "mlserver": base + 10, "bentoml": base + 20, "kserve": base + 30}
    work = Path(tempfile.mkdtemp(prefix="mlp-bench-"))
    results: dict = {}
    notes: dict = {"startup": {}, "failed": {}, "deploy_to_ready": []}
    venvs: dict[str, tuple[Path | None, str]] = {}
    try:
        files = save_models(work)
        for run in range(args.runs):
            print(f"run {run + 1} of {args.runs}", flush=True)
            bench_floor(work, args, base + 40, results)
            shutil.rmtree(work / "data", ignore_errors=True)
            bench_ours(work, files, args, ports["ours"], results, notes)
            for peer in peers(work, files, ports):
                name = peer.venv or "mlflow"
                if peer.model not in args.models or name not in wanted_peers:
                    continue
                if peer.venv and peer.venv not in venvs:
                    venvs[peer.venv] = ensure_venv(peer.venv)
                python, why = venvs.get(peer.venv, (None, ""))
                if peer.venv and python is None:
                    notes["failed"][f"{peer.label} ({peer.model})"] = why
                    continue
                bench_peer(peer, python, work, args, results, notes)
        report(results, notes, args.models, args.workers)
        report_notes(notes)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
