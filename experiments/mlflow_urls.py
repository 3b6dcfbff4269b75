"""Routes of the MLflow-compatible API, mounted at the root by mlplatform.urls
(`/api/2.0/mlflow/…`, `/api/2.0/mlflow-artifacts/…`, `/api/3.0/mlflow/server-info`)."""

from django.urls import include, path, re_path

from experiments.mlflow_api import artifacts, logged_models, tracking

tracking_routes = [
    path("experiments/create", tracking.experiment_create),
    path("experiments/get", tracking.experiment_get),
    path("experiments/get-by-name", tracking.experiment_get_by_name),
    path("experiments/search", tracking.experiment_search),
    path("experiments/delete", tracking.experiment_delete),
    path("experiments/restore", tracking.experiment_restore),
    path("experiments/update", tracking.experiment_update),
    path("experiments/set-experiment-tag", tracking.experiment_set_tag),
    path("experiments/delete-experiment-tag", tracking.experiment_delete_tag),
    path("runs/create", tracking.run_create),
    path("runs/get", tracking.run_get),
    path("runs/update", tracking.run_update),
    path("runs/delete", tracking.run_delete),
    path("runs/restore", tracking.run_restore),
    path("runs/log-metric", tracking.run_log_metric),
    path("runs/log-parameter", tracking.run_log_parameter),
    path("runs/set-tag", tracking.run_set_tag),
    path("runs/delete-tag", tracking.run_delete_tag),
    path("runs/log-batch", tracking.run_log_batch),
    path("runs/log-inputs", tracking.run_log_inputs),
    path("runs/outputs", tracking.run_log_outputs),
    path("runs/search", tracking.run_search),
    path("metrics/get-history", tracking.metric_get_history),
    path("metrics/get-history-bulk-interval", tracking.metric_get_history_bulk_interval),
    path("artifacts/list", artifacts.run_artifacts_list),
    path("logged-models", logged_models.logged_model_create),
    path("logged-models/search", logged_models.logged_model_search),
    path("logged-models/<str:model_id>", logged_models.logged_model_detail),
    path("logged-models/<str:model_id>/tags", logged_models.logged_model_set_tags),
    path("logged-models/<str:model_id>/tags/<path:key>", logged_models.logged_model_delete_tag),
    path("logged-models/<str:model_id>/params", logged_models.logged_model_log_params),
    path("", include("registry.mlflow_urls")),
]

urlpatterns = [
    path("api/2.0/mlflow/", include(tracking_routes)),
    path("api/2.0/mlflow-artifacts/artifacts", artifacts.proxy_list),
    path("api/2.0/mlflow-artifacts/mpu/part", artifacts.mpu_part),
    re_path(r"^api/2\.0/mlflow-artifacts/mpu/create/(?P<artifact_path>.*)$", artifacts.mpu_create),
    re_path(r"^api/2\.0/mlflow-artifacts/mpu/complete/(?P<artifact_path>.*)$", artifacts.mpu_complete),
    re_path(r"^api/2\.0/mlflow-artifacts/mpu/abort/(?P<artifact_path>.*)$", artifacts.mpu_abort),
    re_path(r"^api/2\.0/mlflow-artifacts/artifacts/(?P<artifact_path>.*)$", artifacts.proxy_artifact),
    path("api/3.0/mlflow/server-info", logged_models.server_info),
]
