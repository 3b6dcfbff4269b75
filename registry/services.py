"""Writes of the model registry. Callers have checked the actor's role (data
scientist to register and tag, see registry.selectors)."""

from collections.abc import Iterable, Mapping
import re

from django.db import IntegrityError, transaction
from django.db.models import Max

from experiments.models import LoggedModel, Param, Run, RunTag
from experiments.services.common import now_ms
from experiments.services.runs import _pairs
from experiments.validation import validate_key, validate_value
from mlplatform import events
from mlplatform.audit import audit_record
from mlplatform.errors import AlreadyExists, NotFound, ValidationFailed
from mlplatform.models import User
from projects.models import Project
from registry.models import (
    ModelAlias,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelTag,
    Stage,
    VersionStatus,
)
from registry.sources import resolve_source

MAX_TAG_VALUE = 100_000
_ALIAS_RE = re.compile(r"^[\w\-]+$")
_RESERVED_ALIAS_RE = re.compile(r"^(latest|[vV]\d+)$")
SOURCE_TAG_KEYS = (
    "mlflow.source.git.commit",
    "mlflow.source.git.repoURL",
    "mlflow.source.git.branch",
    "mlflow.source.name",
    "mlflow.source.type",
)


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("Registered model name cannot be empty.")
    if len(name) > 256 or "/" in name or ":" in name or "@" in name:
        raise ValidationFailed(
            f"Invalid registered model name '{name[:100]}': at most 256 characters, no '/', ':' or '@'."
        )
    return name


def _publish(model: RegisteredModel, event: str, payload: dict) -> None:
    events.publish(events.group_name("registered_model", model.pk), event, payload)


@transaction.atomic
def registered_model_create(
    *, project: Project, name: str, user: User | None, description: str = "", tags: Mapping | Iterable | None = None
) -> RegisteredModel:
    name = _clean_name(name)
    if RegisteredModel.objects.filter(project=project, name=name).exists():
        raise AlreadyExists(f"Registered Model (name={name}) already exists.")
    now = now_ms()
    try:
        with transaction.atomic():
            model = RegisteredModel.objects.create(
                project=project,
                name=name,
                description=description or "",
                created_by=user,
                creation_timestamp=now,
                last_updated_timestamp=now,
            )
    except IntegrityError as exc:
        raise AlreadyExists(f"Registered Model (name={name}) already exists.") from exc
    for key, value in _pairs(tags):
        _set_tag(RegisteredModelTag, {"registered_model": model}, key, value)
    audit_record(
        actor=user, action="registered_model.create", target=model, project_id=project.pk, after={"name": name}
    )
    return model


def registered_model_get_or_create(*, project: Project, name: str, user: User | None) -> RegisteredModel:
    existing = RegisteredModel.objects.filter(project=project, name=(name or "").strip()).first()
    if existing is not None:
        return existing
    return registered_model_create(project=project, name=name, user=user)


def _set_tag(model_cls, owner: dict, key: str, value: str) -> None:
    validate_key(key, "tag")
    value = validate_value(value, MAX_TAG_VALUE, "tag", key)
    model_cls.objects.update_or_create(**owner, key=key, defaults={"value": value})


def _touch(obj) -> None:
    obj.last_updated_timestamp = now_ms()
    obj.save(update_fields=["last_updated_timestamp"])


@transaction.atomic
def registered_model_update(*, model: RegisteredModel, user: User | None, description: str) -> RegisteredModel:
    before = {"description": model.description}
    model.description = description or ""
    model.last_updated_timestamp = now_ms()
    model.save(update_fields=["description", "last_updated_timestamp"])
    audit_record(
        actor=user,
        action="registered_model.update",
        target=model,
        project_id=model.project_id,
        before=before,
        after={"description": model.description},
    )
    return model


@transaction.atomic
def registered_model_rename(*, model: RegisteredModel, user: User | None, new_name: str) -> RegisteredModel:
    new_name = _clean_name(new_name)
    if RegisteredModel.objects.filter(project_id=model.project_id, name=new_name).exclude(pk=model.pk).exists():
        raise AlreadyExists(f"Registered Model (name={new_name}) already exists.")
    before = {"name": model.name}
    model.name = new_name
    model.last_updated_timestamp = now_ms()
    model.save(update_fields=["name", "last_updated_timestamp"])
    audit_record(
        actor=user,
        action="registered_model.rename",
        target=model,
        project_id=model.project_id,
        before=before,
        after={"name": new_name},
    )
    return model


