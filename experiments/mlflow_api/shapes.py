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


def run_shape(run: Run) -> dict:
    """`run` comes from selectors.with_run_data (everything prefetched)."""
    inputs = {
        "dataset_inputs": [
            {
                "tags": kv(sorted(di.tags.items())),
                "dataset": {
                    "name": di.dataset.name,
                    "digest": di.dataset.digest,
                    "source_type": di.dataset.source_type,
                    "source": di.dataset.source,
                    **({"schema": di.dataset.schema} if di.dataset.schema else {}),
                    **({"profile": di.dataset.profile} if di.dataset.profile else {}),
                },
            }
            for di in run.dataset_inputs.all()
        ],
        "model_inputs": [{"model_id": link.model_id} for link in run.model_links.all() if link.direction == "input"],
    }
    outputs = {
        "model_outputs": [
            {"model_id": link.model_id, "step": link.step}
            for link in run.model_links.all()
            if link.direction == "output"
        ]
    }
    return {
        "info": run_info_shape(run),
        "data": {
            "metrics": [metric_shape(m.key, m.value, m.is_nan, m.step, m.timestamp) for m in run.latest_metrics.all()],
            "params": kv((p.key, p.value) for p in run.params.all()),
            "tags": kv((t.key, t.value) for t in run.tags.all()),
        },
        "inputs": inputs,
        "outputs": outputs,
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
    """A run just created has only its tags: no need to fetch the rest."""
    return {
        "info": run_info_shape(run),
        "data": {"tags": kv(sorted(run.tags.values_list("key", "value")))},
        "inputs": {},
        "outputs": {},
    }
