"""REST API /api/v1/: registered models, their versions (with provenance) and aliases.
Models are addressed by project slug and name; another project's model is 404."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from mlplatform.api.pagination import Pagination
from mlplatform.roles import Role
from projects.selectors import project_get
from registry import selectors_ui, services


class AliasOut(serializers.Serializer):
    alias = serializers.CharField()
    version = serializers.IntegerField(source="model_version.version")


class TagOut(serializers.Serializer):
    key = serializers.CharField()
    value = serializers.CharField()


class ModelOut(serializers.Serializer):
    name = serializers.CharField()
    project = serializers.CharField(source="project.slug")
    description = serializers.CharField()
    creation_timestamp = serializers.IntegerField()
    last_updated_timestamp = serializers.IntegerField()
    version_count = serializers.IntegerField()
    latest_version = serializers.IntegerField(allow_null=True)
    aliases = AliasOut(many=True, source="aliases.all")
    tags = TagOut(many=True, source="tags.all")


class VersionOut(serializers.Serializer):
    version = serializers.IntegerField()
    status = serializers.CharField()
    current_stage = serializers.CharField()
    description = serializers.CharField()
    source = serializers.CharField()
    run_id = serializers.CharField(allow_null=True)
    logged_model_id = serializers.CharField(allow_null=True)
    creation_timestamp = serializers.IntegerField()
    last_updated_timestamp = serializers.IntegerField()
    aliases = serializers.SerializerMethodField()
    tags = TagOut(many=True, source="tags.all")

    def get_aliases(self, mv) -> list[str]:
        return sorted(a.alias for a in mv.aliases.all())


class ProvenanceOut(VersionOut):
    code_version = serializers.CharField()
    source_tags = serializers.DictField(child=serializers.CharField())
    params = serializers.DictField(child=serializers.CharField())
    dataset_digests = serializers.ListField(child=serializers.DictField())
    experiment_id = serializers.IntegerField(source="run.experiment_id", allow_null=True, default=None)
    run_name = serializers.CharField(source="run.name", allow_null=True, default=None)


class ModelDetailOut(ModelOut):
    versions = VersionOut(many=True, source="versions_list")


class AliasIn(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)


class ModelListApi(APIView):
    @extend_schema(
        responses=ModelOut(many=True),
        parameters=[
            OpenApiParameter("project", str, description="Only this project's models (slug)."),
            OpenApiParameter(
                "filter",
                str,
                description="MLflow's registered-model filter, e.g. `name LIKE 'churn%' AND tags.team = 'growth'` "
                "(name, tags.<key>; =, !=, LIKE, ILIKE, IN; AND).",
            ),
        ],
        operation_id="models_list",
    )
    def get(self, request):
        slug = request.query_params.get("project")
        project = project_get(user=request.user, slug=slug) if slug else None
        models = selectors_ui.model_overview(
            user=request.user, project=project, filter_string=request.query_params.get("filter")
        )
        paginator = Pagination()
        page = paginator.paginate_queryset(models, request, view=self)
        return paginator.get_paginated_response(ModelOut(page, many=True).data)


class ModelDetailApi(APIView):
    @extend_schema(responses=ModelDetailOut, operation_id="models_retrieve")
    def get(self, request, slug: str, name: str):
        model = selectors_ui.model_get(user=request.user, project_slug=slug, name=name)
        model.versions_list = selectors_ui.version_list(model=model)
        return Response(ModelDetailOut(model).data)


class VersionListApi(APIView):
    @extend_schema(
        responses=VersionOut(many=True),
        parameters=[
            OpenApiParameter(
                "filter",
                str,
                description="MLflow's model-version filter, e.g. `version_number >= 3 AND tags.validated = 'yes'` "
                "(version_number, run_id, source_path, tags.<key>; AND).",
            )
        ],
        operation_id="models_versions_list",
    )
    def get(self, request, slug: str, name: str):
        model = selectors_ui.model_get(user=request.user, project_slug=slug, name=name)
        versions = selectors_ui.version_list(model=model, filter_string=request.query_params.get("filter"))
        return Response(VersionOut(versions, many=True).data)


class VersionDetailApi(APIView):
    @extend_schema(responses=ProvenanceOut, operation_id="models_versions_retrieve")
    def get(self, request, slug: str, name: str, version: int):
        model = selectors_ui.model_get(user=request.user, project_slug=slug, name=name)
        return Response(ProvenanceOut(selectors_ui.version_get(model=model, version=version)).data)


class AliasListApi(APIView):
    @extend_schema(responses=AliasOut(many=True), operation_id="models_aliases_list")
    def get(self, request, slug: str, name: str):
        model = selectors_ui.model_get(user=request.user, project_slug=slug, name=name)
        return Response(AliasOut(model.aliases.all(), many=True).data)


class AliasDetailApi(APIView):
    @extend_schema(request=AliasIn, responses=AliasOut, operation_id="models_aliases_set")
    def put(self, request, slug: str, name: str, alias: str):
        model = selectors_ui.model_get(user=request.user, project_slug=slug, name=name, min_role=Role.DATA_SCIENTIST)
        data = AliasIn(data=request.data)
        data.is_valid(raise_exception=True)
        version = selectors_ui.version_get(model=model, version=data.validated_data["version"])
        link = services.alias_set(registered_model=model, alias=alias, version=version, user=request.user)
        return Response(AliasOut(link).data)

    @extend_schema(responses={204: None}, operation_id="models_aliases_delete")
    def delete(self, request, slug: str, name: str, alias: str):
        model = selectors_ui.model_get(user=request.user, project_slug=slug, name=name, min_role=Role.DATA_SCIENTIST)
        services.alias_delete(registered_model=model, alias=alias, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
