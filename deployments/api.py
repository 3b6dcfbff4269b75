"""REST API: /api/v1/endpoints/... (endpoints, revisions, traffic, promote, rollback,
metrics, events). Reading needs the viewer role; changing routing needs ML engineer;
trusting a pickle-based revision needs owner."""

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from deployments import selectors, services
from deployments.models import ChallengerMode
from mlplatform.api.pagination import Pagination
from mlplatform.errors import PermissionDenied
from mlplatform.roles import Role, role_at_least
from projects.selectors import project_get


class RevisionOut(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    model_name = serializers.CharField()
    model_version = serializers.IntegerField(source="model_version_number", allow_null=True)
    status = serializers.CharField()
    status_reason = serializers.CharField()
    loader = serializers.CharField(
        help_text="Which loader serves it: sklearn-fast, sklearn, xgboost-native, lightgbm-native or pyfunc; "
        "empty until a serving process has loaded it."
    )
    trusted = serializers.BooleanField()
    offline_metric = serializers.FloatField(allow_null=True)
    created_at = serializers.DateTimeField()


class EndpointOut(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.CharField(source="project.slug")
    name = serializers.CharField()
    slug = serializers.CharField()
    description = serializers.CharField()
    url = serializers.SerializerMethodField()
    public = serializers.BooleanField()
    token_prefix = serializers.CharField()
    champion = RevisionOut(allow_null=True)
    challenger = RevisionOut(allow_null=True)
    challenger_mode = serializers.CharField()
    traffic = serializers.FloatField()
    payload_sample = serializers.FloatField()
    auto_rollback = serializers.BooleanField()
    auto_promote = serializers.BooleanField()
    auto_canary = serializers.BooleanField()
    fast_path = serializers.BooleanField()
    policy = serializers.JSONField()
    created_at = serializers.DateTimeField()

    def get_url(self, endpoint) -> str:
        return f"/serve/{endpoint.slug}/invocations"


class EndpointCreateIn(serializers.Serializer):
    project = serializers.CharField()
    name = serializers.CharField(max_length=120)
    slug = serializers.CharField(max_length=50, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    public = serializers.BooleanField(required=False, default=False)


class EndpointUpdateIn(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    public = serializers.BooleanField(required=False)
    payload_sample = serializers.FloatField(required=False, min_value=0, max_value=1)
    auto_rollback = serializers.BooleanField(required=False)
    auto_promote = serializers.BooleanField(required=False)
    auto_canary = serializers.BooleanField(required=False)
    fast_path = serializers.BooleanField(
        required=False, help_text="false: serve every revision through its flavor's own predict or mlflow.pyfunc."
    )
    policy = serializers.JSONField(required=False)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "object", "additionalProperties": {"type": "array", "items": {}}},
            {"type": "string", "pattern": "^dataset:"},
        ]
    }
)
class ReferenceField(serializers.Field):
    """Training values per feature, or the name of a stored reference."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            if not data.strip():
                raise serializers.ValidationError("Name a stored reference, e.g. dataset:<project>/<name>@<ref>.")
            return data.strip()
        if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
            return data
        raise serializers.ValidationError("Training values per feature ({name: [values]}) or 'dataset:<...>'.")

    def to_representation(self, value):
        return value


class DeployIn(serializers.Serializer):
    model = serializers.CharField(help_text="Registered model name, `<project>/<model>`.")
    version = serializers.IntegerField(min_value=1)
    role = serializers.ChoiceField(choices=["champion", *ChallengerMode.values], default="champion")
    traffic = serializers.FloatField(min_value=0, max_value=1, default=0.1)
    trusted = serializers.BooleanField(default=False)
    gate_override_reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    reference = ReferenceField(
        required=False,
        help_text="Training values per feature, or a stored reference by name: "
        "`dataset:<project>/<name>@<version, prefix or alias>` (no `@`: the `@reference` alias).",
    )
    reference_mode = serializers.ChoiceField(
        choices=["auto", "burn_in", "none"],
        default="auto",
        help_text="auto: the run's logged training data, else a sample saved at log_model, else burn-in.",
    )
    burn_in_rows = serializers.IntegerField(min_value=10, max_value=100_000, default=200)


class TrafficIn(serializers.Serializer):
    traffic = serializers.FloatField(min_value=0, max_value=1)
    mode = serializers.ChoiceField(choices=ChallengerMode.values, required=False)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class ReasonIn(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    target = serializers.ChoiceField(choices=["challenger", "champion"], default="challenger")


class EventOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    revision = serializers.IntegerField(source="revision.number", allow_null=True)
    automatic = serializers.BooleanField()
    actor = serializers.CharField(source="actor.username", allow_null=True)
    reason = serializers.CharField()
    data = serializers.JSONField()
    created_at = serializers.DateTimeField()


class EndpointListApi(APIView):
    @extend_schema(responses=EndpointOut(many=True), operation_id="endpoints_list")
    def get(self, request):
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.endpoint_list(user=request.user), request, view=self)
        return paginator.get_paginated_response(EndpointOut(page, many=True).data)

    @extend_schema(request=EndpointCreateIn, responses={201: EndpointOut}, operation_id="endpoints_create")
    def post(self, request):
        data = EndpointCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        project = project_get(user=request.user, slug=fields.pop("project"), min_role=Role.ML_ENGINEER)
        endpoint, token = services.endpoint_create(project=project, actor=request.user, **fields)
        return Response({**EndpointOut(endpoint).data, "token": token}, status=status.HTTP_201_CREATED)


class EndpointDetailApi(APIView):
    @extend_schema(responses=EndpointOut, operation_id="endpoints_retrieve")
    def get(self, request, slug: str):
        return Response(EndpointOut(selectors.endpoint_get(user=request.user, slug=slug)).data)

    @extend_schema(request=EndpointUpdateIn, responses=EndpointOut, operation_id="endpoints_update")
    def patch(self, request, slug: str):
        endpoint = selectors.endpoint_get(user=request.user, slug=slug, min_role=Role.ML_ENGINEER)
        data = EndpointUpdateIn(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.endpoint_update(endpoint=endpoint, actor=request.user, **data.validated_data)
        return Response(EndpointOut(endpoint).data)


class EndpointTokenApi(APIView):
    @extend_schema(request=None, responses={201: dict}, operation_id="endpoints_token_rotate")
    def post(self, request, slug: str):
        endpoint = selectors.endpoint_get(user=request.user, slug=slug, min_role=Role.ML_ENGINEER)
        token = services.endpoint_token_rotate(endpoint=endpoint, actor=request.user)
        return Response({"token": token}, status=status.HTTP_201_CREATED)


class RevisionListApi(APIView):
    @extend_schema(responses=RevisionOut(many=True), operation_id="endpoints_revisions_list")
    def get(self, request, slug: str):
        endpoint = selectors.endpoint_get(user=request.user, slug=slug)
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.revision_list(endpoint=endpoint), request, view=self)
        return paginator.get_paginated_response(RevisionOut(page, many=True).data)

    @extend_schema(request=DeployIn, responses={201: RevisionOut}, operation_id="endpoints_deploy")
    def post(self, request, slug: str):
        endpoint = selectors.endpoint_get(user=request.user, slug=slug, min_role=Role.ML_ENGINEER)
        data = DeployIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        if fields["trusted"] and not role_at_least(endpoint.project.my_role, Role.OWNER):
            raise PermissionDenied("Only a project owner may mark a pickle-based version trusted.")
        revision = services.revision_deploy(
            endpoint=endpoint, actor=request.user, model_name=fields.pop("model"), **fields
        )
        return Response(RevisionOut(revision).data, status=status.HTTP_201_CREATED)


class TrafficApi(APIView):
    @extend_schema(request=TrafficIn, responses=EndpointOut, operation_id="endpoints_traffic")
    def post(self, request, slug: str):
        endpoint = selectors.endpoint_get(user=request.user, slug=slug, min_role=Role.ML_ENGINEER)
        data = TrafficIn(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.traffic_set(endpoint=endpoint, actor=request.user, **data.validated_data)
        return Response(EndpointOut(selectors.endpoint_get(user=request.user, slug=slug)).data)


class PromoteApi(APIView):
    @extend_schema(request=ReasonIn, responses=EndpointOut, operation_id="endpoints_promote")
    def post(self, request, slug: str):
        endpoint = selectors.endpoint_get(user=request.user, slug=slug, min_role=Role.ML_ENGINEER)
        data = ReasonIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.challenger_promote(endpoint=endpoint, actor=request.user, reason=data.validated_data["reason"])
        return Response(EndpointOut(selectors.endpoint_get(user=request.user, slug=slug)).data)


class RollbackApi(APIView):
    @extend_schema(request=ReasonIn, responses=EndpointOut, operation_id="endpoints_rollback")
    def post(self, request, slug: str):
        endpoint = selectors.endpoint_get(user=request.user, slug=slug, min_role=Role.ML_ENGINEER)
        data = ReasonIn(data=request.data)
        data.is_valid(raise_exception=True)
        rollback = (
            services.challenger_rollback
            if data.validated_data["target"] == "challenger"
            else services.champion_rollback
        )
        rollback(endpoint=endpoint, actor=request.user, reason=data.validated_data["reason"])
        return Response(EndpointOut(selectors.endpoint_get(user=request.user, slug=slug)).data)


class MetricsApi(APIView):
    @extend_schema(responses=dict, operation_id="endpoints_metrics")
    def get(self, request, slug: str):
        endpoint = selectors.endpoint_get(user=request.user, slug=slug)
        return Response(metrics_snapshot(endpoint))


class EventListApi(APIView):
    @extend_schema(responses=EventOut(many=True), operation_id="endpoints_events")
    def get(self, request, slug: str):
        endpoint = selectors.endpoint_get(user=request.user, slug=slug)
        return Response(EventOut(selectors.event_list(endpoint=endpoint), many=True).data)


def metrics_snapshot(endpoint, *, minutes: int = 30) -> dict:
    """What the dashboard and the metrics API show: per-minute series, live windows of
    champion and challenger, drift per feature, KPI, log health."""
    since = timezone.now() - timedelta(minutes=5)
    metric = endpoint.policy.get("kpi_metric", "accuracy")
    min_rows = int(endpoint.policy.get("min_reference_rows", 100))
    revisions = {}
    for role, revision in (("champion", endpoint.champion), ("challenger", endpoint.challenger)):
        if revision is None:
            continue
        revisions[role] = {
            "id": revision.pk,
            "number": revision.number,
            "status": revision.status,
            "model": f"{revision.model_name} v{revision.model_version_number}",
            "window": selectors.window_stats(endpoint=endpoint, revision_id=revision.pk, since=since),
            "kpi": selectors.live_kpi(
                endpoint=endpoint, revision_id=revision.pk, metric=metric, since=revision.created_at
            ),
            "drift": selectors.drift(
                revision=revision, psi_threshold=endpoint.policy.get("max_psi", 0.2), min_rows=min_rows
            ),
            "drift_series": selectors.drift_series(
                revision=revision, since=timezone.now() - timedelta(minutes=minutes), min_rows=min_rows
            ),
            "reference": selectors.drift_reference(revision=revision, min_rows=min_rows),
        }
    return {
        "endpoint": endpoint.slug,
        "series": selectors.minute_series(endpoint=endpoint, minutes=minutes),
        "revisions": revisions,
        "mode": endpoint.challenger_mode,
        "traffic": endpoint.traffic,
        "kpi_target": _kpi_target(endpoint),
        "log": selectors.log_health(endpoint=endpoint),
    }


def _kpi_target(endpoint) -> dict | None:
    from deployments import links

    for kpi, metric in links.kpis_fed_by(project_id=endpoint.project_id, endpoint_slug=endpoint.slug):
        return {"name": kpi.name, "metric": metric, "target": kpi.target, "current": kpi.current_value}
    return None
