from django.db import IntegrityError, transaction

from experiments.models import Experiment, ExperimentTag, Lifecycle
from experiments.services.common import now_ms
from experiments.validation import (
    MAX_EXPERIMENT_NAME_LENGTH,
    MAX_EXPERIMENT_TAG_VAL_LENGTH,
    validate_key,
    validate_value,
)
from mlplatform.audit import audit_record
from mlplatform.errors import AlreadyExists, InvalidState, NotFound, ValidationFailed
from mlplatform.models import User
from mlplatform.roles import Role
from projects.models import Project
from projects.selectors import project_check, token_scope
from projects.services import personal_project_get_or_create


def resolve_experiment_name(
    *, user: User, full_name: str, min_role: str = Role.VIEWER, create_personal: bool = False
) -> tuple[Project, str]:
    """Map an MLflow experiment name to (project, name), as Databricks maps paths.

    `<project-slug>/<name>` lands in that project (NotFound when the user may not see
    it, so a name never reveals another project). A plain name lands in the token's
    project when the token is project-scoped, else in the user's personal project.
    A leading slash is ignored so `/demo/x` works like `demo/x`."""
    name = (full_name or "").strip().lstrip("/")
    if not name:
        raise ValidationFailed("An experiment name must be a non-empty string.")
    slug, sep, rest = name.partition("/")
    if sep:
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            raise NotFound(f"No project '{slug}' for experiment '{full_name}'.")
        return project_check(user=user, project=project, min_role=min_role), _clean_name(rest)
    return default_project(user=user, min_role=min_role, create=create_personal), _clean_name(name)


def default_project(*, user: User, min_role: str = Role.VIEWER, create: bool = False) -> Project | None:
    scope = token_scope(user)
    if scope is not None:
        return project_check(user=user, project=Project.objects.filter(pk=scope).first(), min_role=min_role)
    project = Project.objects.filter(owner=user, is_personal=True).first()
    if project is None:
        if not create:
            raise NotFound("You have no personal project yet.")
        project = personal_project_get_or_create(user=user)
    return project


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValidationFailed("An experiment name must be a non-empty string.")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise ValidationFailed(f"Experiment name exceeds {MAX_EXPERIMENT_NAME_LENGTH} characters.")
    return name


@transaction.atomic
def experiment_create(
    *, project: Project, name: str, user: User | None, tags: dict[str, str] | None = None, artifact_location: str = ""
) -> Experiment:
    name = _clean_name(name)
    if Experiment.objects.filter(project=project, name=name).exists():
        raise AlreadyExists(f"Experiment '{name}' already exists.")
    now = now_ms()
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(
                project=project, name=name, created_by=user, creation_time=now, last_update_time=now
            )
    except IntegrityError as exc:  # a concurrent create won the name
        raise AlreadyExists(f"Experiment '{name}' already exists.") from exc
    # The location is ours, never the client's: artifacts stay inside the store.
    experiment.artifact_location = f"mlflow-artifacts:/{experiment.pk}"
    experiment.save(update_fields=["artifact_location"])
    for key, value in (tags or {}).items():
        _set_tag(experiment, key, value)
    audit_record(actor=user, action="experiment.create", target=experiment, project_id=project.pk, after={"name": name})
    return experiment


def experiment_get_or_create(*, project: Project, name: str, user: User | None) -> Experiment:
    experiment = Experiment.objects.filter(project=project, name=name.strip()).first()
    if experiment is not None:
        return experiment
    try:
        return experiment_create(project=project, name=name, user=user)
    except AlreadyExists:
        return Experiment.objects.get(project=project, name=name.strip())


def _set_tag(experiment: Experiment, key: str, value: str) -> None:
    validate_key(key, "tag")
    value = validate_value(value, MAX_EXPERIMENT_TAG_VAL_LENGTH, "tag", key)
    ExperimentTag.objects.update_or_create(experiment=experiment, key=key, defaults={"value": value})


@transaction.atomic
def experiment_set_tag(*, experiment: Experiment, key: str, value: str, user: User | None) -> None:
    if experiment.lifecycle_stage != Lifecycle.ACTIVE:
        raise InvalidState("The experiment must be in the 'active' state.")
    _set_tag(experiment, key, value)


@transaction.atomic
def experiment_rename(*, experiment: Experiment, name: str, user: User | None) -> Experiment:
    name = _clean_name(name)
    if Experiment.objects.filter(project_id=experiment.project_id, name=name).exclude(pk=experiment.pk).exists():
        raise AlreadyExists(f"Experiment '{name}' already exists.")
    before = {"name": experiment.name}
    experiment.name = name
    experiment.last_update_time = now_ms()
    experiment.save(update_fields=["name", "last_update_time"])
    audit_record(
        actor=user,
        action="experiment.rename",
        target=experiment,
        project_id=experiment.project_id,
        before=before,
        after={"name": name},
    )
    return experiment


def _set_lifecycle(experiment: Experiment, stage: str, user: User | None, action: str) -> Experiment:
    before = {"lifecycle_stage": experiment.lifecycle_stage}
    experiment.lifecycle_stage = stage
    experiment.last_update_time = now_ms()
    experiment.save(update_fields=["lifecycle_stage", "last_update_time"])
    experiment.runs.update(lifecycle_stage=stage, deleted_time=now_ms() if stage == Lifecycle.DELETED else None)
    audit_record(
        actor=user,
        action=action,
        target=experiment,
        project_id=experiment.project_id,
        before=before,
        after={"lifecycle_stage": stage},
    )
    return experiment


@transaction.atomic
def experiment_delete(*, experiment: Experiment, user: User | None) -> Experiment:
    """Soft delete, as MLflow: the experiment and its runs can be restored."""
    return _set_lifecycle(experiment, Lifecycle.DELETED, user, "experiment.delete")


@transaction.atomic
def experiment_restore(*, experiment: Experiment, user: User | None) -> Experiment:
    return _set_lifecycle(experiment, Lifecycle.ACTIVE, user, "experiment.restore")
