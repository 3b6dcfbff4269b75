"""Concurrent writers and searchers: `wrk` with 16 connections against stock `mlflow
server` (its defaults: 4 workers; PostgreSQL backend) and against our production entry
point (README's uvicorn command, PostgreSQL + Redis), side by side in one run.

    .venv/bin/python bench/tracking_load.py [--pg postgres://postgres@127.0.0.1:5432]
        [--duration 10] [--connections 16] [--our-workers 2] [--rounds 1]

Workloads (Lua scripts next to this file): log-metric (a new step per request),
log-batch of 100 points, runs/search with a metric + param filter and an order over an
experiment of 200 runs. Prints requests/s, p50 and p99 per server and the ratios
(ours / MLflow for req/s; MLflow / ours for latency). With --rounds > 1 the servers take
turns and the medians are printed. Each server gets its own fresh database
(mlp_load_mlflow, mlp_load_ours) on ports 18810 and 18811.
"""

import argparse
import json
import os
from pathlib import Path
import re
import statistics
import subprocess
import sys
import tempfile

import requests

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from tracking import PY, ROOT, recreate_db, stop, wait_http  # noqa: E402

MLFLOW_PORT, OUR_PORT = 18810, 18811
WORKLOADS = [
    ("log-metric", "wrk_log_metric.lua"),
    ("log-batch of 100", "wrk_log_batch.lua"),
    ("runs/search metric+param filter, order", "wrk_search.lua"),
]


