"""Side-by-side benchmark: stock `mlflow server` (the pinned version, PostgreSQL backend)
versus our server (uvicorn + PostgreSQL), driven by the same real mlflow client script.

    .venv/bin/python bench/tracking.py [--pg postgres://postgres@127.0.0.1:5432] [--big-runs 20000]

Prints medians and ratios (MLflow time / our time). Each server gets its own fresh
database (mlp_bench_mlflow, mlp_bench_ours), dropped and recreated on every run.

A third server gives the floor: a do-nothing ASGI app under the same uvicorn that
replays, per path, the responses our server gave (recorded during our run). The same
client script against it measures what no server can go below: the client's own work
(protobuf conversions, requests) plus one HTTP round trip. MLflow time / floor time is
the best ratio any server could reach on that row.
"""

import argparse
import json
import os
from pathlib import Path
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
FILTER = "metrics.acc > 0.5 AND params.p1 = 'a'"
ORDER = ["metrics.acc DESC"]
# One page of 10: MLflow's 50-run experiment has exactly 10 matches, so both servers
# return (and the client parses) the same amount.
PAGE = 10


# -- the client workload (runs in its own process per server) --------------------------


def record_responses(path: str) -> None:
    """Keep the last response body per URL path, written to `path` at exit (for the
    floor server to replay)."""
    import atexit
    from urllib.parse import urlsplit

    from requests.adapters import HTTPAdapter

    recorded: dict[str, str] = {}
    send = HTTPAdapter.send

    def recording_send(self, request, *args, **kwargs):
        response = send(self, request, *args, **kwargs)
        recorded[urlsplit(request.url).path] = response.content.decode()
        return response

    HTTPAdapter.send = recording_send
    atexit.register(lambda: Path(path).write_text(json.dumps(recorded)))


def replay_without_network(path: str) -> None:
    """Answer every request inside the client process with the recorded body for its
    path: no socket, no server. What is left is the client's own work alone."""
    from urllib.parse import urlsplit

    from requests.adapters import HTTPAdapter
    from requests.models import Response
    from requests.structures import CaseInsensitiveDict

    recorded = json.loads(Path(path).read_text())

    def send(self, request, *args, **kwargs):
        body = recorded.get(urlsplit(request.url).path, "{}").encode()
        response = Response()
        response.status_code, response.reason, response.encoding = 200, "OK", "utf-8"
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json", "Content-Length": str(len(body))})
        response._content = body
        response.url, response.request, response.connection = request.url, request, self
        return response

    HTTPAdapter.send = send


def client_main(uri: str, mode: str, experiment_id: str = "") -> None:
    import mlflow  # noqa: F401  (client only)
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    if os.environ.get("BENCH_RECORD"):
        record_responses(os.environ["BENCH_RECORD"])
    if os.environ.get("BENCH_NO_NETWORK"):
        replay_without_network(os.environ["BENCH_NO_NETWORK"])
    client = MlflowClient(uri)
    out: dict = {}
    if mode == "search":
        times = []
        for _ in range(10):
            t = time.perf_counter()
            found = client.search_runs([experiment_id], FILTER, order_by=ORDER, max_results=PAGE)
            times.append(time.perf_counter() - t)
        out["search_big"] = statistics.median(times)
        out["search_big_hits"] = len(found)
        print("RESULT " + json.dumps(out))
        return
    exp_id = client.create_experiment(f"bench-{time.time_ns()}")
    t = time.perf_counter()
    run_ids = []
    for i in range(50):
        run = client.create_run(exp_id, run_name=f"run-{i}")
        params = [Param("p1", "a" if i % 2 else "b"), Param("p2", str(i)), Param("p3", "x")]
        client.log_batch(run.info.run_id, params=params)
        run_ids.append(run.info.run_id)
    out["create_50_runs"] = time.perf_counter() - t
    now = int(time.time() * 1000)
    for i, run_id in enumerate(run_ids):
        client.log_batch(run_id, metrics=[Metric("acc", (i % 10) / 10, now, 0)])
    target = run_ids[0]
    batch_times = []
    t_all = time.perf_counter()
    for b in range(50):
        metrics = [Metric("loss", 1.0 / (b * 1000 + j + 1), now + j, b * 1000 + j) for j in range(1000)]
        t = time.perf_counter()
        client.log_batch(target, metrics=metrics)
        batch_times.append(time.perf_counter() - t)
    out["log_50k_points"] = time.perf_counter() - t_all
    out["log_batch_1000"] = statistics.median(batch_times)
    single = []
    for k in range(50):
        t = time.perf_counter()
        client.log_metric(run_ids[1], "single", float(k), step=k)
        single.append(time.perf_counter() - t)
    out["log_metric"] = statistics.median(single)
    client.log_batch(run_ids[2], metrics=[Metric("h", float(k), now + k, k) for k in range(200)])
    searches, histories = [], []
    for _ in range(10):
        t = time.perf_counter()
        found = client.search_runs([exp_id], FILTER, order_by=ORDER, max_results=PAGE)
        searches.append(time.perf_counter() - t)
        t = time.perf_counter()
        history = client.get_metric_history(run_ids[2], "h")
        histories.append(time.perf_counter() - t)
    assert len(history) == 200, len(history)
    out["search_runs"] = statistics.median(searches)
    out["search_hits"] = len(found)
    out["metric_history_200"] = statistics.median(histories)
    out.update(raw_http(uri, run_ids, now))
    print("RESULT " + json.dumps(out))


