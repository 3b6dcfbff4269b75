"""What a serving process serves: endpoint specs from a ConfigSource.

The database is the source of truth (deployments.serving_source.DatabaseSource); a
serving process polls its cheap `version()` and reloads the specs when it changes, so
a traffic change or a new revision reaches every process within one poll interval.
StaticSource (tests) and FileSource (a JSON file, for a database-less process) share
the shape."""

from dataclasses import dataclass, field, replace
import hashlib
import json
from pathlib import Path
import threading
from typing import Protocol

CANARY = "canary"
SHADOW = "shadow"
DEFAULT_MAX_BODY = 5 * 1024 * 1024


@dataclass(frozen=True)
class RevisionSpec:
    id: int
    model_dir: str
    trusted: bool = False
    # False: no fast path (deployments.serving.loader); the endpoint's switch.
    fast_path: bool = True


@dataclass(frozen=True)
class EndpointSpec:
    id: int
    slug: str
    champion: RevisionSpec | None
    challenger: RevisionSpec | None = None
    mode: str = CANARY
    # Share of live requests the canary challenger answers (0..1); shadows see all.
    traffic: float = 0.0
    public: bool = False
    token_hashes: frozenset[str] = field(default_factory=frozenset)
    # Share of requests whose inputs and outputs are logged; status and latency of
    # every request are always logged, so the metrics stay exact.
    payload_sample: float = 1.0
    max_body_bytes: int = DEFAULT_MAX_BODY
    max_batch_rows: int = 1024
    max_wait_ms: float = 0.0

    def revisions(self) -> list[RevisionSpec]:
        return [r for r in (self.champion, self.challenger) if r is not None]


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ConfigSource(Protocol):
    def version(self) -> str: ...

    def load(self) -> dict[str, EndpointSpec]: ...

    def report(self, *, revision_id: int, loaded: bool, error: str = "", loader: str = "") -> None: ...


class StaticSource:
    """In-memory specs; `set` bumps the version (tests, benchmarks)."""

    def __init__(self, endpoints: list[EndpointSpec] | None = None) -> None:
        self._lock = threading.Lock()
        self._version = 0
        self._endpoints: dict[str, EndpointSpec] = {}
        self.reports: list[tuple[int, bool, str]] = []
        self.loaders: dict[int, str] = {}
        self.set(*(endpoints or []))

    def set(self, *endpoints: EndpointSpec) -> None:
        with self._lock:
            self._endpoints = {e.slug: e for e in endpoints}
            self._version += 1

    def update(self, slug: str, **changes) -> None:
        with self._lock:
            self._endpoints[slug] = replace(self._endpoints[slug], **changes)
            self._version += 1

    def version(self) -> str:
        return str(self._version)

    def load(self) -> dict[str, EndpointSpec]:
        with self._lock:
            return dict(self._endpoints)

    def report(self, *, revision_id: int, loaded: bool, error: str = "", loader: str = "") -> None:
        self.reports.append((revision_id, loaded, error))
        if loader:
            self.loaders[revision_id] = loader


class FileSource:
    """Specs from a JSON file: {"endpoints": [{"id", "slug", "champion": {"id", "model_dir"}, ...}]}."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def version(self) -> str:
        stat = self.path.stat()
        return f"{stat.st_mtime_ns}-{stat.st_size}"

    def load(self) -> dict[str, EndpointSpec]:
        data = json.loads(self.path.read_text())
        endpoints = {}
        for raw in data.get("endpoints", []):
            raw = dict(raw)
            for role in ("champion", "challenger"):
                if raw.get(role):
                    raw[role] = RevisionSpec(**raw[role])
            raw["token_hashes"] = frozenset(token_hash(t) for t in raw.pop("tokens", []))
            spec = EndpointSpec(**raw)
            endpoints[spec.slug] = spec
        return endpoints

    def report(self, *, revision_id: int, loaded: bool, error: str = "", loader: str = "") -> None:
        pass
