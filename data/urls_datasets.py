from django.urls import path

from data import api_datasets as api

PREFIX = "projects/<str:slug>/datasets/"
ONE = f"{PREFIX}<str:name>/"
VERSION = f"{ONE}versions/<str:ref>/"

urlpatterns = [
    path(PREFIX, api.DatasetListApi.as_view(), name="api-datasets"),
    path(ONE, api.DatasetDetailApi.as_view(), name="api-dataset"),
    path(f"{ONE}versions/", api.VersionListApi.as_view(), name="api-dataset-versions"),
    path(f"{ONE}upload/", api.VersionUploadApi.as_view(), name="api-dataset-upload"),
    path(VERSION, api.VersionDetailApi.as_view(), name="api-dataset-version"),
    path(f"{VERSION}data", api.VersionDataApi.as_view(), name="api-dataset-version-data"),
    path(f"{VERSION}diff/", api.VersionDiffApi.as_view(), name="api-dataset-version-diff"),
    path(f"{VERSION}lineage/", api.VersionLineageApi.as_view(), name="api-dataset-version-lineage"),
    path(f"{VERSION}tags/<str:key>/", api.TagDetailApi.as_view(), name="api-dataset-version-tag"),
    path(f"{ONE}aliases/<str:alias>/", api.AliasDetailApi.as_view(), name="api-dataset-alias"),
    path("projects/<str:slug>/lineage/", api.LineageApi.as_view(), name="api-lineage"),
    path("projects/<str:slug>/lineage/openlineage/", api.OpenLineageApi.as_view(), name="api-lineage-openlineage"),
    path("lineage/openlineage/facets/", api.OpenLineageFacetsApi.as_view(), name="api-openlineage-facets"),
]
