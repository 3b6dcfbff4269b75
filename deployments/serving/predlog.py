"""The prediction log's write path: a local append-only spool, drained in batches.

Writer (the serving process, on the request path): one JSON line per request, one
write(2) to this process's spool file before the response is sent, so every
acknowledged prediction is on disk even if the process is killed the next instant.
The writer holds an flock on its file for as long as it writes to it; at a size limit
it simply starts a new file and lets go of the old one.

Drainer (a thread, or a separate process so the database work never takes the
serving process's GIL): reads every spool file in the directory from its cursor and
hands complete lines to a sink (deployments.logsink.DatabaseSink: bulk_create), which
stores the records and the new cursor in one transaction, so a crash between the two
never duplicates or loses a record. A file nobody holds the writer lock on is
finished: the drainer stores the rest, counts a torn last line (a write cut by a
crash, never acknowledged) as dropped, and deletes the file. So a killed serving
process's acknowledged records reach the log through any other drainer sharing the
directory. Records refused because the disk is full are counted too: dropped records
are always counted and shown, never silently lost."""

import contextlib
import fcntl
import logging
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Protocol
import uuid

from deployments.serving import fastjson

logger = logging.getLogger(__name__)

SUFFIX = ".spool"
DRAIN_SUFFIX = ".drain"


class Sink(Protocol):
    def committed_offset(self, spool: str) -> int: ...

    def write(self, records: list[dict[str, Any]], *, spool: str, offset: int) -> None:
        """Store `records` and set the spool's cursor to `offset`, atomically."""

    def dropped(self, count: int, *, reason: str, endpoint_id: int | None = None) -> None: ...

    def forget(self, spool: str) -> None: ...


