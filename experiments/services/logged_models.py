from collections.abc import Iterable, Mapping
import uuid

from django.db import transaction

from experiments.models import (
    Experiment,
    Lifecycle,
    LoggedModel,
    LoggedModelParam,
    LoggedModelStatus,
    LoggedModelTag,
    Run,
)
from experiments.services.common import now_ms
from experiments.services.runs import _pairs
from experiments.validation import MAX_PARAM_VAL_LENGTH, MAX_TAG_VAL_LENGTH, validate_key, validate_value
from mlplatform.audit import audit_record
from mlplatform.errors import InvalidState, NotFound, ValidationFailed
from mlplatform.models import User


@transaction.atomic
def logged_model_create(
    *,
    experiment: Experiment,
    user: User | None,
    name: str = "",
    source_run: Run | None = None,
    params: Mapping | Iterable | None = None,
    tags: Mapping | Iterable | None = None,
    model_type: str = "",
) -> LoggedModel:
    if experiment.lifecycle_stage != Lifecycle.ACTIVE:
        raise InvalidState(f"The experiment {experiment.pk} must be in the 'active' state.")
    if source_run is not None and source_run.experiment.project_id != experiment.project_id:
        raise NotFound(f"Run with id={source_run.pk} not found")
    model_id = f"m-{uuid.uuid4().hex}"
    now = now_ms()
    model = LoggedModel.objects.create(
        id=model_id,
        experiment=experiment,
        name=(name or "model")[:500],
        source_run=source_run,
        model_type=model_type[:100],
        artifact_location=f"mlflow-artifacts:/{experiment.pk}/models/{model_id}/artifacts",
        creator=user if user is not None and user.is_authenticated else None,
        creation_timestamp=now,
        last_updated_timestamp=now,
    )
    _log_params(model, _pairs(params))
    _set_tags(model, _pairs(tags))
    audit_record(
        actor=user,
        action="logged_model.create",
        target=model,
        project_id=experiment.project_id,
        after={"name": model.name, "source_run": source_run.pk if source_run else None},
    )
    return model


def _log_params(model: LoggedModel, pairs: list[tuple[str, str]]) -> None:
    rows = {}
    for key, value in pairs:
        validate_key(key, "param")
        rows[key] = validate_value(value, MAX_PARAM_VAL_LENGTH, "param", key)
    LoggedModelParam.objects.bulk_create(
        [LoggedModelParam(model=model, key=k, value=v) for k, v in rows.items()], ignore_conflicts=True
    )


def _set_tags(model: LoggedModel, pairs: list[tuple[str, str]]) -> None:
    rows = {}
    for key, value in pairs:
        validate_key(key, "tag")
        rows[key] = validate_value(value, MAX_TAG_VAL_LENGTH, "tag", key)
    if rows:
        LoggedModelTag.objects.bulk_create(
            [LoggedModelTag(model=model, key=k, value=v) for k, v in rows.items()],
            update_conflicts=True,
            unique_fields=["model", "key"],
            update_fields=["value"],
        )


def _touch(model: LoggedModel) -> None:
    model.last_updated_timestamp = now_ms()
    model.save(update_fields=["last_updated_timestamp"])


@transaction.atomic
def logged_model_log_params(*, model: LoggedModel, params: Mapping | Iterable) -> None:
    _log_params(model, _pairs(params))
    _touch(model)


@transaction.atomic
def logged_model_set_tags(*, model: LoggedModel, tags: Mapping | Iterable) -> None:
    _set_tags(model, _pairs(tags))
    _touch(model)


@transaction.atomic
def logged_model_delete_tag(*, model: LoggedModel, key: str) -> None:
    deleted, _ = LoggedModelTag.objects.filter(model=model, key=key).delete()
    if not deleted:
        raise NotFound(f"No tag with key '{key}' on logged model {model.pk}.")
    _touch(model)


@transaction.atomic
def logged_model_finalize(*, model: LoggedModel, status: str, user: User | None) -> LoggedModel:
    if status not in (LoggedModelStatus.READY, LoggedModelStatus.FAILED):
        raise ValidationFailed(f"A logged model is finalized as READY or UPLOAD_FAILED, not '{status}'.")
    before = {"status": model.status}
    model.status = status
    model.last_updated_timestamp = now_ms()
    model.save(update_fields=["status", "last_updated_timestamp"])
    audit_record(
        actor=user,
        action="logged_model.finalize",
        target=model,
        project_id=model.experiment.project_id,
        before=before,
        after={"status": status},
    )
    return model


@transaction.atomic
def logged_model_delete(*, model: LoggedModel, user: User | None) -> None:
    model.lifecycle_stage = Lifecycle.DELETED
    model.last_updated_timestamp = now_ms()
    model.save(update_fields=["lifecycle_stage", "last_updated_timestamp"])
    audit_record(
        actor=user,
        action="logged_model.delete",
        target=model,
        project_id=model.experiment.project_id,
        after={"lifecycle_stage": Lifecycle.DELETED},
    )
