"""registered-models/* and model-versions/* of MLflow's model registry API."""

from experiments.mlflow_api.common import MlflowError, RequestData, default_project_id, display_name, endpoint
from experiments.mlflow_api.shapes import kv
from experiments.validation import parse_int
from mlplatform.roles import Role
from registry import selectors, services
from registry.models import ModelVersion, RegisteredModel

WRITE = Role.DATA_SCIENTIST


def version_shape(mv: ModelVersion, user) -> dict:
    rm = mv.registered_model
    shape = {
        "name": display_name(user, rm.project, rm.name),
        "version": str(mv.version),
        "creation_timestamp": mv.creation_timestamp,
        "last_updated_timestamp": mv.last_updated_timestamp,
        "user_id": mv.created_by.username if mv.created_by_id and mv.created_by else "",
        "current_stage": mv.current_stage,
        "description": mv.description,
        "source": mv.source,
        "status": mv.status,
        "tags": kv((t.key, t.value) for t in mv.tags.all()),
        "aliases": sorted(a.alias for a in mv.aliases.all()),
    }
    if mv.run_id:
        shape["run_id"] = mv.run_id
    if mv.logged_model_id:
        shape["model_id"] = mv.logged_model_id
    if mv.status_message:
        shape["status_message"] = mv.status_message
    return shape


def registered_model_shape(rm: RegisteredModel, user, latest: list[ModelVersion] | None = None) -> dict:
    shape = {
        "name": display_name(user, rm.project, rm.name),
        "creation_timestamp": rm.creation_timestamp,
        "last_updated_timestamp": rm.last_updated_timestamp,
        "description": rm.description,
        "tags": kv((t.key, t.value) for t in rm.tags.all()),
        "aliases": [{"alias": a.alias, "version": str(a.model_version.version)} for a in rm.aliases.all()],
    }
    if latest:
        shape["latest_versions"] = [version_shape(mv, user) for mv in latest]
    return shape


def _model(user, data: RequestData, min_role: str = Role.VIEWER) -> RegisteredModel:
    return selectors.registered_model_get(user=user, name=data.string("name"), min_role=min_role)


def _version(user, data: RequestData, min_role: str = Role.VIEWER) -> ModelVersion:
    return selectors.model_version_get(
        user=user, name=data.string("name"), version=data.require("version"), min_role=min_role
    )


def _tags(data: RequestData) -> list[tuple]:
    return [(t.get("key"), t.get("value")) for t in data.list("tags") if isinstance(t, dict)]


@endpoint("POST")
def registered_model_create(request, user, data: RequestData):
    project, short = selectors.resolve_model_name(
        user=user, full_name=data.string("name"), min_role=WRITE, create_personal=True
    )
    rm = services.registered_model_create(
        project=project,
        name=short,
        user=user,
        description=data.string("description", required=False),
        tags=_tags(data),
    )
    return {"registered_model": registered_model_shape(rm, user)}


@endpoint("GET")
def registered_model_get(request, user, data: RequestData):
    rm = _model(user, data)
    latest = selectors.model_version_latest(user=user, name=data.string("name"))
    return {"registered_model": registered_model_shape(rm, user, latest)}


@endpoint("POST")
def registered_model_rename(request, user, data: RequestData):
    rm = services.registered_model_rename(model=_model(user, data, WRITE), user=user, new_name=data.string("new_name"))
    return {"registered_model": registered_model_shape(rm, user)}


@endpoint("PATCH")
def registered_model_update(request, user, data: RequestData):
    rm = services.registered_model_update(
        model=_model(user, data, WRITE), user=user, description=data.string("description", required=False)
    )
    return {"registered_model": registered_model_shape(rm, user)}


@endpoint("DELETE")
def registered_model_delete(request, user, data: RequestData):
    services.registered_model_delete(model=_model(user, data, WRITE), user=user)


def _order_by(data: RequestData) -> list[str]:
    items = data.list("order_by")
    if not all(isinstance(i, str) for i in items):
        raise MlflowError("INVALID_PARAMETER_VALUE", "'order_by' must be a list of strings.")
    return items


def _search_args(user, data: RequestData) -> dict:
    return {
        "user": user,
        "filter_string": data.string("filter", required=False),
        "order_by": _order_by(data),
        "max_results": parse_int(data.get("max_results"), "max_results"),
        "page_token": data.string("page_token", required=False) or None,
        "default_project_id": default_project_id(user),
    }


