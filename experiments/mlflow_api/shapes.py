"""Our objects in MLflow's JSON shapes (service.proto), empty fields left out as
protobuf's JSON printer does."""

from experiments.mlflow_api.common import display_name, float_out
from experiments.models import Experiment, LoggedModel, Run


def kv(pairs) -> list[dict]:
    return [{"key": k, "value": v} for k, v in pairs]


def experiment_shape(experiment: Experiment, user) -> dict:
    return {
        "experiment_id": str(experiment.pk),
        "name": display_name(user, experiment.project, experiment.name),
        "artifact_location": experiment.artifact_location,
        "lifecycle_stage": experiment.lifecycle_stage,
        "last_update_time": experiment.last_update_time,
        "creation_time": experiment.creation_time,
        "tags": kv((t.key, t.value) for t in experiment.tags.all()),
    }


def run_info_shape(run: Run) -> dict:
    info = {
        "run_id": run.pk,
        "run_uuid": run.pk,
        "run_name": run.name,
        "experiment_id": str(run.experiment_id),
        "user_id": run.user_name,
        "status": run.status,
        "start_time": run.start_time,
        "artifact_uri": run.artifact_uri,
        "lifecycle_stage": run.lifecycle_stage,
    }
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


def metric_shape(key: str, value: float, is_nan: bool, step: int, timestamp: int) -> dict:
    return {"key": key, "value": float_out(value, is_nan), "timestamp": timestamp, "step": step}


def _dataset_shape(name, digest, source_type, source, schema, profile) -> dict:
    shape = {"name": name, "digest": digest, "source_type": source_type, "source": source}
    if schema:
        shape["schema"] = schema
    if profile:
        shape["profile"] = profile
    return shape


def run_shape(run: Run) -> dict:
    """`run` comes from selectors.attach_run_data (its rows attached)."""
    return {
        "info": run_info_shape(run),
        "data": {
            "metrics": [metric_shape(*row) for row in run.metric_rows],
            "params": kv(run.param_rows),
            "tags": kv(run.tag_rows),
        },
        "inputs": {
            "dataset_inputs": [
                {"tags": kv(sorted((tags or {}).items())), "dataset": _dataset_shape(*ds)}
                for *ds, tags in run.input_rows
            ],
            "model_inputs": [{"model_id": m} for m, direction, _ in run.model_rows if direction == "input"],
        },
        "outputs": {
            "model_outputs": [
                {"model_id": m, "step": step} for m, direction, step in run.model_rows if direction == "output"
            ]
        },
    }


def logged_model_shape(model: LoggedModel, metrics: list | None = None) -> dict:
    info = {
        "model_id": model.pk,
        "experiment_id": str(model.experiment_id),
        "name": model.name,
        "creation_timestamp_ms": model.creation_timestamp,
        "last_updated_timestamp_ms": model.last_updated_timestamp,
        "artifact_uri": model.artifact_location,
        "status": model.status,
        "tags": kv((t.key, t.value) for t in model.tags.all()),
    }
    if model.creator_id:
        info["creator_id"] = model.creator_id
    if model.model_type:
        info["model_type"] = model.model_type
    if model.source_run_id:
        info["source_run_id"] = model.source_run_id
    if model.status_message:
        info["status_message"] = model.status_message
    data = {"params": kv((p.key, p.value) for p in model.params.all()), "metrics": metrics or []}
    return {"info": info, "data": data}


def new_run_shape(run: Run) -> dict:
    """A run just created has only its tags (run_create leaves them on the run)."""
    tags = getattr(run, "tag_rows", None)
    if tags is None:
        tags = sorted(run.tags.values_list("key", "value"))
    return {
        "info": run_info_shape(run),
        "data": {"tags": kv(tags)},
        "inputs": {},
        "outputs": {},
    }
