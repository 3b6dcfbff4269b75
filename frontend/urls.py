from django.urls import path

from frontend.views import core, deployments, projects

urlpatterns = [
    path("", core.home, name="home"),
    path("projects/", projects.project_list, name="project-list"),
    path("projects/new/", projects.project_create, name="project-create"),
    path("projects/<str:slug>/", projects.project_detail, name="project-detail"),
    path("projects/<str:slug>/edit/", projects.project_edit, name="project-edit"),
    path("projects/<str:slug>/members/", projects.project_members, name="project-members"),
    path("projects/<str:slug>/members/<str:username>/", projects.project_member_update, name="project-member-update"),
    path("deployments/", deployments.endpoint_list, name="section-deployments"),
    path("deployments/new/", deployments.endpoint_create, name="endpoint-create"),
    path("deployments/<str:slug>/", deployments.endpoint_detail, name="endpoint-detail"),
    path("deployments/<str:slug>/deploy/", deployments.endpoint_deploy, name="endpoint-deploy"),
    path("deployments/<str:slug>/action/", deployments.endpoint_action, name="endpoint-action"),
    path("settings/tokens/", core.token_list, name="token-list"),
    path("settings/tokens/<int:token_id>/revoke/", core.token_revoke, name="token-revoke"),
]

# Sections whose issues have not landed yet say so; each is replaced by its app's urls.
for _section in ["ideation", "experiments", "models", "data"]:
    urlpatterns.append(path(f"{_section}/", core.upcoming_section, {"section": _section}, name=f"section-{_section}"))
