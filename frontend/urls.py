from django.urls import path

from frontend.views import core, jobs, projects

urlpatterns = [
    path("", core.home, name="home"),
    path("projects/", projects.project_list, name="project-list"),
    path("projects/new/", projects.project_create, name="project-create"),
    path("projects/<str:slug>/", projects.project_detail, name="project-detail"),
    path("projects/<str:slug>/edit/", projects.project_edit, name="project-edit"),
    path("projects/<str:slug>/members/", projects.project_members, name="project-members"),
    path("projects/<str:slug>/members/<str:username>/", projects.project_member_update, name="project-member-update"),
    path("jobs/", jobs.job_list, name="job-list"),
    path("jobs/new/", jobs.job_submit, name="job-submit"),
    path("jobs/<int:job_id>/", jobs.job_detail, name="job-detail"),
    path("jobs/<int:job_id>/cancel/", jobs.job_cancel, name="job-cancel"),
    path("jobs/<int:job_id>/log.txt", jobs.job_log_download, name="job-log-download"),
    path("jobs/sweeps/<int:sweep_id>/", jobs.sweep_detail, name="sweep-detail"),
    path("settings/tokens/", core.token_list, name="token-list"),
    path("settings/tokens/<int:token_id>/revoke/", core.token_revoke, name="token-revoke"),
]

# Sections whose issues have not landed yet say so; each is replaced by its app's urls.
for _section in ["ideation", "experiments", "models", "deployments", "data"]:
    urlpatterns.append(path(f"{_section}/", core.upcoming_section, {"section": _section}, name=f"section-{_section}"))
