"""The raw archive: append-only segments per stream, group-committed.

No Django here: the ingest plane, the MQTT subscriber, the release service and the
benchmark all use it directly.

Layout under the archive root (see README "## Data" for the contract):

    <project>/<stream>/dt=YYYY-MM-DD/hr=HH/<first_seq:020d>.jsonl.open   (being written)
    <project>/<stream>/dt=YYYY-MM-DD/hr=HH/<first_seq:020d>.jsonl        (sealed)
    <project>/<stream>/dt=YYYY-MM-DD/hr=HH/<first_seq:020d>.json         (its manifest)
    <project>/<stream>/dt=YYYY-MM-DD/hr=HH/<first_seq:020d>.parquet      (compacted)

Each line is `{"seq":N,"t":<ingest ms>,"k":"<dedup key>","r":<record>}`; sequence
numbers are gap-free per stream. A write is durable (and may be acknowledged) only
once `on_durable` was called without an error: concurrent appends share one fsync
(group commit). A failed write or fsync truncates the segment back to its last durable
end, so nothing unacknowledged stays behind to be mistaken for acknowledged data, and
the sequence numbers stay gap-free.

Several processes may append to one stream: each append holds an flock on the stream's
`.lock` and re-reads the tail if another process moved it."""

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
import datetime as dt
import fcntl
import hashlib
import os
from pathlib import Path
import threading
import time

import orjson

OPEN_SUFFIX = ".jsonl.open"
SEALED_SUFFIX = ".jsonl"


class ArchiveUnavailable(Exception):
    """The archive could not be written (disk full, read-only, ...): do not acknowledge."""


# --- storage ---------------------------------------------------------------------------


class ArchiveStore:
    """Where segments live; the artifact store's shape, so an object store can follow
    (sealed segments and manifests are whole-file writes; only the open segment needs a
    local append-able file)."""

    def local_path(self, rel: str) -> Path:
        raise NotImplementedError

    def write_atomic(self, rel: str, chunks: Iterable[bytes]) -> int:
        raise NotImplementedError

    def read(self, rel: str) -> bytes:
        raise NotImplementedError

    def list(self, prefix: str, pattern: str) -> list[str]:
        raise NotImplementedError

    def delete(self, rel: str) -> None:
        raise NotImplementedError


