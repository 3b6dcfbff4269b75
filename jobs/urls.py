from django.urls import path

from jobs import api

urlpatterns = [
    path("jobs/", api.JobListApi.as_view(), name="api-jobs"),
    path("jobs/limits/", api.JobLimitsApi.as_view(), name="api-job-limits"),
    path("jobs/<int:job_id>/", api.JobDetailApi.as_view(), name="api-job"),
    path("jobs/<int:job_id>/cancel/", api.JobCancelApi.as_view(), name="api-job-cancel"),
    path("jobs/<int:job_id>/rerun/", api.JobRerunApi.as_view(), name="api-job-rerun"),
    path("jobs/<int:job_id>/logs/", api.JobLogsApi.as_view(), name="api-job-logs"),
    path("sweeps/", api.SweepListApi.as_view(), name="api-sweeps"),
    path("sweeps/<int:sweep_id>/", api.SweepDetailApi.as_view(), name="api-sweep"),
]