class MemorySink:
    """A sink for tests and database-less runs."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.cursors: dict[str, int] = {}
        self.dropped_counts: dict[str, int] = {}
        self.lock = threading.Lock()

    def committed_offset(self, spool: str) -> int:
        return self.cursors.get(spool, 0)

    def write(self, records, *, spool, offset):
        with self.lock:
            self.records.extend(records)
            self.cursors[spool] = offset

    def dropped(self, count, *, reason, endpoint_id=None):
        with self.lock:
            self.dropped_counts[reason] = self.dropped_counts.get(reason, 0) + count

    def forget(self, spool):
        self.cursors.pop(spool, None)


def _default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


# -- the writer ---------------------------------------------------------------------
class SpoolWriter:
    def __init__(self, directory: str | Path, *, max_file_bytes: int = 64 * 1024 * 1024) -> None:
        self.directory = Path(directory)
        self.max_file_bytes = max_file_bytes
        self.appended = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._fd = -1
        self._size = 0
        self.name = ""

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}{SUFFIX}"
        fd = os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        with self._lock:
            old, self._fd, self._size, self.name = self._fd, fd, 0, name
        if old >= 0:
            os.close(old)  # releases its lock: the drainer finishes and deletes it

    def append(self, record: dict[str, Any], payload: dict[str, Any] | None = None) -> bool:
        """Called before the response is sent: acknowledged means on disk.

        The line is `<record JSON>[TAB<payload JSON>]`: compact JSON never contains a
        raw tab, so the drainer splits there and stores the payload (inputs, outputs)
        as the text it already is, without decoding and re-encoding it."""
        line = fastjson.dumps(record, default=_default)
        if payload is not None:
            line += b"\t" + fastjson.dumps(payload, default=_default)
        line += b"\n"
        try:
            with self._lock:
                os.write(self._fd, line)
                self._size += len(line)
            self.appended += 1
        except OSError:
            self.dropped += 1
            return False
        if self._size > self.max_file_bytes:
            self.open()
        return True

    def close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    @property
    def is_open(self) -> bool:
        return self._fd >= 0


# -- the drainer --------------------------------------------------------------------
class Drainer:
    def __init__(self, directory: str | Path, *, sink: Sink) -> None:
        self.directory = Path(directory)
        self.sink = sink
        self.flushed = 0
        self.dropped = 0
        self._last_complaint = -1e9

    def drain_all(self) -> int:
        """One pass over the directory; returns how many records it stored."""
        total = 0
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            try:
                total += self._drain_file(path)
            except Exception:
                # A database outage fails every pass: say so once a minute, not 5x a second.
                if time.monotonic() - self._last_complaint > 60:
                    self._last_complaint = time.monotonic()
                    logger.exception("draining %s failed; will retry", path.name)
        return total

    def _drain_file(self, path: Path) -> int:
        # One drainer per file at a time (several processes may share the directory).
        guard = os.open(path.with_suffix(DRAIN_SUFFIX), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if not _try_lock(guard):
                return 0
            try:
                spool_fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                return 0
            try:
                finished = _try_lock(spool_fd)  # nobody writes to it any more
                stored = self._drain(path, final=finished)
                if finished:
                    path.unlink(missing_ok=True)
                    self.sink.forget(path.name)
                    path.with_suffix(DRAIN_SUFFIX).unlink(missing_ok=True)
                return stored
            finally:
                os.close(spool_fd)
        finally:
            os.close(guard)

    def _drain(self, path: Path, *, final: bool) -> int:
        name = path.name
        offset = self.sink.committed_offset(name)
        total, size = 0, 4 * 1024 * 1024
        with open(path, "rb") as handle:
            handle.seek(offset)
            while True:
                # One chunk is one sink transaction: records and cursor move together.
                chunk = handle.read(size)
                if not chunk:
                    break
                end = chunk.rfind(b"\n") + 1
                if end == 0 and len(chunk) == size:  # one record longer than a chunk
                    size *= 2
                    handle.seek(offset)
                    continue
                if end == 0:
                    if final:
                        self._note_dropped(1, "torn record after a crash")
                    break
                total += self._store(name, chunk[:end], offset + end)
                offset += end
                handle.seek(offset)
        return total

    def _store(self, name: str, data: bytes, new_offset: int) -> int:
        records, bad = [], 0
        for line in data.splitlines():
            head, _, payload = line.partition(b"\t")
            try:
                record = fastjson.loads(head)
                record["payload"] = payload.decode()
            except ValueError:
                bad += 1
                continue
            records.append(record)
        self.sink.write(records, spool=name, offset=new_offset)
        if bad:
            self._note_dropped(bad, "unreadable record")
        self.flushed += len(records)
        return len(records)

    def _note_dropped(self, count: int, reason: str) -> None:
        self.dropped += count
        try:
            self.sink.dropped(count, reason=reason)
        except Exception:
            logger.exception("could not record %d dropped prediction-log records (%s)", count, reason)


class DrainerThread:
    def __init__(self, drainer: Drainer, *, interval: float = 0.2) -> None:
        self.drainer = drainer
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="prediction-log-drainer", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.drainer.drain_all()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.drainer.drain_all()


class DrainerProcess:
    """The drainer in a child process (`python -m deployments.serving.drain`)."""

    def __init__(self, directory: str | Path, *, interval: float = 0.2, cwd: str | Path | None = None) -> None:
        self.directory = Path(directory)
        self.interval = interval
        self.cwd = cwd
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "deployments.serving.drain",
                    str(self.directory),
                    str(self.interval),
                    str(os.getpid()),
                ],
                cwd=self.cwd,
            )

    def stop(self, timeout: float = 15) -> None:
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._process = None


class Spool:
    """A serving process's prediction log: its writer plus a drainer (thread or process)."""

    def __init__(self, directory: str | Path, *, sink: Sink | None = None, drainer=None, interval: float = 0.2) -> None:
        self.directory = Path(directory)
        self.writer = SpoolWriter(directory)
        if drainer is None:
            assert sink is not None
            drainer = DrainerThread(Drainer(directory, sink=sink), interval=interval)
        self.drainer = drainer

    def start(self) -> None:
        if not self.writer.is_open:
            self.writer.open()
        self.drainer.start()

    def append(self, record: dict[str, Any], payload: dict[str, Any] | None = None) -> bool:
        return self.writer.append(record, payload)

    def stop(self) -> None:
        """Graceful shutdown: stop writing, then drain what was written."""
        self.writer.close()
        self.drainer.stop()

    @property
    def appended(self) -> int:
        return self.writer.appended

    @property
    def dropped(self) -> int:
        inner = getattr(self.drainer, "drainer", None)
        return self.writer.dropped + (inner.dropped if inner is not None else 0)

    @property
    def flushed(self) -> int | None:
        inner = getattr(self.drainer, "drainer", None)
        return inner.flushed if inner is not None else None
