"""Ingest processes for the reliability tests: `manage.py ingest` and
`manage.py ingest_mqtt` as real child processes on the test database, which a test
may kill -9."""

import os
from pathlib import Path
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.db import connection
import requests

ROOT = Path(__file__).resolve().parents[2]
# Helper 4's port range (18400-18499); the brokers take 18460 and up.
_PORTS = iter(range(18400, 18460))


def free_port() -> int:
    for port in _PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port left in 18400-18459")


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


def env_for(archive_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="mlplatform.settings",
        DATABASE_URL=database_url(),
        DJANGO_SECRET_KEY=settings.SECRET_KEY,
        MLP_ARCHIVE_DIR=str(archive_dir),
        MLP_INGEST_POLL_INTERVAL="0.2",
        MLP_DATA_DIR=str(Path(archive_dir).parent / "data-dir"),
    )
    return env


class Child:
    started: list["Child"] = []  # every child a test started; `reap` stops them all

    def __init__(self, args: list[str], archive_dir: Path) -> None:
        self.args = args
        self.archive_dir = archive_dir
        self.process: subprocess.Popen | None = None

    def start(self) -> "Child":
        log = open(Path(self.archive_dir).parent / f"{self.args[0]}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", *self.args],
            cwd=ROOT,
            env=env_for(self.archive_dir),
            stdout=log,
            stderr=log,
        )
        log.close()
        Child.started.append(self)
        return self

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()


class IngestProcess(Child):
    def __init__(self, archive_dir: Path) -> None:
        self.port = free_port()
        super().__init__(["ingest", "--port", str(self.port)], archive_dir)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "IngestProcess":
        super().start()
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, "manage.py ingest exited"
            try:
                requests.get(f"{self.base}/ingest/up/check", timeout=1)
                return self
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "manage.py ingest did not come up"
                time.sleep(0.2)


def reap() -> None:
    while Child.started:
        Child.started.pop().stop()
