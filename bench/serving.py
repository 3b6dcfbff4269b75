"""Serving benchmark: the same model behind `mlflow models serve` and behind our
endpoint (`manage.py serve`), loaded by wrk with 8 connections on loopback, one run,
side by side.

    .venv/bin/python bench/serving.py [--duration 10] [--connections 8]

The model: scikit-learn RandomForestClassifier (50 trees) on iris, saved with
mlflow.sklearn.save_model. Ours runs on a throwaway SQLite data dir and logs every
prediction (checked at the end: logged == requests wrk completed). Prints requests/s,
p50 and p99 for 1-row and 100-row requests, and the ratios."""

import argparse
import json
import os
from pathlib import Path
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def save_model(directory: Path) -> Path:
    code = f"""
import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
X, y = load_iris(return_X_y=True, as_frame=True)
model = RandomForestClassifier(n_estimators=50, random_state=0).fit(X, y)
mlflow.sklearn.save_model(model, {str(directory / "model")!r}, signature=infer_signature(X, model.predict(X)),
                          skops_trusted_types=["sklearn.tree._tree.Tree"], pip_requirements=["scikit-learn"])
"""
    subprocess.run([PYTHON, "-c", code], check=True, capture_output=True)
    return directory / "model"


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; see its log")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def body(rows: int) -> str:
    data = [[5.1 + (i % 7) / 10, 3.5, 1.4 + (i % 5), 0.2 + (i % 3) / 2] for i in range(rows)]
    return json.dumps({"dataframe_split": {"columns": COLUMNS, "data": data}})


def lua_script(directory: Path, payload: str, token: str | None) -> Path:
    headers = 'wrk.headers["Content-Type"] = "application/json"\n'
    if token:
        headers += f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    escaped = payload.replace("\\", "\\\\").replace('"', '\\"')
    path = directory / f"post-{abs(hash((payload, token)))}.lua"
    path.write_text(f'wrk.method = "POST"\n{headers}wrk.body = "{escaped}"\n')
    return path


def to_ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def run_wrk(url: str, script: Path, *, duration: int, connections: int) -> dict:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "p50": to_ms(latency["50"]),
        "p99": to_ms(latency["99"]),
        "errors": (int(errors.group(1)) if errors else 0)
        + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
    }


def setup_ours(data_dir: Path, model_dir: Path) -> str:
    code = f"""
from pathlib import Path
from deployments import links, services
from mlplatform.models import User
from projects import services as project_services
admin = User.objects.create_superuser("bench", "bench@example.com", "bench-pass-123", is_platform_admin=True)
project = project_services.project_create(owner=admin, name="Bench", slug="bench")
endpoint, token = services.endpoint_create(project=project, actor=admin, name="Iris", slug="iris")
info = links.VersionInfo(model_name="iris", version=1, project_id=project.pk, model_dir=Path({str(model_dir)!r}))
services.revision_deploy(endpoint=endpoint, actor=admin, model_name="iris", version=1, version_info=info,
                         gate_override_reason="benchmark")
print(token)
"""
    env = ours_env(data_dir)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    result = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return result.stdout.strip().splitlines()[-1]


def ours_env(data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(MLP_DATA_DIR=str(data_dir), DJANGO_DEBUG="1", MLP_LOG_LEVEL="WARNING")
    return env


def logged_count(data_dir: Path) -> tuple[int, int]:
    code = (
        "from deployments.models import PredictionLog, DroppedRecords\nfrom django.db.models import Sum\n"
        "print(PredictionLog.objects.count(), DroppedRecords.objects.aggregate(n=Sum('count'))['n'] or 0)"
    )
    out = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=ours_env(data_dir),
        check=True,
        capture_output=True,
        text=True,
    )
    logged, dropped = out.stdout.strip().splitlines()[-1].split()
    return int(logged), int(dropped)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    work = Path(tempfile.mkdtemp(prefix="mlp-bench-"))
    processes: list[subprocess.Popen] = []
    try:
        model_dir = save_model(work)
        mlflow_port, our_port = free_port(), free_port()
        # mlflow execs `uvicorn` by name; MLflow 3 also refuses skops without the flag.
        path = f"{Path(PYTHON).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        mlflow_env = {**os.environ, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true", "PATH": path}
        mlflow_bin = str(Path(PYTHON).parent / "mlflow")
        processes.append(
            subprocess.Popen(
                [
                    mlflow_bin,
                    "models",
                    "serve",
                    "-m",
                    str(model_dir),
                    "--env-manager",
                    "local",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(mlflow_port),
                ],
                env=mlflow_env,
                # A file, not a pipe: uvicorn logs every request, and a full pipe
                # would stall the server.
                stdout=(work / "mlflow.log").open("w"),
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        )
        token = setup_ours(work / "data", model_dir)
        processes.append(
            subprocess.Popen(
                [PYTHON, "manage.py", "serve", "--port", str(our_port)],
                cwd=ROOT,
                env=ours_env(work / "data"),
                stdout=(work / "ours.log").open("w"),
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        )
        mlflow_url = f"http://127.0.0.1:{mlflow_port}/invocations"
        our_url = f"http://127.0.0.1:{our_port}/serve/iris/invocations"
        wait_ready(f"http://127.0.0.1:{mlflow_port}/ping", processes[0])
        wait_ready(f"http://127.0.0.1:{our_port}/serve/iris/ping", processes[1])
        results = {}
        for rows in (1, 100):
            payload = body(rows)
            for name, url, tok in (("mlflow", mlflow_url, None), ("ours", our_url, token)):
                script = lua_script(work, payload, tok)
                run_wrk(url, script, duration=2, connections=args.connections)  # warm-up
                results[(name, rows)] = run_wrk(url, script, duration=args.duration, connections=args.connections)
        report(results)
        time.sleep(2)
        logged, dropped = logged_count(work / "data")
        print(f"\nprediction log: {logged} records stored, {dropped} dropped (includes warm-up requests)")
    finally:
        for process in processes:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(15)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


def report(results: dict) -> None:
    print(f"\n{'':14}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for rows in (1, 100):
        for name in ("mlflow", "ours"):
            r = results[(name, rows)]
            print(f"{name + f' {rows}-row':14}{r['rps']:>10.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}{r['errors']:>8}")
        m, o = results[("mlflow", rows)], results[("ours", rows)]
        print(
            f"{'ratio':14}{o['rps'] / m['rps']:>9.1f}x"
            f"{'':>10}{'':>10}   ours p99 {o['p99']:.2f} ms vs mlflow p50 {m['p50']:.2f} ms: "
            f"{'below' if o['p99'] < m['p50'] else 'NOT below'}"
        )


if __name__ == "__main__":
    main()