@transaction.atomic
def registered_model_delete(*, model: RegisteredModel, user: User | None) -> None:
    audit_record(
        actor=user,
        action="registered_model.delete",
        target=model,
        project_id=model.project_id,
        before={"name": model.name},
    )
    model.delete()


@transaction.atomic
def registered_model_set_tag(*, model: RegisteredModel, key: str, value: str) -> None:
    _set_tag(RegisteredModelTag, {"registered_model": model}, key, value)
    _touch(model)


@transaction.atomic
def registered_model_delete_tag(*, model: RegisteredModel, key: str) -> None:
    RegisteredModelTag.objects.filter(registered_model=model, key=key).delete()
    _touch(model)


def _provenance(run: Run | None) -> dict:
    """What the version was born from, frozen now: the run's params, its source tags
    (git commit = the code version) and the digests of its input datasets."""
    if run is None:
        return {"code_version": "", "source_tags": {}, "params": {}, "dataset_digests": []}
    tags = dict(RunTag.objects.filter(run=run, key__in=SOURCE_TAG_KEYS).values_list("key", "value"))
    params = dict(Param.objects.filter(run=run).order_by("key").values_list("key", "value"))
    digests = [
        {"name": name, "digest": digest, "context": context}
        for name, digest, context in run.dataset_inputs.order_by("pk").values_list(
            "dataset__name", "dataset__digest", "context"
        )
    ]
    return {
        "code_version": tags.get("mlflow.source.git.commit", "")[:100],
        "source_tags": tags,
        "params": params,
        "dataset_digests": digests,
    }


@transaction.atomic
def model_version_create(
    *,
    registered_model: RegisteredModel,
    source: str,
    user: User | None,
    run_id: str | None = None,
    model_id: str | None = None,
    description: str = "",
    tags: Mapping | Iterable | None = None,
) -> ModelVersion:
    """Register a version. `source` must point into this project's artifact store;
    anything else is refused (see registry.sources)."""
    resolved = resolve_source(source=source, project=registered_model.project)
    logged_model: LoggedModel | None = resolved.logged_model
    if model_id and (logged_model is None or logged_model.pk != model_id):
        logged_model = _logged_model_in(registered_model.project, model_id)
    run = resolved.run or (logged_model.source_run if logged_model else None)
    if run_id and (run is None or run.pk != run_id):
        run = Run.objects.filter(pk=run_id, experiment__project=registered_model.project).first()
        if run is None:
            raise NotFound(f"Run with id={run_id} not found")
    # Lock the parent row so two concurrent registrations get consecutive numbers.
    RegisteredModel.objects.select_for_update().filter(pk=registered_model.pk).first()
    number = (registered_model.versions.aggregate(m=Max("version"))["m"] or 0) + 1
    now = now_ms()
    version = ModelVersion.objects.create(
        registered_model=registered_model,
        version=number,
        source=source,
        run=run,
        logged_model=logged_model,
        status=VersionStatus.READY,
        description=description or "",
        created_by=user,
        creation_timestamp=now,
        last_updated_timestamp=now,
        **_provenance(run),
    )
    for key, value in _pairs(tags):
        _set_tag(ModelVersionTag, {"model_version": version}, key, value)
    _touch(registered_model)
    audit_record(
        actor=user,
        action="model_version.create",
        target=version,
        project_id=registered_model.project_id,
        after={"version": number, "source": source, "run": run.pk if run else None},
    )
    _publish(registered_model, "model_version.created", {"name": registered_model.name, "version": number})
    return version


def _logged_model_in(project: Project, model_id: str) -> LoggedModel:
    model = LoggedModel.objects.select_related("source_run").filter(pk=model_id, experiment__project=project).first()
    if model is None:
        raise NotFound(f"Logged model with ID '{model_id}' not found.")
    return model


