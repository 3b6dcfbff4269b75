"""The Data section's dataset pages (issue 20), under /data/datasets/ and /data/lineage/."""

from django.urls import path

from frontend.views import datasets

urlpatterns = [
    path("data/datasets/", datasets.dataset_list, name="dataset-list"),
    path("data/datasets/upload/", datasets.dataset_upload, name="dataset-upload"),
    path("data/datasets/<str:slug>/<str:name>/", datasets.dataset_detail, name="dataset-detail"),
    path("data/datasets/<str:slug>/<str:name>/diff/", datasets.dataset_diff, name="dataset-diff"),
    path("data/datasets/<str:slug>/<str:name>/<str:ref>/", datasets.dataset_version, name="dataset-version"),
    path("data/lineage/<str:slug>/", datasets.lineage_page, name="lineage"),
]
