"""The deployments app's view of its upstream apps: the registry (model versions, their
files and offline metrics) and the project's gates and KPIs.

Kept in one module so the rest of the app speaks in plain values, and so tests can
stand in for an upstream app with one monkeypatch."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlplatform.errors import InvalidState
from mlplatform.models import User
from projects.models import Project


@dataclass
class VersionInfo:
    model_name: str
    version: int
    project_id: int
    model_dir: Path
    obj: Any = None
    metrics: dict[str, float] = field(default_factory=dict)


def _registry():
    try:
        from registry import selectors
    except ImportError:
        raise InvalidState("The model registry is not available in this installation yet.")
    return selectors


def version_resolve(*, user: User, name: str, version: object) -> VersionInfo:
    """The registered version `name` v`version` as the user may see it (NotFound otherwise)."""
    selectors = _registry()
    mv = selectors.model_version_get(user=user, name=name, version=version)
    return _info(selectors, mv)


def _info(selectors, mv) -> VersionInfo:
    metrics: dict[str, float] = {}
    run = getattr(mv, "run", None)
    if run is not None:
        metrics = _run_metrics(run)
    return VersionInfo(
        model_name=mv.registered_model.name,
        version=mv.version,
        project_id=mv.registered_model.project_id,
        model_dir=Path(selectors.model_version_local_dir(version=mv)),
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
    selectors = _registry()
    from registry.models import ModelVersion

    qs = ModelVersion.objects.select_related("registered_model", "run").filter(
        registered_model__project_id=project_id, registered_model__name=model_name, version__gt=after_version
    )
    out = []
    for mv in qs.order_by("version"):
        try:
            out.append(_info(selectors, mv))
        except Exception:  # noqa: S112 - a version without files is not a candidate
            continue
    return out


def production_gate_passed(*, project: Project) -> bool:
    try:
        from projects.selectors import project_gate_passed
    except ImportError:
        return False
    return project_gate_passed(project=project, stage="Production")


def kpis_fed_by(*, project_id: int, endpoint_slug: str) -> list[tuple[Any, str]]:
    """(kpi, metric) for the project's KPIs whose source is this endpoint: source type
    `endpoint_metric`, source key `<endpoint-slug>:<metric>` or just `<metric>`."""
    try:
        from projects.models import Kpi
    except ImportError:
        return []
    out = []
    for kpi in Kpi.objects.filter(project_id=project_id, source_type="endpoint_metric"):
        slug, _, metric = kpi.source_key.rpartition(":")
        if slug in ("", endpoint_slug) and metric:
            out.append((kpi, metric))
    return out


def kpi_record(*, kpi, value: float, source: str) -> None:
    from projects import services

    services.kpi_record_value(kpi=kpi, value=value, source=source)
