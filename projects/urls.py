from django.urls import path

from projects import api

urlpatterns = [
    path("projects/", api.ProjectListApi.as_view(), name="api-projects"),
    path("projects/<str:slug>/", api.ProjectDetailApi.as_view(), name="api-project"),
    path("projects/<str:slug>/members/", api.MemberListApi.as_view(), name="api-project-members"),
    path("projects/<str:slug>/members/<str:username>/", api.MemberDetailApi.as_view(), name="api-project-member"),
    path("projects/<str:slug>/kpis/", api.KpiListApi.as_view(), name="api-project-kpis"),
    path("projects/<str:slug>/stage/", api.ProjectStageApi.as_view(), name="api-project-stage"),
    path("projects/<str:slug>/gates/", api.GateListApi.as_view(), name="api-project-gates"),
    path("kpis/<int:kpi_id>/", api.KpiDetailApi.as_view(), name="api-kpi"),
    path("kpis/<int:kpi_id>/values/", api.KpiValueListApi.as_view(), name="api-kpi-values"),
    path("gates/<int:gate_id>/", api.GateDetailApi.as_view(), name="api-gate"),
    path("gates/<int:gate_id>/criteria/", api.GateCriterionApi.as_view(), name="api-gate-criteria"),
    path(
        "gates/<int:gate_id>/criteria/<int:criterion_id>/",
        api.GateCriterionDetailApi.as_view(),
        name="api-gate-criterion",
    ),
    path("gates/<int:gate_id>/evidence/", api.GateEvidenceApi.as_view(), name="api-gate-evidence"),
    path(
        "gates/<int:gate_id>/evidence/<int:evidence_id>/",
        api.GateEvidenceDetailApi.as_view(),
        name="api-gate-evidence-item",
    ),
    path("gates/<int:gate_id>/review/", api.GateReviewApi.as_view(), name="api-gate-review"),
    path("gates/<int:gate_id>/votes/", api.GateVoteApi.as_view(), name="api-gate-votes"),
    path("gates/<int:gate_id>/decision/", api.GateDecisionApi.as_view(), name="api-gate-decision"),
]
