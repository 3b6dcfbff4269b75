"""REST API: /api/v1/projects/<slug>/streams/... Reading needs the viewer role;
creating and changing streams, their tokens and releasing quarantined records needs
the data scientist role. Records are sent to the ingest plane, not here
(`POST /ingest/<project>/<stream>`)."""

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from data import selectors, services
from data.archive import LocalArchiveStore, tail
from data.models import SourceKind, StreamStatus
from mlplatform.api.pagination import Pagination
from mlplatform.roles import Role
from projects.selectors import project_get


class StreamOut(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.CharField(source="project.slug")
    name = serializers.CharField()
    slug = serializers.CharField()
    description = serializers.CharField()
    source = serializers.CharField()
    status = serializers.CharField()
    schema = serializers.JSONField(allow_null=True)
    schema_inferred = serializers.BooleanField()
    retention_days = serializers.IntegerField()
    mqtt_url = serializers.CharField()
    mqtt_topics = serializers.ListField(child=serializers.CharField())
    mqtt_username = serializers.CharField()
    mqtt_password_set = serializers.SerializerMethodField()
    score_endpoint = serializers.CharField()
    ingest_url = serializers.CharField(source="ingest_path")
    records_total = serializers.IntegerField()
    bytes_total = serializers.IntegerField()
    duplicates_total = serializers.IntegerField()
    quarantined_total = serializers.IntegerField()
    last_record_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_mqtt_password_set(self, stream) -> bool:
        return bool(stream.mqtt_password)


class StreamCreateIn(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    slug = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, max_length=20000, default="")
    source = serializers.ChoiceField(choices=SourceKind.values, default=SourceKind.HTTP)
    schema = serializers.JSONField(required=False, allow_null=True, default=None)
    retention_days = serializers.IntegerField(min_value=0, max_value=100_000, default=0)
    mqtt_url = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    mqtt_topics = serializers.ListField(
        child=serializers.CharField(max_length=300), required=False, default=list, max_length=50
    )
    mqtt_username = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    mqtt_password = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default="", write_only=True, trim_whitespace=False
    )
    score_endpoint = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    score_token = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default="", write_only=True, help_text="The endpoint's token."
    )


class StreamUpdateIn(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    status = serializers.ChoiceField(choices=StreamStatus.values, required=False)
    schema = serializers.JSONField(required=False, allow_null=True)
    retention_days = serializers.IntegerField(min_value=0, max_value=100_000, required=False)
    mqtt_url = serializers.CharField(max_length=300, required=False, allow_blank=True)
    mqtt_topics = serializers.ListField(child=serializers.CharField(max_length=300), required=False, max_length=50)
    mqtt_username = serializers.CharField(max_length=200, required=False, allow_blank=True)
    mqtt_password = serializers.CharField(max_length=500, required=False, allow_blank=True, trim_whitespace=False)
    score_endpoint = serializers.CharField(max_length=50, required=False, allow_blank=True)
    score_token = serializers.CharField(max_length=500, required=False, allow_blank=True, write_only=True)


class TokenOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    created_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)


class TokenIn(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")


class QuarantinedOut(serializers.Serializer):
    id = serializers.IntegerField()
    payload = serializers.JSONField(allow_null=True)
    raw = serializers.CharField()
    reason = serializers.CharField()
    received_at = serializers.DateTimeField()
    status = serializers.CharField()
    released_at = serializers.DateTimeField(allow_null=True)
    released_seq = serializers.IntegerField(allow_null=True)


class ReleaseIn(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        allow_null=True,
        default=None,
        max_length=10_000,
        help_text="The records to release; all held ones when absent.",
    )


def _stream(request, slug: str, stream: str, min_role: str = Role.VIEWER):
    return selectors.stream_get(user=request.user, project_slug=slug, slug=stream, min_role=min_role)


class StreamListApi(APIView):
    @extend_schema(responses=StreamOut(many=True), operation_id="streams_list")
    def get(self, request, slug: str):
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.stream_list(user=request.user, project_slug=slug), request, self)
        return paginator.get_paginated_response(StreamOut(page, many=True).data)

    @extend_schema(request=StreamCreateIn, responses={201: StreamOut}, operation_id="streams_create")
    def post(self, request, slug: str):
        project = project_get(user=request.user, slug=slug, min_role=Role.DATA_SCIENTIST)
        data = StreamCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        stream = services.stream_create(project=project, actor=request.user, **data.validated_data)
        return Response(StreamOut(stream).data, status=status.HTTP_201_CREATED)


