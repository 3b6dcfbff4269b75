"""REST API: /api/v1/projects/ and their members."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from mlplatform.api.pagination import Pagination
from mlplatform.roles import Role
from projects import selectors, services


class ProjectOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    description = serializers.CharField()
    owner = serializers.CharField(source="owner.username")
    is_personal = serializers.BooleanField()
    member_count = serializers.IntegerField(required=False)
    my_role = serializers.CharField(required=False, allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ProjectCreateIn(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    slug = serializers.CharField(max_length=50, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20000)


class ProjectUpdateIn(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False)
    slug = serializers.CharField(max_length=50, required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20000)


class MemberOut(serializers.Serializer):
    username = serializers.CharField(source="user.username")
    role = serializers.CharField()
    created_at = serializers.DateTimeField()


class MemberIn(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)


class RoleIn(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class ProjectListApi(APIView):
    @extend_schema(responses=ProjectOut(many=True), operation_id="projects_list")
    def get(self, request):
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.project_list(user=request.user), request, view=self)
        return paginator.get_paginated_response(ProjectOut(page, many=True).data)

    @extend_schema(request=ProjectCreateIn, responses={201: ProjectOut}, operation_id="projects_create")
    def post(self, request):
        data = ProjectCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        project = services.project_create(owner=request.user, **data.validated_data)
        project.my_role = Role.OWNER
        return Response(ProjectOut(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(APIView):
    @extend_schema(responses=ProjectOut, operation_id="projects_retrieve")
    def get(self, request, slug: str):
        return Response(ProjectOut(selectors.project_get(user=request.user, slug=slug)).data)

    @extend_schema(request=ProjectUpdateIn, responses=ProjectOut, operation_id="projects_update")
    def patch(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug, min_role=Role.OWNER)
        data = ProjectUpdateIn(data=request.data)
        data.is_valid(raise_exception=True)
        project = services.project_update(project=project, actor=request.user, **data.validated_data)
        return Response(ProjectOut(project).data)


class MemberListApi(APIView):
    @extend_schema(responses=MemberOut(many=True), operation_id="projects_members_list")
    def get(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug)
        return Response(MemberOut(selectors.membership_list(project=project), many=True).data)

    @extend_schema(request=MemberIn, responses={201: MemberOut}, operation_id="projects_members_add")
    def post(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug, min_role=Role.OWNER)
        data = MemberIn(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_add(project=project, actor=request.user, **data.validated_data)
        return Response(MemberOut(membership).data, status=status.HTTP_201_CREATED)


class MemberDetailApi(APIView):
    @extend_schema(request=RoleIn, responses=MemberOut, operation_id="projects_members_update")
    def patch(self, request, slug: str, username: str):
        project = selectors.project_get(user=request.user, slug=slug, min_role=Role.OWNER)
        data = RoleIn(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_change_role(
            project=project, username=username, role=data.validated_data["role"], actor=request.user
        )
        return Response(MemberOut(membership).data)

    @extend_schema(responses={204: None}, operation_id="projects_members_remove")
    def delete(self, request, slug: str, username: str):
        project = selectors.project_get(user=request.user, slug=slug, min_role=Role.OWNER)
        services.membership_remove(project=project, username=username, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
