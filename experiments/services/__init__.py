"""Writes of experiments, runs, logged data and logged models. Callers have already
checked the actor's role in the project (see experiments.selectors), except where a
docstring says otherwise."""

from experiments.services.experiments import (
    experiment_create,
    experiment_delete,
    experiment_get_or_create,
    experiment_rename,
    experiment_restore,
    experiment_set_tag,
    resolve_experiment_name,
)
from experiments.services.logged_models import (
    logged_model_create,
    logged_model_delete,
    logged_model_delete_tag,
    logged_model_finalize,
    logged_model_log_params,
    logged_model_set_tags,
)
from experiments.services.runs import (
    run_create,
    run_delete,
    run_delete_tag,
    run_log_batch,
    run_log_inputs,
    run_log_outputs,
    run_restore,
    run_set_tag,
    run_update,
)

__all__ = [
    "experiment_create",
    "experiment_delete",
    "experiment_get_or_create",
    "experiment_rename",
    "experiment_restore",
    "experiment_set_tag",
    "logged_model_create",
    "logged_model_delete",
    "logged_model_delete_tag",
    "logged_model_finalize",
    "logged_model_log_params",
    "logged_model_set_tags",
    "resolve_experiment_name",
    "run_create",
    "run_delete",
    "run_delete_tag",
    "run_log_batch",
    "run_log_inputs",
    "run_log_outputs",
    "run_restore",
    "run_set_tag",
    "run_update",
]