def raw_http(uri: str, run_ids: list[str], now: int) -> dict:
    """The same calls with pre-serialised bodies over one keep-alive session: the server's
    share of the time, without the client's protobuf work (identical for both servers)."""
    import requests

    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    session = requests.Session()
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    api = f"{uri}/api/2.0/mlflow"
    bodies = [
        json.dumps({"run_id": run_ids[3], "metrics": [
            {"key": "raw", "value": j / 7, "timestamp": now + j, "step": b * 1000 + j} for j in range(1000)
        ]})
        for b in range(20)
    ]  # fmt: skip
    batch, single, history = [], [], []
    for body in bodies:
        t = time.perf_counter()
        session.post(
            f"{api}/runs/log-batch", data=body, headers={"Content-Type": "application/json"}
        ).raise_for_status()
        batch.append(time.perf_counter() - t)
    for k in range(30):
        body = json.dumps({"run_id": run_ids[4], "key": "one", "value": k, "timestamp": now + k, "step": k})
        t = time.perf_counter()
        session.post(
            f"{api}/runs/log-metric", data=body, headers={"Content-Type": "application/json"}
        ).raise_for_status()
        single.append(time.perf_counter() - t)
    for _ in range(20):
        t = time.perf_counter()
        session.get(f"{api}/metrics/get-history", params={"run_id": run_ids[2], "metric_key": "h"}).raise_for_status()
        history.append(time.perf_counter() - t)
    return {
        "raw_log_batch_1000": statistics.median(batch),
        "raw_log_metric": statistics.median(single),
        "raw_metric_history_200": statistics.median(history),
    }


def run_client(uri: str, env: dict, *args: str) -> dict:
    proc = subprocess.run([PY, __file__, "--client", uri, *args], env=env, capture_output=True, text=True, timeout=1800)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"client failed against {uri}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][7:])


# -- servers -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recreate_db(pg: str, name: str) -> str:
    import psycopg

    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{pg}/{name}"


def wait_http(url: str, proc: subprocess.Popen, seconds: int = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early ({proc.returncode}) waiting for {url}")
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 (our own localhost URL)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"timed out waiting for {url}")


