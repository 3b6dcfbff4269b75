from django.urls import path

from frontend.views import core, dashboard, deployments, experiments, ideation, jobs, lifecycle, models, projects

urlpatterns = [
    path("", core.home, name="home"),
    path("projects/", projects.project_list, name="project-list"),
    path("projects/new/", projects.project_create, name="project-create"),
    path("projects/<str:slug>/", projects.project_detail, name="project-detail"),
    path("projects/<str:slug>/edit/", projects.project_edit, name="project-edit"),
    path("projects/<str:slug>/members/", projects.project_members, name="project-members"),
    path("projects/<str:slug>/members/<str:username>/", projects.project_member_update, name="project-member-update"),
    path("ideation/", ideation.board_list, name="section-ideation"),
    path("ideation/boards/<int:board_id>/", ideation.board_detail, name="board-detail"),
    path("ideation/boards/<int:board_id>/invite/", ideation.board_invite, name="board-invite"),
    path("ideation/boards/<int:board_id>/summary/", ideation.board_summary, name="board-summary"),
    path("ideation/boards/<int:board_id>/ideas.csv", ideation.board_export, name="board-export"),
    path("ideation/boards/<int:board_id>/ideas/<int:idea_id>/", ideation.idea_detail, name="idea-detail"),
    path("ideation/boards/<int:board_id>/ideas/<int:idea_id>/promote/", ideation.idea_promote, name="idea-promote"),
    path("projects/<str:slug>/kpis/", dashboard.kpi_add, name="kpi-add"),
    path("projects/<str:slug>/kpis/<int:kpi_id>/", dashboard.kpi_record, name="kpi-record"),
    path("projects/<str:slug>/gates/", dashboard.gate_add, name="gate-add"),
    path("projects/<str:slug>/gates/<int:gate_id>/", dashboard.gate_detail, name="gate-detail"),
    path("projects/<str:slug>/gates/<int:gate_id>/act/", dashboard.gate_action, name="gate-action"),
    path("projects/<str:slug>/experiments/", experiments.project_experiments, name="project-experiments"),
    path("experiments/", experiments.experiment_home, name="section-experiments"),
    path("experiments/compare/", experiments.runs_compare, name="runs-compare"),
    path("experiments/<int:experiment_id>/", experiments.experiment_runs, name="experiment-runs"),
    path("experiments/<int:experiment_id>/runs.csv", experiments.experiment_runs_csv, name="experiment-runs-csv"),
    path("runs/<str:run_id>/", experiments.run_detail, name="run-detail"),
    path("runs/<str:run_id>/artifact", experiments.run_artifact, name="run-artifact"),
    path("runs/<str:run_id>/register/", lifecycle.run_register, name="run-register"),
    path("models/", models.model_list, name="section-models"),
    path("models/<str:slug>/<str:name>/", models.model_detail, name="model-detail"),
    path("models/<str:slug>/<str:name>/versions/<int:version>/", models.model_version, name="model-version"),
    path("models/<str:slug>/<str:name>/versions/<int:version>/alias/", lifecycle.version_alias, name="version-alias"),
    path(
        "models/<str:slug>/<str:name>/versions/<int:version>/deploy/", lifecycle.version_deploy, name="version-deploy"
    ),
    path("jobs/", jobs.job_list, name="job-list"),
    path("jobs/new/", jobs.job_submit, name="job-submit"),
    path("jobs/<int:job_id>/", jobs.job_detail, name="job-detail"),
    path("jobs/<int:job_id>/cancel/", jobs.job_cancel, name="job-cancel"),
    path("jobs/<int:job_id>/log.txt", jobs.job_log_download, name="job-log-download"),
    path("jobs/sweeps/<int:sweep_id>/", jobs.sweep_detail, name="sweep-detail"),
    path("deployments/", deployments.endpoint_list, name="section-deployments"),
    path("deployments/new/", deployments.endpoint_create, name="endpoint-create"),
    path("deployments/<str:slug>/", deployments.endpoint_detail, name="endpoint-detail"),
    path("deployments/<str:slug>/deploy/", deployments.endpoint_deploy, name="endpoint-deploy"),
    path("deployments/<str:slug>/action/", deployments.endpoint_action, name="endpoint-action"),
    path("deployments/<str:slug>/policies/", deployments.endpoint_policy, name="endpoint-policy"),
    path("settings/tokens/", core.token_list, name="token-list"),
    path("settings/tokens/<int:token_id>/revoke/", core.token_revoke, name="token-revoke"),
]

# Sections whose issues have not landed yet say so; each is replaced by its app's urls.
for _section in ["data"]:
    urlpatterns.append(path(f"{_section}/", core.upcoming_section, {"section": _section}, name=f"section-{_section}"))
