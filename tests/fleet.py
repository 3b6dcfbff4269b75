"""Production processes as real subprocesses (web, worker, beat, serve) for the fleet
and beat tests: each in its own session, its output in a log file that a failing
test prints."""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time

ROOT = Path(__file__).resolve().parents[1]


def process_env(*, redis_url: str, data_dir: Path, database_url: str = "", **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        DJANGO_SETTINGS_MODULE="mlplatform.settings_test",
        REDIS_URL=redis_url,
        MLP_DATA_DIR=str(data_dir),
        PYTHONUNBUFFERED="1",
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    env.update(extra)
    return env


class Fleet:
    """Named subprocesses; `kill` is a SIGKILL, `close` ends whatever is left."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = env
        self.procs: dict[str, subprocess.Popen] = {}
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: list[str], **extra_env: str) -> subprocess.Popen:
        with open(self.log_dir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, *argv],
                cwd=ROOT,
                env={**self.env, **extra_env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def web(self, name: str, port: int) -> subprocess.Popen:
        return self.start(
            name,
            ["-m", "uvicorn", "mlplatform.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
            + ["--log-level", "warning", "--no-access-log"],
        )

    def worker(self, name: str, concurrency: int = 2) -> subprocess.Popen:
        return self.start(
            name,
            ["-m", "celery", "-A", "mlplatform", "worker", "-Q", "default,jobs", "-c", str(concurrency)]
            + ["-n", f"{name}@%h", "-l", "WARNING", "--without-mingle", "--without-gossip"],
        )

    def beat(self, name: str) -> subprocess.Popen:
        return self.start(
            name,
            ["-m", "celery", "-A", "mlplatform", "beat", "-l", "WARNING"]
            + ["--pidfile", str(self.log_dir / f"{name}.pid"), "-s", str(self.log_dir / f"{name}-schedule")],
        )

    def serve(self, name: str, port: int, spool: Path) -> subprocess.Popen:
        return self.start(name, ["manage.py", "serve", "--port", str(port), "--spool-dir", str(spool)])

    def kill(self, name: str, *, group: bool = False) -> None:
        """SIGKILL the process (with `group`, its whole session: a worker and its pool)."""
        proc = self.procs[name]
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def logs(self) -> str:
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"--- {path.name} ---\n{text[-3000:]}")
        return "\n".join(parts)

    def close(self, grace: float = 15) -> None:
        """SIGTERM to every process group; SIGKILL to what is left after one shared `grace`."""
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def queued_tasks(redis_url: str, queue: str = "default") -> Counter:
    """Task names of the messages waiting in a Celery queue on Redis."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return Counter(json.loads(raw)["headers"]["task"] for raw in client.lrange(queue, 0, -1))
    finally:
        client.close()


def database_url(db: dict) -> str:
    """The URL of the database Django is connected to (the test database)."""
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass
class Call:
    """One request of a load generator: when it ran, and its acknowledgement or error."""

    started: float
    ended: float
    ack: str = ""
    error: str = ""
    connection_error: bool = False


class Load(threading.Thread):
    """Calls `send(i)` in a loop until stopped, keeping every call's outcome. `send`
    returns the acknowledged key; an exception is an error. After its first error the
    client gives up on its target, as a load balancer takes a dead backend out.
    `target` names what it sends to (a URL, a run id)."""

    def __init__(self, name: str, target: str, send: Callable[[int], str]) -> None:
        super().__init__(name=name, daemon=True)
        self.target = target
        self.send = send
        self.calls: list[Call] = []
        self.halt = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.halt.is_set():
            started = time.monotonic()
            try:
                ack = self.send(i)
            except Exception as error:  # noqa: BLE001 - every failure is an outcome to judge
                text = f"{type(error).__name__}: {error}"[:500]
                self.calls.append(Call(started, time.monotonic(), error=text, connection_error=_refused(error)))
                return
            self.calls.append(Call(started, time.monotonic(), ack=ack))
            i += 1

    @property
    def acked(self) -> list[str]:
        return [c.ack for c in self.calls if not c.error]

    @property
    def errors(self) -> list[Call]:
        return [c for c in self.calls if c.error]


def _refused(error: BaseException | None) -> bool:
    """A connection refused, reset or cut mid-answer (the process is gone), however the
    client wrapped it: the MLflow client raises its own exception from the requests one."""
    import requests

    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, requests.ConnectionError | requests.exceptions.ChunkedEncodingError | ConnectionError):
            return True
        error = error.__cause__ or error.__context__
    return False
