"""logged-models/* of MLflow 3."""

from experiments import selectors, services
from experiments.mlflow_api.common import MlflowError, RequestData, endpoint
from experiments.mlflow_api.shapes import logged_model_shape, metric_shape
from experiments.validation import parse_int
from mlplatform.roles import Role

WRITE = Role.DATA_SCIENTIST


def _shape(model) -> dict:
    """The model with its metric points (prefetched as `metrics` by the selectors)."""
    points = [
        {
            **metric_shape(p.key, p.value, p.is_nan, p.step, p.timestamp),
            "model_id": model.pk,
            "run_id": p.run_id,
            **({"dataset_name": p.dataset_name, "dataset_digest": p.dataset_digest} if p.dataset_name else {}),
        }
        for p in model.metrics.all()
    ]
    return logged_model_shape(model, points)


def _fresh(model_id: str, user) -> dict:
    return {"model": _shape(selectors.logged_model_get(user=user, model_id=model_id))}


def _pairs(data: RequestData, key: str) -> list[tuple]:
    items = data.list(key)
    if not all(isinstance(i, dict) for i in items):
        raise MlflowError("INVALID_PARAMETER_VALUE", f"'{key}' must be a list of objects.")
    return [(i.get("key"), i.get("value")) for i in items]


@endpoint("POST")
def logged_model_create(request, user, data: RequestData):
    experiment = selectors.experiment_get(user=user, experiment_id=data.string("experiment_id"), min_role=WRITE)
    run_id = data.string("source_run_id", required=False)
    source_run = selectors.run_get(user=user, run_id=run_id) if run_id else None
    model = services.logged_model_create(
        experiment=experiment,
        user=user,
        name=data.string("name", required=False),
        source_run=source_run,
        params=_pairs(data, "params"),
        tags=_pairs(data, "tags"),
        model_type=data.string("model_type", required=False),
    )
    return _fresh(model.pk, user)


@endpoint("GET", "PATCH", "DELETE")
def logged_model_detail(request, user, data: RequestData, model_id: str):
    if request.method == "GET":
        return _fresh(model_id, user)
    model = selectors.logged_model_get(user=user, model_id=model_id, min_role=WRITE)
    if request.method == "DELETE":
        services.logged_model_delete(model=model, user=user)
        return {}
    status = data.get("status")
    if isinstance(status, int):  # the enum's number, as some clients send it
        status = {1: "LOGGED_MODEL_PENDING", 2: "LOGGED_MODEL_READY", 3: "LOGGED_MODEL_UPLOAD_FAILED"}.get(status)
    services.logged_model_finalize(model=model, status=str(status or ""), user=user)
    return _fresh(model_id, user)


@endpoint("PATCH")
def logged_model_set_tags(request, user, data: RequestData, model_id: str):
    model = selectors.logged_model_get(user=user, model_id=model_id, min_role=WRITE)
    services.logged_model_set_tags(model=model, tags=_pairs(data, "tags"))
    return _fresh(model_id, user)


@endpoint("DELETE")
def logged_model_delete_tag(request, user, data: RequestData, model_id: str, key: str):
    model = selectors.logged_model_get(user=user, model_id=model_id, min_role=WRITE)
    services.logged_model_delete_tag(model=model, key=key)
    return {}


@endpoint("POST")
def logged_model_log_params(request, user, data: RequestData, model_id: str):
    model = selectors.logged_model_get(user=user, model_id=model_id, min_role=WRITE)
    services.logged_model_log_params(model=model, params=_pairs(data, "params"))
    return {}


@endpoint("POST")
def logged_model_search(request, user, data: RequestData):
    order_by = data.list("order_by")
    if not all(isinstance(o, dict) for o in order_by):
        raise MlflowError("INVALID_PARAMETER_VALUE", "`order_by` must be a list of dictionaries.")
    models, token = selectors.logged_model_search(
        user=user,
        experiment_ids=[str(e) for e in data.list("experiment_ids")],
        filter_string=data.string("filter", required=False) or None,
        datasets=data.list("datasets"),
        order_by=order_by,
        max_results=parse_int(data.get("max_results"), "max_results"),
        page_token=data.string("page_token", required=False) or None,
    )
    result: dict = {"models": [_shape(m) for m in models]}
    if token:
        result["next_page_token"] = token
    return result


def server_info_payload() -> dict:
    return {
        "store_type": "SqlStore",
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": True,
        "multipart_downloads_enabled": False,
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {"gateway": False},
    }


@endpoint("GET")
def server_info(request, user, data: RequestData):
    return server_info_payload()