@transaction.atomic
def model_version_update(*, version: ModelVersion, user: User | None, description: str) -> ModelVersion:
    before = {"description": version.description}
    version.description = description or ""
    version.last_updated_timestamp = now_ms()
    version.save(update_fields=["description", "last_updated_timestamp"])
    audit_record(
        actor=user,
        action="model_version.update",
        target=version,
        project_id=version.registered_model.project_id,
        before=before,
        after={"description": version.description},
    )
    return version


@transaction.atomic
def model_version_transition_stage(
    *, version: ModelVersion, user: User | None, stage: str, archive_existing: bool = False
) -> ModelVersion:
    """MLflow's deprecated stages, kept for old clients."""
    match = {s.lower(): s for s in Stage.values}.get((stage or "").lower())
    if match is None:
        raise ValidationFailed(f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(Stage.values)}.")
    before = {"current_stage": version.current_stage}
    if archive_existing and match in (Stage.STAGING, Stage.PRODUCTION):
        ModelVersion.objects.filter(registered_model=version.registered_model, current_stage=match).exclude(
            pk=version.pk
        ).update(current_stage=Stage.ARCHIVED, last_updated_timestamp=now_ms())
    version.current_stage = match
    version.last_updated_timestamp = now_ms()
    version.save(update_fields=["current_stage", "last_updated_timestamp"])
    audit_record(
        actor=user,
        action="model_version.transition_stage",
        target=version,
        project_id=version.registered_model.project_id,
        before=before,
        after={"current_stage": match},
    )
    return version


@transaction.atomic
def model_version_delete(*, version: ModelVersion, user: User | None) -> None:
    audit_record(
        actor=user,
        action="model_version.delete",
        target=version,
        project_id=version.registered_model.project_id,
        before={"version": version.version, "source": version.source},
    )
    version.delete()


@transaction.atomic
def model_version_set_tag(*, version: ModelVersion, key: str, value: str) -> None:
    _set_tag(ModelVersionTag, {"model_version": version}, key, value)
    _touch(version)


@transaction.atomic
def model_version_delete_tag(*, version: ModelVersion, key: str) -> None:
    ModelVersionTag.objects.filter(model_version=version, key=key).delete()
    _touch(version)


def _clean_alias(alias: str) -> str:
    alias = (alias or "").strip()
    if not alias or len(alias) > 255 or not _ALIAS_RE.match(alias):
        raise ValidationFailed(f"Invalid alias name: '{alias[:100]}'. Use letters, digits, '_' and '-'.")
    if _RESERVED_ALIAS_RE.match(alias):
        raise ValidationFailed(f"'{alias}' is reserved and cannot be used as an alias.")
    return alias


@transaction.atomic
def alias_set(*, registered_model: RegisteredModel, alias: str, version: ModelVersion, user: User | None) -> ModelAlias:
    alias = _clean_alias(alias)
    if version.registered_model_id != registered_model.pk:
        raise NotFound(f"Model version {version.version} not found for model {registered_model.name}.")
    before = (
        ModelAlias.objects.filter(registered_model=registered_model, alias=alias)
        .values_list("model_version__version", flat=True)
        .first()
    )
    obj, _ = ModelAlias.objects.update_or_create(
        registered_model=registered_model, alias=alias, defaults={"model_version": version}
    )
    _touch(registered_model)
    audit_record(
        actor=user,
        action="model_alias.set",
        target=registered_model,
        project_id=registered_model.project_id,
        before={"alias": alias, "version": before} if before else None,
        after={"alias": alias, "version": version.version},
    )
    _publish(
        registered_model, "model_alias.set", {"name": registered_model.name, "alias": alias, "version": version.version}
    )
    return obj


@transaction.atomic
def alias_delete(*, registered_model: RegisteredModel, alias: str, user: User | None) -> None:
    existing = (
        ModelAlias.objects.filter(registered_model=registered_model, alias=alias)
        .select_related("model_version")
        .first()
    )
    if existing is None:
        return  # MLflow treats deleting a missing alias as done
    audit_record(
        actor=user,
        action="model_alias.delete",
        target=registered_model,
        project_id=registered_model.project_id,
        before={"alias": alias, "version": existing.model_version.version},
    )
    existing.delete()
    _touch(registered_model)
