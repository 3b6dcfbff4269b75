"""experiments/*, runs/*, metrics/* of MLflow's tracking API."""

from django.db.models import Exists, OuterRef, Q

from experiments import search, selectors, services
from experiments.mlflow_api.common import MlflowError, RequestData, endpoint
from experiments.mlflow_api.shapes import experiment_shape, metric_shape, new_run_shape, run_info_shape, run_shape
from experiments.models import ExperimentTag, Run
from experiments.validation import parse_int
from mlplatform.errors import ValidationFailed
from mlplatform.roles import Role

WRITE = Role.DATA_SCIENTIST


# -- experiments ------------------------------------------------------------------


@endpoint("POST")
def experiment_create(request, user, data: RequestData):
    name = data.string("name")
    project, short = services.resolve_experiment_name(user=user, full_name=name, min_role=WRITE, create_personal=True)
    tags = {t.get("key"): t.get("value") for t in data.list("tags") if isinstance(t, dict)}
    experiment = services.experiment_create(project=project, name=short, user=user, tags=tags)
    return {"experiment_id": str(experiment.pk)}


@endpoint("GET")
def experiment_get(request, user, data: RequestData):
    experiment = selectors.experiment_get(user=user, experiment_id=data.string("experiment_id"))
    return {"experiment": experiment_shape(experiment, user)}


@endpoint("GET")
def experiment_get_by_name(request, user, data: RequestData):
    experiment = selectors.experiment_get_by_name(user=user, name=data.string("experiment_name"))
    return {"experiment": experiment_shape(experiment, user)}


def _experiment_filter(text: str | None) -> Q:
    q = Q()
    for clause in search.parse_filter(text):
        if clause.entity == "tags":
            tag = ExperimentTag.objects.filter(experiment=OuterRef("pk"), key=clause.key)
            q &= Q(Exists(tag.filter(search._string_q("value", clause.op, clause.value, text))))
        elif clause.entity == "attributes" and clause.key.lower() == "name":
            q &= search._string_q("name", clause.op, clause.value, text)
        elif clause.entity == "attributes" and clause.key.lower() in ("creation_time", "last_update_time"):
            q &= search._numeric_q(clause.key.lower(), clause.op, clause.value, text)
        else:
            raise ValidationFailed(
                f"Invalid experiment filter '{text}': use name, creation_time, last_update_time or tags."
            )
    return q


@endpoint("GET", "POST")
def experiment_search(request, user, data: RequestData):
    limit = search.check_max_results(parse_int(data.get("max_results"), "max_results"), default=1000)
    qs = selectors.experiment_visible_list(user=user, view_type=data.get("view_type") or "ACTIVE_ONLY")
    qs = qs.filter(_experiment_filter(data.get("filter"))).order_by("-creation_time", "-id")
    page, next_token = search.paginate(qs, limit, data.get("page_token"))
    result = {"experiments": [experiment_shape(e, user) for e in page]}
    if next_token:
        result["next_page_token"] = next_token
    return result


def _experiment_for_write(user, data):
    return selectors.experiment_get(user=user, experiment_id=data.string("experiment_id"), min_role=WRITE)


@endpoint("POST")
def experiment_delete(request, user, data: RequestData):
    services.experiment_delete(experiment=_experiment_for_write(user, data), user=user)


@endpoint("POST")
def experiment_restore(request, user, data: RequestData):
    services.experiment_restore(experiment=_experiment_for_write(user, data), user=user)


@endpoint("POST")
def experiment_update(request, user, data: RequestData):
    experiment = _experiment_for_write(user, data)
    new_name = data.string("new_name", required=False)
    if new_name:
        services.experiment_rename(experiment=experiment, name=new_name, user=user)


@endpoint("POST")
def experiment_set_tag(request, user, data: RequestData):
    services.experiment_set_tag(
        experiment=_experiment_for_write(user, data), key=data.string("key"), value=data.get("value", ""), user=user
    )


@endpoint("POST")
def experiment_delete_tag(request, user, data: RequestData):
    experiment = _experiment_for_write(user, data)
    ExperimentTag.objects.filter(experiment=experiment, key=data.string("key")).delete()


# -- runs ---------------------------------------------------------------------------


def _run_for_write(user, data: RequestData) -> Run:
    return selectors.run_get(user=user, run_id=data.run_id(), min_role=WRITE)


@endpoint("POST")
def run_create(request, user, data: RequestData):
    experiment = selectors.experiment_get(user=user, experiment_id=data.string("experiment_id"), min_role=WRITE)
    tags = [(t.get("key"), t.get("value")) for t in data.list("tags") if isinstance(t, dict)]
    run = services.run_create(
        experiment=experiment,
        user=user,
        name=data.string("run_name", required=False),
        tags=tags,
        start_time=parse_int(data.get("start_time"), "start_time"),
        user_name=data.string("user_id", required=False),
    )
    return {"run": new_run_shape(run)}


@endpoint("GET")
def run_get(request, user, data: RequestData):
    return {"run": run_shape(selectors.run_get_full(user=user, run_id=data.run_id()))}