class StreamDetailApi(APIView):
    @extend_schema(responses=StreamOut, operation_id="streams_retrieve")
    def get(self, request, slug: str, stream: str):
        return Response(StreamOut(_stream(request, slug, stream)).data)

    @extend_schema(request=StreamUpdateIn, responses=StreamOut, operation_id="streams_update")
    def patch(self, request, slug: str, stream: str):
        found = _stream(request, slug, stream, Role.DATA_SCIENTIST)
        data = StreamUpdateIn(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(StreamOut(services.stream_update(stream=found, actor=request.user, **data.validated_data)).data)


class TokenListApi(APIView):
    @extend_schema(responses=TokenOut(many=True), operation_id="streams_tokens_list")
    def get(self, request, slug: str, stream: str):
        found = _stream(request, slug, stream, Role.DATA_SCIENTIST)
        return Response(TokenOut(selectors.token_list(stream=found), many=True).data)

    @extend_schema(request=TokenIn, responses={201: dict}, operation_id="streams_tokens_create")
    def post(self, request, slug: str, stream: str):
        found = _stream(request, slug, stream, Role.DATA_SCIENTIST)
        data = TokenIn(data=request.data)
        data.is_valid(raise_exception=True)
        token, raw = services.ingest_token_create(stream=found, actor=request.user, name=data.validated_data["name"])
        return Response({**TokenOut(token).data, "token": raw}, status=status.HTTP_201_CREATED)


class TokenDetailApi(APIView):
    @extend_schema(request=None, responses=TokenOut, operation_id="streams_tokens_revoke")
    def delete(self, request, slug: str, stream: str, token_id: int):
        found = _stream(request, slug, stream, Role.DATA_SCIENTIST)
        token = selectors.token_get(stream=found, token_id=token_id)
        return Response(TokenOut(services.ingest_token_revoke(token=token, actor=request.user)).data)


class QuarantineApi(APIView):
    @extend_schema(
        responses=QuarantinedOut(many=True),
        parameters=[OpenApiParameter("status", str, enum=["held", "released"])],
        operation_id="streams_quarantine_list",
    )
    def get(self, request, slug: str, stream: str):
        found = _stream(request, slug, stream)
        wanted = request.query_params.get("status", "held")
        if wanted not in {"held", "released"}:
            wanted = "held"
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.quarantine_list(stream=found, status=wanted), request, self)
        return paginator.get_paginated_response(QuarantinedOut(page, many=True).data)


class QuarantineReleaseApi(APIView):
    @extend_schema(request=ReleaseIn, responses=dict, operation_id="streams_quarantine_release")
    def post(self, request, slug: str, stream: str):
        found = _stream(request, slug, stream, Role.DATA_SCIENTIST)
        data = ReleaseIn(data=request.data)
        data.is_valid(raise_exception=True)
        released, held = services.quarantine_release(stream=found, actor=request.user, ids=data.validated_data["ids"])
        return Response({"released": released, "still_held": held})


class RecordsApi(APIView):
    @extend_schema(
        responses=dict,
        parameters=[OpenApiParameter("limit", int, description="How many of the latest records (max 500).")],
        operation_id="streams_records_latest",
    )
    def get(self, request, slug: str, stream: str):
        """The latest archived records, oldest first, with their sequence numbers."""
        found = _stream(request, slug, stream)
        try:
            limit = max(1, min(500, int(request.query_params.get("limit", "20"))))
        except ValueError:
            limit = 20
        lines = tail(LocalArchiveStore(settings.DATA_ARCHIVE_DIR), f"{found.project.slug}/{found.slug}", limit)
        return Response({"records": [{"seq": r["seq"], "at_ms": r["t"], "record": r["r"]} for r in lines]})
