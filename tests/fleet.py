"""Production processes as real subprocesses (web, worker, beat, serve) for the fleet
and beat tests: each in its own session, its output in a log file that a failing
test prints."""

from collections import Counter
import json
import os
from pathlib import Path
import signal
import subprocess
import sys

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

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in self.procs.values():
            try:
                proc.wait(15)
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