def start_mlflow(pg: str, tmp: Path) -> tuple[subprocess.Popen, str]:
    db = recreate_db(pg, "mlp_bench_mlflow").replace("postgres://", "postgresql+psycopg://", 1)
    port = free_port()
    cmd = [
        str(Path(PY).parent / "mlflow"), "server", "--backend-store-uri", db,
        "--artifacts-destination", str(tmp / "mlflow-artifacts"), "--host", "127.0.0.1", "--port", str(port), "-w", "1",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=open(tmp / "mlflow.log", "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
    uri = f"http://127.0.0.1:{port}"
    wait_http(f"{uri}/health", proc, 240)
    return proc, uri


def ours_env(pg: str, tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_") and k != "REDIS_URL"}
    env.update(
        DATABASE_URL=f"{pg}/mlp_bench_ours",
        DJANGO_SECRET_KEY="bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        MLP_DATA_DIR=str(tmp / "ours-data"),
        MLP_LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="mlplatform.settings",
    )
    return env


def start_ours(pg: str, tmp: Path) -> tuple[subprocess.Popen, str, str]:
    recreate_db(pg, "mlp_bench_ours")
    env = ours_env(pg, tmp)
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    make_token = (
        "from mlplatform.services import user_create, api_token_create;"
        "u = user_create(username='bench', password='bench-pass-123');"
        "print('TOKEN', api_token_create(user=u, name='bench')[1])"
    )
    out = subprocess.run(
        [PY, "manage.py", "shell", "-c", make_token], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    token = next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("TOKEN "))
    port = free_port()
    cmd = [PY, "-m", "uvicorn", "mlplatform.asgi:application", "--host", "127.0.0.1", "--port", str(port),
           "--lifespan", "off", "--log-level", "warning", "--no-access-log"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(tmp / "ours.log", "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
    uri = f"http://127.0.0.1:{port}"
    wait_http(f"{uri}/healthz", proc, 120)
    return proc, uri, token


async def floor_app(scope, receive, send):
    """The floor server: answers every request with the recorded body for its path."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = FLOOR_RESPONSES.get(scope["path"], "{}").encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


FLOOR_RESPONSES: dict[str, str] = (
    json.loads(Path(os.environ["BENCH_FLOOR"]).read_text()) if os.environ.get("BENCH_FLOOR") else {}
)


def start_floor(tmp: Path, recorded: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [PY, "-m", "uvicorn", "tracking:floor_app", "--app-dir", str(ROOT / "bench"), "--host", "127.0.0.1",
           "--port", str(port), "--lifespan", "off", "--log-level", "warning", "--no-access-log"]  # fmt: skip
    env = {**os.environ, "BENCH_FLOOR": str(recorded)}
    proc = subprocess.Popen(cmd, env=env, stdout=open(tmp / "floor.log", "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
    uri = f"http://127.0.0.1:{port}"
    wait_http(f"{uri}/healthz", proc, 60)
    return proc, uri


def populate_big(pg: str, tmp: Path, n: int) -> str:
    """Bulk-load an experiment of n runs straight into our database (going through the
    API would only measure the loader); returns its experiment id."""
    code = f"""
import django, random, uuid
django.setup()
from experiments.models import *
from mlplatform.models import User
from projects.services import personal_project_get_or_create
from experiments.services import experiment_create
user = User.objects.get(username='bench')
exp = experiment_create(project=personal_project_get_or_create(user=user), name='big', user=user)
rng = random.Random(7)
runs = [Run(id=uuid.uuid4().hex, experiment=exp, name=f'r{{i}}', start_time=1_700_000_000_000 + i, user_name='bench',
            artifact_uri='') for i in range({n})]
Run.objects.bulk_create(runs, batch_size=2000)
Param.objects.bulk_create([Param(run=r, key=k, value=v) for i, r in enumerate(runs)
                           for k, v in (('p1', 'a' if i % 2 else 'b'), ('p2', str(i)), ('p3', 'x'))], batch_size=5000)
LatestMetric.objects.bulk_create([LatestMetric(run=r, key=k, value=rng.random(), step=0, timestamp=1)
                                  for r in runs for k in ('acc', 'loss')], batch_size=5000)
RunTag.objects.bulk_create([RunTag(run=r, key='mlflow.runName', value=r.name) for r in runs], batch_size=5000)
print('EXP', exp.pk)
"""
    out = subprocess.run([PY, "-c", code], cwd=ROOT, env=ours_env(pg, tmp), check=True, capture_output=True, text=True)
    subprocess.run(["psql", f"{pg}/mlp_bench_ours", "-qc", "ANALYZE"], check=False, capture_output=True)
    return next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("EXP "))


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def report(mlflow: dict, ours: dict, big: dict, n_big: int, floor: dict, client_only: dict) -> None:
    rows = [
        ("50 runs created, 3 params each (total)", "create_50_runs", "create_50_runs"),
        ("50,000 metric points, log_batch of 1,000 (total)", "log_50k_points", "log_50k_points"),
        ("one log_batch of 1,000 points (median)", "log_batch_1000", "log_batch_1000"),
        ("one log_metric (median of 50)", "log_metric", "log_metric"),
        ("search_runs metric+param filter, ordered (median)", "search_runs", "search_runs"),
        ("get_metric_history, 200 points (median)", "metric_history_200", "metric_history_200"),
        ("raw HTTP: log-batch of 1,000 (median of 20)", "raw_log_batch_1000", "raw_log_batch_1000"),
        ("raw HTTP: log-metric (median of 30)", "raw_log_metric", "raw_log_metric"),
        ("raw HTTP: get-history, 200 points (median of 20)", "raw_metric_history_200", "raw_metric_history_200"),
    ]
    head = f"{'measure':55} {'MLflow':>11} {'ours':>11} {'ratio':>8} {'floor':>11} {'best ratio':>11}"
    print(f"\n{head} {'client only':>12} {'client cap':>11}")
    for label, a, b in rows:
        print(
            f"{label:55} {mlflow[a] * 1000:9.1f}ms {ours[b] * 1000:9.1f}ms {mlflow[a] / ours[b]:7.1f}x"
            f" {floor[a] * 1000:9.1f}ms {mlflow[a] / floor[a]:10.1f}x"
            f" {client_only[a] * 1000:10.2f}ms {mlflow[a] / client_only[a]:10.1f}x"
        )
    label = f"search: ours over {n_big:,} runs vs MLflow over 50"
    ratio = mlflow["search_runs"] / big["search_big"]
    print(f"{label:55} {mlflow['search_runs'] * 1000:9.1f}ms {big['search_big'] * 1000:9.1f}ms {ratio:7.1f}x")
    print(f"(hits: MLflow {mlflow['search_hits']}, ours {ours['search_hits']}, ours-big {big['search_big_hits']})")
    print("ratio = MLflow time / our time; 'raw HTTP' rows leave out the client's own protobuf work.")
    print("floor = the same client against a server that does nothing (replays recorded answers);")
    print("best ratio = MLflow time / floor: no server can do better than that on the row.")
    print("client only = the same client with every request answered in-process (no socket, no server);")
    print("client cap = MLflow time / client only: the ratio even a zero-cost server and network could not beat.")


def median_of(results: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in results) for k in results[0]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--big-runs", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3, help="client runs per server, interleaved")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        client_env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        client_env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
        recorded = tmp / "recorded.json"
        mlflow_proc, mlflow_uri = start_mlflow(args.pg, tmp)
        ours_proc, ours_uri, token = start_ours(args.pg, tmp)
        ours_env_client = {**client_env, "MLFLOW_TRACKING_TOKEN": token}
        mlflow_runs, ours_runs = [], []
        try:
            # Both servers up at once and measured in turns, so a change in the machine's
            # load during the run falls on both alike.
            for i in range(args.rounds):
                mlflow_runs.append(run_client(mlflow_uri, client_env, "full"))
                env = {**ours_env_client, "BENCH_RECORD": str(recorded)} if i == 0 else ours_env_client
                ours_runs.append(run_client(ours_uri, env, "full"))
            exp_id = populate_big(args.pg, tmp, args.big_runs)
            big = run_client(ours_uri, ours_env_client, "search", exp_id)
        finally:
            stop(mlflow_proc)
            stop(ours_proc)
        proc, uri = start_floor(tmp, recorded)
        try:
            floor_result = median_of([run_client(uri, client_env, "full") for _ in range(args.rounds)])
        finally:
            stop(proc)
        no_network = {**client_env, "BENCH_NO_NETWORK": str(recorded)}
        client_only = median_of([run_client(uri, no_network, "full") for _ in range(args.rounds)])
    print(f"medians over {args.rounds} interleaved client runs per server")
    report(median_of(mlflow_runs), median_of(ours_runs), big, args.big_runs, floor_result, client_only)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_main(*sys.argv[2:])
    else:
        sys.path.insert(0, str(ROOT))
        main()
