"""REST API of the core: who am I, and my API tokens."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from mlplatform import selectors, services
from mlplatform.errors import PermissionDenied
from projects.selectors import project_get


class MeOut(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.CharField()
    display_name = serializers.CharField()
    is_admin = serializers.BooleanField()


class TokenOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    project = serializers.CharField(source="project.slug", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)


class TokenCreatedOut(TokenOut):
    token = serializers.CharField(help_text="The secret. Shown this once; store it now.")


class TokenIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    project = serializers.CharField(required=False, allow_blank=True, help_text="Slug of the one project it may reach.")
    expires_in_days = serializers.IntegerField(required=False, min_value=1, max_value=3650, default=90)


class MeApi(APIView):
    @extend_schema(responses=MeOut)
    def get(self, request):
        return Response(MeOut(request.user).data)


class TokenListApi(APIView):
    @extend_schema(responses=TokenOut(many=True), operation_id="tokens_list")
    def get(self, request):
        return Response(TokenOut(selectors.api_token_list(user=request.user), many=True).data)

    @extend_schema(request=TokenIn, responses={201: TokenCreatedOut}, operation_id="tokens_create")
    def post(self, request):
        if getattr(request.user, "api_token", None) is not None and request.user.api_token.project_id:
            raise PermissionDenied("A project-scoped token cannot create tokens.")
        data = TokenIn(data=request.data)
        data.is_valid(raise_exception=True)
        slug = data.validated_data.get("project")
        project = project_get(user=request.user, slug=slug) if slug else None
        token, raw = services.api_token_create(
            user=request.user,
            name=data.validated_data["name"],
            project=project,
            expires_in_days=data.validated_data["expires_in_days"],
        )
        token.token = raw
        return Response(TokenCreatedOut(token).data, status=status.HTTP_201_CREATED)


class TokenDetailApi(APIView):
    @extend_schema(responses={204: None}, operation_id="tokens_revoke")
    def delete(self, request, token_id: int):
        services.api_token_revoke(token_id=token_id, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
