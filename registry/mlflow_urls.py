from django.urls import path

from registry import mlflow_api as api

urlpatterns = [
    path("registered-models/create", api.registered_model_create),
    path("registered-models/get", api.registered_model_get),
    path("registered-models/rename", api.registered_model_rename),
    path("registered-models/update", api.registered_model_update),
    path("registered-models/delete", api.registered_model_delete),
    path("registered-models/search", api.registered_model_search),
    path("registered-models/get-latest-versions", api.registered_model_latest_versions),
    path("registered-models/set-tag", api.registered_model_set_tag),
    path("registered-models/delete-tag", api.registered_model_delete_tag),
    path("registered-models/alias", api.registered_model_alias),
    path("model-versions/create", api.model_version_create),
    path("model-versions/get", api.model_version_get),
    path("model-versions/update", api.model_version_update),
    path("model-versions/delete", api.model_version_delete),
    path("model-versions/transition-stage", api.model_version_transition_stage),
    path("model-versions/search", api.model_version_search),
    path("model-versions/get-download-uri", api.model_version_download_uri),
    path("model-versions/set-tag", api.model_version_set_tag),
    path("model-versions/delete-tag", api.model_version_delete_tag),
]
