from django.urls import path

from registry import api

PREFIX = "projects/<str:slug>/models/<str:name>/"

urlpatterns = [
    path("models/", api.ModelListApi.as_view(), name="api-models"),
    path(PREFIX, api.ModelDetailApi.as_view(), name="api-model"),
    path(f"{PREFIX}versions/", api.VersionListApi.as_view(), name="api-model-versions"),
    path(f"{PREFIX}versions/<int:version>/", api.VersionDetailApi.as_view(), name="api-model-version"),
    path(f"{PREFIX}aliases/", api.AliasListApi.as_view(), name="api-model-aliases"),
    path(f"{PREFIX}aliases/<str:alias>/", api.AliasDetailApi.as_view(), name="api-model-alias"),
]