def start_mlflow(pg: str, tmp: Path) -> subprocess.Popen:
    db = recreate_db(pg, "mlp_load_mlflow").replace("postgres://", "postgresql+psycopg://", 1)
    cmd = [str(Path(PY).parent / "mlflow"), "server", "--backend-store-uri", db,
           "--artifacts-destination", str(tmp / "mlflow-artifacts"), "--host", "127.0.0.1",
           "--port", str(MLFLOW_PORT)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=open(tmp / "mlflow.log", "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
    wait_http(f"http://127.0.0.1:{MLFLOW_PORT}/health", proc, 240)
    return proc


def start_ours(pg: str, tmp: Path, workers: int) -> tuple[subprocess.Popen, str]:
    recreate_db(pg, "mlp_load_ours")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        DATABASE_URL=f"{pg}/mlp_load_ours",
        REDIS_URL=os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/8"),
        DJANGO_SECRET_KEY="bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        MLP_DATA_DIR=str(tmp / "ours-data"),
        DJANGO_SETTINGS_MODULE="mlplatform.settings",
    )
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run(
        [PY, "manage.py", "shell", "-c", "from mlplatform.services import user_create, api_token_create;"
         "u = user_create(username='bench', password='bench-pass-123');"
         "print('TOKEN', api_token_create(user=u, name='bench')[1])"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    token = next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("TOKEN "))
    cmd = [PY, "-m", "uvicorn", "mlplatform.asgi:application", "--host", "127.0.0.1", "--port", str(OUR_PORT),
           "--workers", str(workers), "--log-level", "warning", "--no-access-log"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(tmp / "ours.log", "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
    wait_http(f"http://127.0.0.1:{OUR_PORT}/healthz", proc, 120)
    return proc, token


def prepare(uri: str, token: str) -> dict:
    """Through each server's own API: a run to log to, and an experiment of 200 runs
    (p1 = a|b, acc in 0..0.99) to search."""
    session = requests.Session()
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    api = f"{uri}/api/2.0/mlflow"

    def call(path: str, body: dict) -> dict:
        response = session.post(f"{api}/{path}", json=body, timeout=60)
        response.raise_for_status()
        return response.json()

    def new_run(experiment_id: str, name: str) -> str:
        return call("runs/create", {"experiment_id": experiment_id, "run_name": name, "start_time": 1})["run"]["info"][
            "run_id"
        ]

    writes = call("experiments/create", {"name": "load-writes"})["experiment_id"]
    searched = call("experiments/create", {"name": "load-search"})["experiment_id"]
    for i in range(200):
        run_id = new_run(searched, f"r{i}")
        call(
            "runs/log-batch",
            {
                "run_id": run_id,
                "params": [{"key": "p1", "value": "a" if i % 2 else "b"}, {"key": "p2", "value": str(i)}],
                "metrics": [{"key": "acc", "value": (i % 100) / 100, "timestamp": 1, "step": 0}],
            },
        )
    return {"run": new_run(writes, "writer"), "experiment": searched}


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS[unit]


def run_wrk(uri: str, script: str, env: dict, args) -> dict:
    cmd = ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{args.duration}s", "--latency",
           "--timeout", "30s", "-s", str(BENCH / script), uri]  # fmt: skip
    out = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"BENCH errors=(\d+) non2xx=(\d+)", out)
    if errors is None or errors.groups() != ("0", "0"):
        raise SystemExit(f"wrk saw failed requests against {uri} ({script}):\n{out}")
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.MULTILINE))
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rate is None or set(latency) != {"50", "99"}:
        raise SystemExit(f"could not read wrk's output ({script} against {uri}):\n{out}")
    return {
        "rps": float(rate.group(1)),
        "p50": _ms(latency["50"]),
        "p99": _ms(latency["99"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--our-workers", type=int, default=2, help="uvicorn processes (default: 2, the cores here)")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    results: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        mlflow_proc = start_mlflow(args.pg, tmp)
        ours_proc, token = start_ours(args.pg, tmp, args.our_workers)
        try:
            servers = {
                "mlflow": (f"http://127.0.0.1:{MLFLOW_PORT}", ""),
                "ours": (f"http://127.0.0.1:{OUR_PORT}", token),
            }
            targets = {name: prepare(uri, tok) for name, (uri, tok) in servers.items()}
            for _ in range(args.rounds):
                for label, script in WORKLOADS:
                    for name, (uri, tok) in servers.items():  # in turns: load changes fall on both
                        env = {
                            "BENCH_LUA_DIR": str(BENCH),
                            "BENCH_TOKEN": tok,
                            "BENCH_RUN_ID": targets[name]["run"],
                            "BENCH_EXPERIMENT_ID": targets[name]["experiment"],
                        }
                        results.setdefault((label, name), []).append(run_wrk(uri, script, env, args))
        finally:
            stop(ours_proc)
            stop(mlflow_proc)
    report(results, args)


def report(results: dict, args) -> None:
    def med(label: str, name: str, field: str) -> float:
        return statistics.median(r[field] for r in results[(label, name)])

    print(f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration}s, {args.rounds} round(s); "
          f"MLflow: `mlflow server` defaults (4 workers), ours: uvicorn --workers {args.our_workers}")  # fmt: skip
    head = f"{'workload':42} {'MLflow req/s':>12} {'p50':>8} {'p99':>8} {'ours req/s':>11} {'p50':>8} {'p99':>8}"
    print(f"{head} {'req/s ratio':>11} {'our p99 < their p50':>20}")
    rows = []
    for label, _ in WORKLOADS:
        m = {f: med(label, "mlflow", f) for f in ("rps", "p50", "p99")}
        o = {f: med(label, "ours", f) for f in ("rps", "p50", "p99")}
        rows.append({"workload": label, "mlflow": m, "ours": o, "ratio": o["rps"] / m["rps"]})
        print(
            f"{label:42} {m['rps']:12.0f} {m['p50']:6.1f}ms {m['p99']:6.1f}ms {o['rps']:11.0f} {o['p50']:6.1f}ms"
            f" {o['p99']:6.1f}ms {o['rps'] / m['rps']:10.1f}x {'yes' if o['p99'] < m['p50'] else 'no':>20}"
        )
    print("ratio = our requests/s / MLflow's. Both servers and wrk share this machine's cores.")
    print("JSON " + json.dumps(rows))


if __name__ == "__main__":
    main()
