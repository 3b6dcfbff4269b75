"""Dataset versions as drift references of deployments: a version's profile already
holds its reference in the format live monitoring uses (profile.py), so a deploy reads
it instead of re-reading the data. Registered with deployments.links from
DataConfig.ready(), so the deployments app never imports this one."""

from typing import Any

from data.datasets import selectors
from data.models import DatasetVersion, ProfileStatus, VersionStatus
from mlplatform.errors import ApplicationError, ValidationFailed
from mlplatform.models import User
from projects.models import Project

SCHEME = "dataset"
DEFAULT_ALIAS = "reference"


def _columns(reference: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The features the model takes (all of them when its signature names none we hold)."""
    wanted = [n for n in names if n in reference] or list(reference)
    return {n: reference[n] for n in wanted}


def _stored(version: DatasetVersion) -> dict[str, Any] | None:
    if version.status != VersionStatus.READY or version.profile_status != ProfileStatus.READY:
        return None
    return (version.profile or {}).get("reference") or None


def _label(version: DatasetVersion, how: str) -> str:
    dataset = version.dataset
    return f"{how}: dataset version {dataset.project.slug}/{dataset.name}@{version.digest[:12]}"[:200]


def training_reference(*, info, names: list[str]) -> tuple[dict, str] | None:
    """The profile reference of a dataset version the model version's run logged as an
    input (`mlp-dataset://...` source), training-context inputs first."""
    run = getattr(info.obj, "run", None)
    if run is None:
        return None
    inputs = sorted(run.dataset_inputs.select_related("dataset"), key=lambda i: i.context != "training")
    project = Project.objects.get(pk=info.project_id)
    versions = selectors.input_versions(project=project, inputs=inputs)
    for dataset_input in inputs:
        version = versions.get(dataset_input.pk)
        stored = _stored(version) if version is not None else None
        if stored:
            return _columns(stored, names), _label(version, "training data (run dataset input)")
    return None


def named_reference(*, user: User | None, project: Project, text: str, names: list[str]) -> tuple[dict, str]:
    """`[<project>/]<name>[@<ref>]` in the endpoint's project (another project's dataset
    is not found); no ref means the dataset's `@reference` alias. Every failure is a
    ValidationFailed naming the reason, since the deploy itself is what was asked."""
    path, at, ref = text.partition("@")
    try:
        version = selectors.version_by_ref(
            user=user, text=f"{path}@{ref if at else DEFAULT_ALIAS}", project_slug=project.slug
        )
    except ApplicationError as exc:
        raise ValidationFailed(f"reference '{SCHEME}:{text[:150]}': {exc.message}") from exc
    if version.status != VersionStatus.READY:
        reason = version.status_message
        raise ValidationFailed(f"reference: dataset version {version.digest[:12]} is broken ({reason}).")
    stored = _stored(version)
    if stored is None:
        state = "is still being profiled" if version.profile_status == ProfileStatus.PENDING else "has no profile"
        raise ValidationFailed(
            f"reference: dataset version {version.digest[:12]} {state}; deploy once its profile is ready."
        )
    return _columns(stored, names), _label(version, "named at deploy")