class LocalArchiveStore(ArchiveStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def local_path(self, rel: str) -> Path:
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"path outside the archive: {rel}")
        return path

    def write_atomic(self, rel: str, chunks: Iterable[bytes]) -> int:
        """Writes to a temporary name, fsyncs, renames: a retried write of the same name
        replaces it whole, never leaves half a file."""
        path = self.local_path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        size = 0
        try:
            with open(tmp, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                    size += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise ArchiveUnavailable(str(exc)) from exc
        _fsync_dir(path.parent)
        return size

    def read(self, rel: str) -> bytes:
        return self.local_path(rel).read_bytes()

    def list(self, prefix: str, pattern: str) -> list[str]:
        base = self.local_path(prefix)
        return sorted(str(p.relative_to(self.root)) for p in base.glob(pattern)) if base.exists() else []

    def delete(self, rel: str) -> None:
        self.local_path(rel).unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- one stream's log --------------------------------------------------------------------


@dataclass(frozen=True)
class SealedSegment:
    stream_key: str
    first_seq: int
    last_seq: int
    records: int
    bytes: int
    path: str
    sha256: str
    first_at_ms: int
    last_at_ms: int
    sealed_at_ms: int

    def manifest(self) -> dict:
        return {
            "segment": f"{self.first_seq:020d}",
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "records": self.records,
            "bytes": self.bytes,
            "path": self.path,
            "sha256": self.sha256,
            "first_at_ms": self.first_at_ms,
            "last_at_ms": self.last_at_ms,
            "sealed_at_ms": self.sealed_at_ms,
        }


@dataclass
class AppendResult:
    accepted: int
    duplicates: int
    first_seq: int | None
    last_seq: int | None
    segment: str


@dataclass
class _Pending:
    callback: Callable[[BaseException | None], None]
    keys: list[str]


@dataclass
class Limits:
    records: int = 100_000
    bytes: int = 64 * 1024 * 1024
    seconds: float = 300.0
    dedup_window: int = 100_000


def partition(ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return f"dt={moment:%Y-%m-%d}/hr={moment:%H}"


HOUR_MS = 3_600_000


def same_partition(a_ms: int, b_ms: int) -> bool:
    """partition(a_ms) == partition(b_ms), without formatting dates on every append:
    partitions are UTC hours, and UTC hours are whole multiples of an hour since the epoch."""
    return a_ms // HOUR_MS == b_ms // HOUR_MS


def dedup_key(source: bytes, record_json: bytes) -> str:
    return hashlib.blake2b(source + b"\0" + record_json, digest_size=16).hexdigest()


def dedup_keys(source: bytes, records_json: list[bytes]) -> list[str]:
    """dedup_key for each record: the source's prefix hashed once, each record only
    added to a copy of that state (no concatenation, no per-record setup)."""
    base = hashlib.blake2b(source + b"\0", digest_size=16)
    keys = []
    for record_json in records_json:
        digest = base.copy()
        digest.update(record_json)
        keys.append(digest.hexdigest())
    return keys


class StreamLog:
    """The append side of one stream. Thread-safe; see the module docstring."""

    def __init__(
        self,
        store: LocalArchiveStore,
        stream_key: str,
        *,
        limits: Limits | None = None,
        on_seal: Callable[[SealedSegment], None] | None = None,
    ) -> None:
        self.store = store
        self.key = stream_key
        self.limits = limits or Limits()
        self.on_seal = on_seal
        self.dir = store.local_path(stream_key)
        self._cond = threading.Condition()
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._rel = ""  # the open segment, relative to the archive root
        self._path: Path | None = None  # ... and its absolute path (resolved once, not per append)
        self._file_id = (0, 0)  # ... and its (st_dev, st_ino)
        self._first_seq = 0
        self._next_seq = 0
        self._end = 0
        self._count = 0
        self._first_ms = 0
        self._last_ms = 0
        self._opened_at = 0.0
        self._hash = hashlib.sha256()
        self._unhashed: list[bytes] = []  # written, not yet in _hash (the commit thread adds them)
        self._durable = (0, 0, 0)  # (end offset, next seq, count) covered by an fsync
        self._keys: dict[str, None] = {}
        self._key_order: deque[str] = deque()
        self._pending: list[_Pending] = []
        self._syncing = False
        self._loaded = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self.duplicates = 0
        self.appended = 0
        self.appended_bytes = 0

    # -- public ---------------------------------------------------------------------
    def append(
        self,
        records: list[tuple[bytes, str]],
        *,
        on_durable: Callable[[BaseException | None], None],
        now_ms: int | None = None,
    ) -> AppendResult:
        """Appends (record JSON, dedup key) pairs; `on_durable` is called (from the
        commit thread) once they are fsync'd, or with the error that lost them.
        Raises ArchiveUnavailable when the write itself fails (nothing was kept)."""
        now_ms = now_ms or int(time.time() * 1000)
        with self._cond:
            self._wait_idle_if_sealing(now_ms)
            self._flock()
            try:
                self._ensure_open(now_ms)
                result, keys = self._write(records, now_ms)
            finally:
                self._funlock()
            self._pending.append(_Pending(on_durable, keys))
            self._start_committer()
            self._cond.notify_all()
        return result

    def append_sync(self, records: list[tuple[bytes, str]], timeout: float = 30.0) -> AppendResult:
        """append() and wait for the fsync (for threads that may block: services, tests)."""
        done = threading.Event()
        outcome: list[BaseException | None] = []

        def finished(exc: BaseException | None) -> None:
            outcome.append(exc)
            done.set()

        result = self.append(records, on_durable=finished)
        if not done.wait(timeout):
            raise ArchiveUnavailable("the archive did not confirm the write in time")
        if outcome[0] is not None:
            raise ArchiveUnavailable(str(outcome[0])) from outcome[0]
        return result

    def seal_if_due(self, now_ms: int | None = None) -> SealedSegment | None:
        """Seals the open segment if it is past its age (the timer calls this)."""
        now_ms = now_ms or int(time.time() * 1000)
        with self._cond:
            if self._fd is None or self._count == 0:
                return None
            if time.monotonic() - self._opened_at < self.limits.seconds and same_partition(now_ms, self._first_ms):
                return None
            self._wait_idle()
            self._flock()
            try:
                return self._seal()
            finally:
                self._funlock()

    def next_seq(self) -> int:
        with self._cond:
            if not self._loaded:
                self._flock()
                try:
                    self._recover()
                finally:
                    self._funlock()
            return self._next_seq

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(5)
        with self._cond:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    # -- writing ----------------------------------------------------------------------
    def _write(self, records: list[tuple[bytes, str]], now_ms: int) -> tuple[AppendResult, list[str]]:
        keys = [key for _, key in records]
        known = self._keys
        if len(set(keys)) == len(keys) and known.keys().isdisjoint(keys):
            fresh = records  # the usual batch: no duplicate, nothing to filter
        else:
            fresh, batch_keys = [], set()
            for record in records:
                key = record[1]
                if key in known or key in batch_keys:
                    continue
                batch_keys.add(key)
                fresh.append(record)
            keys = [key for _, key in fresh]
        first = self._next_seq
        accepted = len(fresh)
        self.duplicates += len(records) - accepted
        result = AppendResult(
            accepted=accepted,
            duplicates=len(records) - accepted,
            first_seq=first if accepted else None,
            last_seq=first + accepted - 1 if accepted else None,
            segment=self._rel,
        )
        if not accepted:
            return result, keys
        # One formatting per record and one join: the lines go to the file in one write.
        stamp = b',"t":%d,"k":' % now_ms
        dumps = orjson.dumps
        data = b"".join(
            [
                b'{"seq":%d%s%s,"r":%s}\n' % (seq, stamp, dumps(key), record_json)
                for seq, (record_json, key) in enumerate(fresh, first)
            ]
        )
        try:
            _write_all(self._fd, data)
        except OSError as exc:
            self._truncate_to(self._end)
            raise ArchiveUnavailable(str(exc)) from exc
        self._unhashed.append(data)  # hashed on the commit thread, off the request path
        self._end += len(data)
        self._count += accepted
        self._next_seq = first + accepted
        self._last_ms = now_ms
        self._remember(keys)
        self.appended += accepted
        self.appended_bytes += len(data)
        return result, keys

    def _remember(self, keys: list[str]) -> None:
        self._keys.update(dict.fromkeys(keys))
        self._key_order.extend(keys)
        excess = len(self._key_order) - self.limits.dedup_window
        if excess > 0:
            forget, pop = self._key_order.popleft, self._keys.pop
            for _ in range(excess):
                pop(forget(), None)

    def _truncate_to(self, offset: int) -> None:
        try:
            os.ftruncate(self._fd, offset)
        except OSError:
            pass  # shrinking needs no space; if even this fails, recovery trims the tail

    def _ensure_open(self, now_ms: int) -> None:
        if not self._loaded or self._moved_by_other_process():
            self._recover()
        if self._fd is not None and self._due(now_ms):
            self._wait_idle()
            self._seal()
        if self._fd is None:
            self._open_new(now_ms)

    def _due(self, now_ms: int) -> bool:
        return self._count > 0 and (
            self._count >= self.limits.records
            or self._end >= self.limits.bytes
            or not same_partition(now_ms, self._first_ms)
        )

    def _wait_idle_if_sealing(self, now_ms: int) -> None:
        if self._fd is not None and self._due(now_ms):
            self._wait_idle()

    def _wait_idle(self) -> None:
        while self._syncing:
            self._cond.wait()

    def _open_new(self, now_ms: int) -> None:
        rel = f"{self.key}/{partition(now_ms)}/{self._next_seq:020d}{OPEN_SUFFIX}"
        path = self.store.local_path(rel)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self._file_id = _file_id(self._fd)
            _fsync_dir(path.parent)
        except OSError as exc:
            self._fd = None
            raise ArchiveUnavailable(str(exc)) from exc
        self._rel, self._first_seq, self._end, self._count = rel, self._next_seq, 0, 0
        self._path = path
        self._first_ms = self._last_ms = now_ms
        self._opened_at = time.monotonic()
        self._hash = hashlib.sha256()
        self._unhashed = []
        self._durable = (0, self._next_seq, 0)

    # -- group commit ----------------------------------------------------------------------
    def _start_committer(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._commit_loop, name=f"archive-{self.key}", daemon=True)
            self._thread.start()

    def _commit_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed and not self._pending:
                    return
                batch, self._pending = self._pending, []
                fd, target = self._fd, (self._end, self._next_seq, self._count)
                chunks, self._unhashed, digest = self._unhashed, [], self._hash
                self._syncing = True
            error = _fsync(fd)
            with self._cond:
                if error is None:
                    if fd == self._fd:
                        self._durable = target
                else:
                    batch = batch + self._pending
                    self._pending = []
                    self._rollback(batch)  # rehashes from the file
            for pending in batch:
                pending.callback(error)
            # After the acknowledgements, not before them; in file order (one commit
            # thread), and sealing waits for `_syncing` to clear before it reads the hash.
            if error is None:
                for chunk in chunks:
                    digest.update(chunk)
            with self._cond:
                self._syncing = False
                self._cond.notify_all()

    def _rollback(self, lost: list[_Pending]) -> None:
        """After a failed fsync: what was written since the last good one is not
        acknowledged, so it goes (truncated away, its sequence numbers reused)."""
        end, next_seq, count = self._durable
        self._flock()
        try:
            if self._fd is not None:
                self._truncate_to(end)
            self._end, self._next_seq, self._count = end, next_seq, count
            self._unhashed = []
            self._rehash()
            for pending in lost:
                for key in pending.keys:
                    self._keys.pop(key, None)
        finally:
            self._funlock()

    def _rehash(self) -> None:
        self._hash = hashlib.sha256()
        if self._rel:
            with open(self.store.local_path(self._rel), "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    self._hash.update(block)

    # -- sealing ----------------------------------------------------------------------------
    def _seal(self) -> SealedSegment | None:
        """Fsyncs and closes the open segment, renames it to its sealed name and writes its
        manifest. Caller holds the condition and the flock, with no fsync running."""
        if self._fd is None:
            return None
        error = _fsync(self._fd)
        batch, self._pending = self._pending, []
        if error is not None:
            self._rollback(batch)
            for pending in batch:
                pending.callback(error)
            raise ArchiveUnavailable(str(error))
        for pending in batch:
            pending.callback(None)
        for chunk in self._unhashed:
            self._hash.update(chunk)
        self._unhashed = []
        os.close(self._fd)
        self._fd = None
        if self._count == 0:
            self.store.delete(self._rel)
            self._rel = ""
            return None
        sealed_rel = self._rel[: -len(OPEN_SUFFIX)] + SEALED_SUFFIX
        segment = SealedSegment(
            stream_key=self.key,
            first_seq=self._first_seq,
            last_seq=self._next_seq - 1,
            records=self._count,
            bytes=self._end,
            path=sealed_rel,
            sha256=self._hash.hexdigest(),
            first_at_ms=self._first_ms,
            last_at_ms=self._last_ms,
            sealed_at_ms=int(time.time() * 1000),
        )
        # The manifest first: a crash between the two leaves an open segment with a
        # manifest, which recovery seals again with the same name and content.
        self.store.write_atomic(sealed_rel[: -len(SEALED_SUFFIX)] + ".json", [orjson.dumps(segment.manifest())])
        os.replace(self.store.local_path(self._rel), self.store.local_path(sealed_rel))
        _fsync_dir(self.store.local_path(sealed_rel).parent)
        self._rel = ""
        if self.on_seal is not None:
            self.on_seal(segment)
        return segment

    # -- recovery and other processes ----------------------------------------------------------
    def _moved_by_other_process(self) -> bool:
        if self._fd is None:
            return bool(self.store.list(self.key, f"dt=*/hr=*/*{OPEN_SUFFIX}")) or self._last_sealed_next() != (
                self._next_seq
            )
        # One stat of the path per append: gone (sealed elsewhere), another file, or
        # another size (appended elsewhere) all mean another process moved it.
        try:
            status = os.stat(self._path)
        except FileNotFoundError:
            return True
        return status.st_size != self._end or (status.st_dev, status.st_ino) != self._file_id

    def _last_sealed_next(self) -> int:
        manifests = self.store.list(self.key, "dt=*/hr=*/*.json")
        if not manifests:
            return 0
        last = max(manifests, key=lambda rel: rel.rsplit("/", 1)[-1])
        return orjson.loads(self.store.read(last))["last_seq"] + 1

    def _recover(self) -> None:
        """Rebuilds the state from disk: the last sealed segment's manifest, then the open
        segment (a torn last line trimmed) and the dedup keys it holds."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._next_seq, self._rel = self._last_sealed_next(), ""
        opened = self.store.list(self.key, f"dt=*/hr=*/*{OPEN_SUFFIX}")
        for rel in sorted(opened, key=lambda r: r.rsplit("/", 1)[-1]):
            self._adopt(rel)
        self._loaded = True

    def _adopt(self, rel: str) -> None:
        path = self.store.local_path(rel)
        data = path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):
            with open(path, "r+b") as handle:
                handle.truncate(len(complete))
                os.fsync(handle.fileno())
        lines = complete.splitlines()
        first_seq = int(rel.rsplit("/", 1)[-1][: -len(OPEN_SUFFIX)])
        manifest = path.with_name(path.name[: -len(OPEN_SUFFIX)] + ".json")
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self._file_id = _file_id(self._fd)
        self._rel, self._first_seq, self._end, self._count = rel, first_seq, len(complete), len(lines)
        self._path = path
        self._next_seq = first_seq + len(lines)
        self._hash = hashlib.sha256(complete)
        self._unhashed = []
        self._opened_at = time.monotonic()
        self._first_ms = orjson.loads(lines[0])["t"] if lines else int(time.time() * 1000)
        self._last_ms = orjson.loads(lines[-1])["t"] if lines else self._first_ms
        self._durable = (self._end, self._next_seq, self._count)
        self._remember([orjson.loads(line)["k"] for line in lines[-self.limits.dedup_window :]])
        if manifest.exists() or not lines:
            self._seal()

    def _flock(self) -> None:
        if self._lock_fd is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)

    def _funlock(self) -> None:
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)


def _file_id(fd: int) -> tuple[int, int]:
    status = os.fstat(fd)
    return status.st_dev, status.st_ino


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync(fd: int | None) -> BaseException | None:
    if fd is None:
        return None
    try:
        os.fdatasync(fd)
    except OSError as exc:
        return exc
    return None


# --- reading ----------------------------------------------------------------------------


def read_records(store: LocalArchiveStore, rel: str) -> list[dict]:
    """Every line of a segment (sealed or open), parsed."""
    data = store.local_path(rel).read_bytes()
    return [orjson.loads(line) for line in data.splitlines() if line.endswith(b"}")]


def stream_segments(store: LocalArchiveStore, stream_key: str) -> list[str]:
    """Every segment of a stream, sealed and open, in sequence order."""
    rels = store.list(stream_key, "dt=*/hr=*/*.jsonl") + store.list(stream_key, f"dt=*/hr=*/*{OPEN_SUFFIX}")
    return sorted(rels, key=lambda r: r.rsplit("/", 1)[-1])


def tail(store: LocalArchiveStore, stream_key: str, count: int) -> list[dict]:
    """The last `count` records of a stream, oldest first."""
    out: list[dict] = []
    for rel in reversed(stream_segments(store, stream_key)):
        lines = store.local_path(rel).read_bytes().splitlines()
        out[:0] = [orjson.loads(line) for line in lines[-(count - len(out)) :] if line.endswith(b"}")]
        if len(out) >= count:
            break
    return out[-count:]
