from django.urls import path

from experiments import api

urlpatterns = [
    path("experiments/", api.ExperimentListApi.as_view(), name="api-experiments"),
    path("experiments/<int:experiment_id>/", api.ExperimentDetailApi.as_view(), name="api-experiment"),
    path("experiments/<int:experiment_id>/runs/", api.RunSearchApi.as_view(), name="api-experiment-runs"),
    path("experiments/<int:experiment_id>/columns/", api.ExperimentColumnsApi.as_view(), name="api-experiment-columns"),
    path("experiments/<int:experiment_id>/runs/csv/", api.RunExportApi.as_view(), name="api-experiment-runs-csv"),
    path("runs/compare/", api.RunCompareApi.as_view(), name="api-runs-compare"),
    path("runs/metrics/series/", api.MetricSeriesApi.as_view(), name="api-runs-metric-series"),
    path("runs/<str:run_id>/", api.RunDetailApi.as_view(), name="api-run"),
    path("runs/<str:run_id>/metrics/history/", api.MetricHistoryApi.as_view(), name="api-run-metric-history"),
    path("runs/<str:run_id>/artifacts/", api.ArtifactListApi.as_view(), name="api-run-artifacts"),
    path("runs/<str:run_id>/artifacts/download/", api.ArtifactDownloadApi.as_view(), name="api-run-artifact-download"),
]