@endpoint("GET", "POST")
def registered_model_search(request, user, data: RequestData):
    page = selectors.registered_model_search(**_search_args(user, data))
    latest = selectors.model_version_latest_by_model(models=page.items)
    result: dict = {"registered_models": [registered_model_shape(rm, user, latest.get(rm.pk)) for rm in page.items]}
    if page.next_page_token:
        result["next_page_token"] = page.next_page_token
    return result


@endpoint("GET", "POST")
def registered_model_latest_versions(request, user, data: RequestData):
    versions = selectors.model_version_latest(user=user, name=data.string("name"), stages=data.list("stages") or None)
    return {"model_versions": [version_shape(mv, user) for mv in versions]}


@endpoint("POST")
def registered_model_set_tag(request, user, data: RequestData):
    services.registered_model_set_tag(
        model=_model(user, data, WRITE), key=data.string("key"), value=data.get("value", "")
    )


@endpoint("DELETE")
def registered_model_delete_tag(request, user, data: RequestData):
    services.registered_model_delete_tag(model=_model(user, data, WRITE), key=data.string("key"))


@endpoint("GET", "POST", "DELETE")
def registered_model_alias(request, user, data: RequestData):
    if request.method == "GET":
        mv = selectors.model_version_get_by_alias(user=user, name=data.string("name"), alias=data.string("alias"))
        return {"model_version": version_shape(mv, user)}
    rm = _model(user, data, WRITE)
    if request.method == "DELETE":
        services.alias_delete(registered_model=rm, alias=data.string("alias"), user=user)
        return {}
    mv = _version(user, data, WRITE)
    services.alias_set(registered_model=rm, alias=data.string("alias"), version=mv, user=user)
    return {}


@endpoint("POST")
def model_version_create(request, user, data: RequestData):
    rm = _model(user, data, WRITE)
    mv = services.model_version_create(
        registered_model=rm,
        source=data.string("source"),
        user=user,
        run_id=data.string("run_id", required=False) or None,
        model_id=data.string("model_id", required=False) or None,
        description=data.string("description", required=False),
        tags=_tags(data),
    )
    fresh = selectors.version_queryset().get(pk=mv.pk)
    return {"model_version": version_shape(fresh, user)}


@endpoint("GET")
def model_version_get(request, user, data: RequestData):
    return {"model_version": version_shape(_version(user, data), user)}


@endpoint("PATCH")
def model_version_update(request, user, data: RequestData):
    mv = services.model_version_update(
        version=_version(user, data, WRITE), user=user, description=data.string("description", required=False)
    )
    return {"model_version": version_shape(mv, user)}


@endpoint("DELETE")
def model_version_delete(request, user, data: RequestData):
    services.model_version_delete(version=_version(user, data, WRITE), user=user)


@endpoint("POST")
def model_version_transition_stage(request, user, data: RequestData):
    archive = data.get("archive_existing_versions") in (True, "true", "True", "1")
    mv = services.model_version_transition_stage(
        version=_version(user, data, WRITE), user=user, stage=data.string("stage"), archive_existing=archive
    )
    return {"model_version": version_shape(mv, user)}


@endpoint("GET", "POST")
def model_version_search(request, user, data: RequestData):
    page = selectors.model_version_search(**_search_args(user, data))
    result: dict = {"model_versions": [version_shape(mv, user) for mv in page.items]}
    if page.next_page_token:
        result["next_page_token"] = page.next_page_token
    return result


@endpoint("GET")
def model_version_download_uri(request, user, data: RequestData):
    mv = _version(user, data)
    if mv.logged_model_id:
        return {"artifact_uri": mv.logged_model.artifact_location}
    return {"artifact_uri": _run_source_uri(mv)}


def _run_source_uri(mv: ModelVersion) -> str:
    from registry.sources import resolve_source

    resolved = resolve_source(source=mv.source, project=mv.registered_model.project)
    base = resolved.run.artifact_uri
    return f"{base}/{resolved.path}" if resolved.path else base


@endpoint("POST")
def model_version_set_tag(request, user, data: RequestData):
    services.model_version_set_tag(
        version=_version(user, data, WRITE), key=data.string("key"), value=data.get("value", "")
    )


@endpoint("DELETE")
def model_version_delete_tag(request, user, data: RequestData):
    services.model_version_delete_tag(version=_version(user, data, WRITE), key=data.string("key"))
