from django.urls import path

from projects import api

urlpatterns = [
    path("projects/", api.ProjectListApi.as_view(), name="api-projects"),
    path("projects/<str:slug>/", api.ProjectDetailApi.as_view(), name="api-project"),
    path("projects/<str:slug>/members/", api.MemberListApi.as_view(), name="api-project-members"),
    path("projects/<str:slug>/members/<str:username>/", api.MemberDetailApi.as_view(), name="api-project-member"),
]