@endpoint("POST")
def run_update(request, user, data: RequestData):
    run = services.run_update(
        run=_run_for_write(user, data),
        status=data.string("status", required=False) or None,
        end_time=parse_int(data.get("end_time"), "end_time"),
        name=data.string("run_name", required=False) or None,
        user=user,
    )
    return {"run_info": run_info_shape(run)}


@endpoint("POST")
def run_delete(request, user, data: RequestData):
    services.run_delete(run=_run_for_write(user, data), user=user)


@endpoint("POST")
def run_restore(request, user, data: RequestData):
    services.run_restore(run=_run_for_write(user, data), user=user)


@endpoint("POST")
def run_log_metric(request, user, data: RequestData):
    metric = {
        "key": data.string("key"),
        "value": data.require("value"),
        "timestamp": data.require("timestamp"),
        "step": data.get("step", 0),
        "model_id": data.get("model_id") or "",
        "dataset_name": data.get("dataset_name") or "",
        "dataset_digest": data.get("dataset_digest") or "",
    }
    services.run_log_batch(run=_run_for_write(user, data), metrics=[metric])


@endpoint("POST")
def run_log_parameter(request, user, data: RequestData):
    services.run_log_batch(run=_run_for_write(user, data), params=[(data.string("key"), data.get("value", ""))])


@endpoint("POST")
def run_set_tag(request, user, data: RequestData):
    services.run_set_tag(run=_run_for_write(user, data), key=data.string("key"), value=data.get("value", ""))


@endpoint("POST")
def run_delete_tag(request, user, data: RequestData):
    services.run_delete_tag(run=_run_for_write(user, data), key=data.string("key"))


def _dicts(data: RequestData, key: str) -> list[dict]:
    items = data.list(key)
    if not all(isinstance(i, dict) for i in items):
        raise MlflowError("INVALID_PARAMETER_VALUE", f"'{key}' must be a list of objects.")
    return items


@endpoint("POST")
def run_log_batch(request, user, data: RequestData):
    services.run_log_batch(
        run=_run_for_write(user, data),
        metrics=_dicts(data, "metrics"),
        params=_dicts(data, "params"),
        tags=_dicts(data, "tags"),
    )


@endpoint("POST")
def run_log_inputs(request, user, data: RequestData):
    models = [m.get("model_id") for m in _dicts(data, "models")]
    services.run_log_inputs(run=_run_for_write(user, data), datasets=_dicts(data, "datasets"), model_ids=models)


@endpoint("POST")
def run_log_outputs(request, user, data: RequestData):
    models = [(m.get("model_id"), parse_int(m.get("step"), "step", 0)) for m in _dicts(data, "models")]
    services.run_log_outputs(run=_run_for_write(user, data), models=models)


@endpoint("POST", "GET")
def run_search(request, user, data: RequestData):
    order_by = data.list("order_by")
    if not all(isinstance(o, str) for o in order_by):
        raise MlflowError("INVALID_PARAMETER_VALUE", "order_by must be a list of strings.")
    filter_string = data.get("filter")
    if filter_string is not None and not isinstance(filter_string, str):
        raise MlflowError("INVALID_PARAMETER_VALUE", "filter must be a string.")
    page = selectors.run_search(
        user=user,
        experiment_ids=[str(e) for e in data.list("experiment_ids")],
        filter_string=filter_string,
        order_by=order_by,
        max_results=parse_int(data.get("max_results"), "max_results"),
        page_token=data.get("page_token") or None,
        view_type=data.get("run_view_type") or "ACTIVE_ONLY",
    )
    result: dict = {"runs": [run_shape(r) for r in page.runs]}
    if page.next_page_token:
        result["next_page_token"] = page.next_page_token
    return result


# -- metrics ------------------------------------------------------------------------


@endpoint("GET")
def metric_get_history(request, user, data: RequestData):
    points, token = selectors.metric_history(
        user=user,
        run_id=data.run_id(),
        key=data.string("metric_key"),
        max_results=parse_int(data.get("max_results"), "max_results"),
        page_token=data.get("page_token") or None,
    )
    result: dict = {"metrics": [metric_shape(*p) for p in points]}
    if token:
        result["next_page_token"] = token
    return result


@endpoint("GET")
def metric_get_history_bulk_interval(request, user, data: RequestData):
    run_ids = data.list("run_ids")
    if not run_ids or len(run_ids) > 100:
        raise MlflowError("INVALID_PARAMETER_VALUE", "Give between 1 and 100 run_ids.")
    max_results = parse_int(data.get("max_results"), "max_results", 2500)
    if not 1 <= max_results <= 2500:
        raise MlflowError("INVALID_PARAMETER_VALUE", "max_results must be between 1 and 2500.")
    points = selectors.metric_history_bulk_interval(
        user=user,
        run_ids=run_ids,
        key=data.string("metric_key"),
        start_step=parse_int(data.get("start_step"), "start_step"),
        end_step=parse_int(data.get("end_step"), "end_step"),
        max_results=max_results,
    )
    return {"metrics": [{**metric_shape(*p[1:]), "run_id": p[0]} for p in points]}
