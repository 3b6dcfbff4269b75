"""The deployments app's view of its upstream apps: the registry (model versions, their
files and offline metrics) and the project's gates and KPIs.

Kept in one module so the rest of the app speaks in plain values, and so tests can
stand in for an upstream app with one monkeypatch."""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlplatform.errors import ValidationFailed
from mlplatform.models import User
from projects import selectors as project_selectors
from projects import services as project_services
from projects.models import Project
from registry import selectors as registry_selectors


@dataclass
class VersionInfo:
    model_name: str
    version: int
    project_id: int
    model_dir: Path
    obj: Any = None
    metrics: dict[str, float] = field(default_factory=dict)


def version_resolve(*, user: User, name: str, version: object) -> VersionInfo:
    """The registered version `name` v`version` as the user may see it (NotFound otherwise)."""
    return _info(registry_selectors.model_version_get(user=user, name=name, version=version))


def _info(mv) -> VersionInfo:
    metrics: dict[str, float] = {}
    run = getattr(mv, "run", None)
    if run is not None:
        metrics = _run_metrics(run)
    return VersionInfo(
        model_name=mv.registered_model.name,
        version=mv.version,
        project_id=mv.registered_model.project_id,
        model_dir=Path(registry_selectors.model_version_local_dir(version=mv)),
        obj=mv,
        metrics=metrics,
    )


def _run_metrics(run) -> dict[str, float]:
    """The run's latest value of each metric (best effort: the experiments app's shape)."""
    latest = getattr(run, "latest_metrics", None)
    if latest is not None and hasattr(latest, "all"):
        return {m.key: m.value for m in latest.all()}
    metrics = getattr(run, "metrics", None)
    if metrics is not None and hasattr(metrics, "all"):
        values: dict[str, float] = {}
        for m in metrics.order_by("step", "timestamp"):
            values[m.key] = m.value
        return values
    return {}


def newer_versions(*, model_name: str, project_id: int, after_version: int) -> list[VersionInfo]:
    """Versions of the same registered model registered after `after_version` (for
    auto-canary; runs as the system, inside the endpoint's project)."""
    out = []
    for mv in registry_selectors.model_versions_after(
        project_id=project_id, name=model_name, after_version=after_version
    ):
        try:
            out.append(_info(mv))
        except Exception:  # noqa: S112 - a version without files is not a candidate
            continue
    return out


TRAINING_FILE_SUFFIXES = (".csv", ".parquet")

# A drift reference already computed upstream: (reference in monitoring's format, label).
StoredReference = tuple[dict[str, dict[str, Any]], str]

# Apps that keep data register here (their AppConfig.ready appends), so this app reads
# their stored references without importing them. A training resolver answers for a
# version's run (None: not its kind of input); a named resolver answers for
# `<scheme>:<text>` and raises ValidationFailed for a name it cannot resolve.
TRAINING_REFERENCE_RESOLVERS: list[Callable[..., StoredReference | None]] = []
NAMED_REFERENCE_RESOLVERS: dict[str, Callable[..., StoredReference]] = {}


def training_reference(*, info: VersionInfo, names: list[str]) -> StoredReference | None:
    """The stored drift reference of the data the version's run trained on, if an
    upstream app keeps one (a dataset version's profile)."""
    for resolver in TRAINING_REFERENCE_RESOLVERS:
        found = resolver(info=info, names=names)
        if found is not None:
            return found
    return None


def named_reference(*, user: User | None, project: Project, text: str, names: list[str]) -> StoredReference:
    """The stored reference `<scheme>:<name>` names (e.g. `dataset:<project>/<name>@<ref>`),
    as `user` may see it in `project`. ValidationFailed for anything it does not name."""
    scheme, _, rest = text.partition(":")
    resolver = NAMED_REFERENCE_RESOLVERS.get(scheme)
    if resolver is None or not rest:
        known = ", ".join(f"'{s}:…'" for s in sorted(NAMED_REFERENCE_RESOLVERS)) or "none in this installation"
        raise ValidationFailed(f"reference '{text[:100]}' names no stored reference (known: {known}).")
    return resolver(user=user, project=project, text=rest, names=names)


def training_columns(*, info: VersionInfo, names: list[str], max_rows: int) -> tuple[dict[str, list], str] | None:
    """The training data of the version's run, when the run logged it as a dataset
    input (`mlflow.log_input`) whose source file it also logged as an artifact (the
    dataset record holds only a digest and a path on the training machine): its
    columns that the model takes, and a label. None when there is no such file."""
    run = getattr(info.obj, "run", None)
    if run is None:
        return None
    inputs = sorted(run.dataset_inputs.select_related("dataset"), key=lambda i: i.context != "training")
    for dataset_input in inputs:
        frame = _artifact_frame(run, dataset_input.dataset.source, max_rows)
        if frame is not None:
            wanted = [n for n in names if n in frame.columns] or [str(c) for c in frame.columns]
            columns = {str(n): frame[n].where(frame[n].notna(), None).tolist() for n in wanted}
            label = f"training data '{dataset_input.dataset.name}' (run dataset input)"
            return columns, label
    return None


def _artifact_frame(run, source: str, max_rows: int):
    import json
    import posixpath

    import pandas as pd

    from experiments.artifacts import get_store, run_root

    try:
        uri = str((json.loads(source) or {}).get("uri") or (json.loads(source) or {}).get("path") or "")
    except (ValueError, AttributeError):
        return None
    name = posixpath.basename(uri.rstrip("/"))
    if not name.endswith(TRAINING_FILE_SUFFIXES):
        return None
    try:
        with get_store().open(run_root(run), name) as handle:
            if name.endswith(".csv"):
                return pd.read_csv(handle, nrows=max_rows)
            return pd.read_parquet(handle).head(max_rows)
    except Exception:  # no such artifact, or not a table: not a training file
        return None


def production_gate_passed(*, project: Project) -> bool:
    return project_selectors.project_gate_passed(project=project, stage="Production")


def kpis_fed_by(*, project_id: int, endpoint_slug: str) -> list[tuple[Any, str]]:
    """(kpi, metric) for the project's KPIs whose source is this endpoint: source type
    `endpoint_metric`, source key `<endpoint-slug>:<metric>` or just `<metric>`."""
    out = []
    for kpi in project_selectors.kpis_fed_from(project_id=project_id, source_type="endpoint_metric"):
        slug, _, metric = kpi.source_key.rpartition(":")
        if slug in ("", endpoint_slug) and metric:
            out.append((kpi, metric))
    return out


def kpi_record(*, kpi, value: float, source: str) -> None:
    project_services.kpi_record_value(kpi=kpi, value=value, source=source)
