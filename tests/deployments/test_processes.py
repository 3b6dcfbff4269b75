"""Serving as separate processes (`manage.py serve`), some of them killed."""

import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from deployments.serving.predlog import Drainer, MemorySink
from tests.conftest import free_port
from tests.deployments.conftest import split_body

ROOT = Path(__file__).resolve().parents[2]


def start_serve(config: Path, spool: Path, data_dir: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(DJANGO_DEBUG="1", MLP_DATA_DIR=str(data_dir), MLP_SERVING_POLL_INTERVAL="0.2")
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "serve",
            "--port",
            str(port),
            "--config",
            str(config),
            "--spool-dir",
            str(spool),
            "--no-drain",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, port


def wait_up(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "serve exited"
        try:
            if requests.get(f"http://127.0.0.1:{port}/serve/iris/ping", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise AssertionError("serve did not come up")


def iris_config(path: Path, model_dir: Path) -> Path:
    endpoint = {"id": 1, "slug": "iris", "public": True, "champion": {"id": 1, "model_dir": str(model_dir)}}
    path.write_text(json.dumps({"endpoints": [endpoint]}))
    return path


@pytest.mark.slow
def test_workers_share_one_port_and_each_logs_what_it_answered(tmp_path, model_dirs):
    # Given `serve --workers 2`
    spool = tmp_path / "spool"
    process, port = start_serve(
        iris_config(tmp_path / "endpoints.json", model_dirs["iris"]), spool, tmp_path, "--workers", "2"
    )
    try:
        wait_up(port, process, timeout=180)
        # When clients send requests on the one port, over fresh connections
        url = f"http://127.0.0.1:{port}/serve/iris/invocations"
        ids = []
        for _ in range(60):
            response = requests.post(url, json=split_body(), headers={"Connection": "close"}, timeout=30)
            assert response.status_code == 200 and response.json() == {"predictions": [0]}
            ids.append(response.headers["x-request-id"])
        # Then two processes answered, each writing its own spool, and every answer is logged
        files = list(spool.glob("*.spool"))
        assert len({f.name.split("-")[0] for f in files}) == 2
        sink = MemorySink()
        Drainer(spool, sink=sink).drain_all()
        assert sorted(r["rid"] for r in sink.records) == sorted(ids)
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.slow
def test_killing_a_serving_process_leaves_the_others_serving_and_its_acknowledged_records_logged(tmp_path, model_dirs):
    config = tmp_path / "endpoints.json"
    config.write_text(
        json.dumps(
            {
                "endpoints": [
                    {
                        "id": 1,
                        "slug": "iris",
                        "public": True,
                        "champion": {"id": 1, "model_dir": str(model_dirs["iris"])},
                    }
                ]
            }
        )
    )
    spool = tmp_path / "spool"
    victim, victim_port = start_serve(config, spool, tmp_path)
    survivor, survivor_port = start_serve(config, spool, tmp_path)
    try:
        wait_up(victim_port, victim)
        wait_up(survivor_port, survivor)
        acknowledged: dict[int, list[str]] = {victim_port: [], survivor_port: []}
        after_kill: list[int] = []
        killed = threading.Event()
        stop = threading.Event()

        def client(port: int) -> None:
            session = requests.Session()
            while not stop.is_set():
                try:
                    response = session.post(
                        f"http://127.0.0.1:{port}/serve/iris/invocations", json=split_body(), timeout=5
                    )
                except requests.RequestException:
                    if port == victim_port and killed.is_set():
                        return
                    continue
                assert response.status_code == 200
                acknowledged[port].append(response.headers["x-request-id"])
                if killed.is_set():
                    after_kill.append(port)

        clients = [
            threading.Thread(target=client, args=(p,)) for p in (victim_port, victim_port, survivor_port, survivor_port)
        ]
        for thread in clients:
            thread.start()
        time.sleep(1.0)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        killed.set()
        time.sleep(1.0)
        stop.set()
        for thread in clients:
            thread.join(10)

        assert acknowledged[victim_port], "the victim answered nothing before it was killed"
        assert after_kill.count(survivor_port) > 5, "the survivor stopped serving"

        # Any drainer sharing the directory finishes the dead process's spool.
        sink = MemorySink()
        Drainer(spool, sink=sink).drain_all()
        logged = {r["rid"] for r in sink.records}
        missing = [rid for rid in acknowledged[victim_port] + acknowledged[survivor_port] if rid not in logged]
        assert len(missing) <= sum(sink.dropped_counts.values()), f"{len(missing)} acknowledged records lost"
        assert not missing
        assert len(list(spool.glob("*.spool"))) == 1, "the dead process's spool file was not cleaned up"
    finally:
        for process in (victim, survivor):
            if process.poll() is None:
                process.terminate()
                process.wait(15)
