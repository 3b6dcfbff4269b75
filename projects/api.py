"""REST API: /api/v1/projects/ and their members."""

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from mlplatform.api.pagination import Pagination
from mlplatform.errors import NotFound
from mlplatform.roles import Role
from projects import selectors, services
from projects.models import CriterionKind, KpiDirection, KpiSource, Verdict


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


# --- KPIs ------------------------------------------------------------------------------


class KpiOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    unit = serializers.CharField()
    direction = serializers.ChoiceField(choices=KpiDirection.choices)
    baseline = serializers.FloatField(allow_null=True)
    target = serializers.FloatField(allow_null=True)
    threshold = serializers.FloatField(allow_null=True)
    source_type = serializers.ChoiceField(choices=KpiSource.choices)
    source_key = serializers.CharField()
    is_draft = serializers.BooleanField()
    current_value = serializers.FloatField(allow_null=True)
    current_at = serializers.DateTimeField(allow_null=True)
    status = serializers.CharField(help_text="on_target | acceptable | below | no_target | no_data")
    progress = serializers.FloatField(allow_null=True, help_text="0..1 from baseline to target.")


class KpiIn(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    unit = serializers.CharField(required=False, allow_blank=True, max_length=30)
    direction = serializers.ChoiceField(choices=KpiDirection.choices, required=False)
    baseline = serializers.FloatField(required=False, allow_null=True)
    target = serializers.FloatField(required=False, allow_null=True)
    threshold = serializers.FloatField(required=False, allow_null=True)
    source_type = serializers.ChoiceField(choices=KpiSource.choices, required=False)
    source_key = serializers.CharField(required=False, allow_blank=True, max_length=200)
    is_draft = serializers.BooleanField(required=False)


class KpiUpdateIn(KpiIn):
    name = serializers.CharField(max_length=120, required=False)


class KpiValueOut(serializers.Serializer):
    value = serializers.FloatField()
    source = serializers.CharField()
    recorded_at = serializers.DateTimeField()


class KpiValueIn(serializers.Serializer):
    value = serializers.FloatField(help_text="Refused when implausible: see kpi_value_check (README, KPIs).")
    recorded_at = serializers.DateTimeField(required=False, help_text="When it was measured; not in the future.")
    date = serializers.DateField(required=False, help_text="Backfill a past day (YYYY-MM-DD); not with recorded_at.")

    def validate(self, attrs):
        if "date" in attrs and "recorded_at" in attrs:
            raise serializers.ValidationError("Give either recorded_at or date, not both.")
        return attrs


class KpiListApi(APIView):
    @extend_schema(responses=KpiOut(many=True), operation_id="projects_kpis_list")
    def get(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug)
        return Response(KpiOut(selectors.kpi_list(project=project), many=True).data)

    @extend_schema(request=KpiIn, responses={201: KpiOut}, operation_id="projects_kpis_create")
    def post(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug, min_role=Role.DATA_SCIENTIST)
        data = KpiIn(data=request.data)
        data.is_valid(raise_exception=True)
        kpi = services.kpi_create(project=project, actor=request.user, **data.validated_data)
        return Response(KpiOut(kpi).data, status=status.HTTP_201_CREATED)


class KpiDetailApi(APIView):
    @extend_schema(responses=KpiOut, operation_id="kpis_retrieve")
    def get(self, request, kpi_id: int):
        return Response(KpiOut(selectors.kpi_get(user=request.user, kpi_id=kpi_id)).data)

    @extend_schema(request=KpiUpdateIn, responses=KpiOut, operation_id="kpis_update")
    def patch(self, request, kpi_id: int):
        kpi = selectors.kpi_get(user=request.user, kpi_id=kpi_id, min_role=Role.DATA_SCIENTIST)
        data = KpiUpdateIn(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(KpiOut(services.kpi_update(kpi=kpi, actor=request.user, **data.validated_data)).data)

    @extend_schema(responses={204: None}, operation_id="kpis_delete")
    def delete(self, request, kpi_id: int):
        kpi = selectors.kpi_get(user=request.user, kpi_id=kpi_id, min_role=Role.DATA_SCIENTIST)
        services.kpi_delete(kpi=kpi, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class KpiValueListApi(APIView):
    @extend_schema(responses=KpiValueOut(many=True), operation_id="kpis_values_list")
    def get(self, request, kpi_id: int):
        kpi = selectors.kpi_get(user=request.user, kpi_id=kpi_id)
        return Response(KpiValueOut(selectors.kpi_histories(kpis=[kpi])[kpi.pk], many=True).data)

    @extend_schema(request=KpiValueIn, responses={201: KpiValueOut}, operation_id="kpis_values_record")
    def post(self, request, kpi_id: int):
        kpi = selectors.kpi_get(user=request.user, kpi_id=kpi_id, min_role=Role.DATA_SCIENTIST)
        data = KpiValueIn(data=request.data)
        data.is_valid(raise_exception=True)
        recorded_at = data.validated_data.get("recorded_at")
        if "date" in data.validated_data:
            recorded_at = services.kpi_backfill_time(day=data.validated_data["date"])
        point = services.kpi_record_value(
            kpi=kpi,
            value=data.validated_data["value"],
            source=KpiSource.MANUAL,
            recorded_at=recorded_at,
            actor=request.user,
        )
        return Response(KpiValueOut(point).data, status=status.HTTP_201_CREATED)


# --- Lifecycle and gates ------------------------------------------------------------------


class StageOut(serializers.Serializer):
    lifecycle = serializers.CharField()
    stage = serializers.CharField()
    stages = serializers.ListField(child=serializers.CharField())


class CriterionOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    label = serializers.CharField()
    kpi = serializers.IntegerField(source="kpi_id", allow_null=True)
    done = serializers.BooleanField()
    met = serializers.SerializerMethodField()

    def get_met(self, obj) -> bool:
        return selectors.criterion_met(obj)


class GateVoteOut(serializers.Serializer):
    voter = serializers.CharField(source="voter.username")
    verdict = serializers.CharField()
    comment = serializers.CharField()
    voted_at = serializers.DateTimeField()


class DecisionOut(serializers.Serializer):
    verdict = serializers.CharField()
    rationale = serializers.CharField()
    decided_by = serializers.CharField(source="decided_by.username")
    decided_at = serializers.DateTimeField()
    from_stage = serializers.CharField(source="from_stage.name")
    to_stage = serializers.CharField(source="to_stage.name")
    tally = serializers.DictField(child=serializers.IntegerField())


class EvidenceOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    ref_id = serializers.CharField()
    label = serializers.CharField()
    added_at = serializers.DateTimeField()


class GateOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    to_stage = serializers.CharField(source="to_stage.name")
    status = serializers.CharField()
    quorum = serializers.IntegerField()
    approver_roles = serializers.ListField(child=serializers.CharField())
    approvers = serializers.SerializerMethodField()
    criteria = CriterionOut(many=True)
    evidence = EvidenceOut(many=True)
    votes = serializers.SerializerMethodField()
    snapshot = serializers.SerializerMethodField()
    decision = serializers.SerializerMethodField()

    def get_approvers(self, obj) -> list[str]:
        return [u.username for u in obj.approvers.all()]

    def get_votes(self, obj) -> list[dict]:
        review = getattr(obj, "review", None) if hasattr(obj, "review") else None
        return GateVoteOut(review.votes.all(), many=True).data if review else []

    def get_snapshot(self, obj) -> dict | None:
        return obj.review.snapshot if hasattr(obj, "review") else None

    def get_decision(self, obj) -> dict | None:
        return DecisionOut(obj.decision).data if hasattr(obj, "decision") else None


class GateIn(serializers.Serializer):
    to_stage = serializers.CharField(max_length=80)
    name = serializers.CharField(max_length=120, required=False, allow_blank=True)
    quorum = serializers.IntegerField(min_value=1, max_value=50, default=1)
    approver_roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.choices), required=False)
    approver_usernames = serializers.ListField(child=serializers.CharField(max_length=150), required=False)


class CriterionIn(serializers.Serializer):
    kind = serializers.ChoiceField(choices=CriterionKind.choices)
    label = serializers.CharField(max_length=200, required=False, allow_blank=True)
    kpi = serializers.IntegerField(required=False)


class CriterionPatchIn(serializers.Serializer):
    done = serializers.BooleanField(required=False, help_text="Tick a checklist item (data scientist).")
    label = serializers.CharField(max_length=200, required=False, help_text="Reword the criterion (owner).")

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Give done, label or both.")
        return attrs


class EvidencePatchIn(serializers.Serializer):
    label = serializers.CharField(max_length=200, allow_blank=True)


class EvidenceIn(serializers.Serializer):
    kind = serializers.CharField(max_length=40, help_text="run, model_version, dataset_version, ...")
    ref_id = serializers.CharField(max_length=64)
    label = serializers.CharField(max_length=200, required=False, allow_blank=True)
    data = serializers.DictField(required=False)


class GateVoteIn(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class DecisionIn(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    rationale = serializers.CharField(required=False, allow_blank=True, max_length=10000)


class ProjectStageApi(APIView):
    @extend_schema(responses=StageOut, operation_id="projects_stage")
    def get(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug)
        state = services.project_lifecycle_state(project=project)
        stages = [s.name for s in selectors.lifecycle_stages(lifecycle=state.lifecycle)]
        return Response({"lifecycle": state.lifecycle.name, "stage": state.stage.name, "stages": stages})


class GateListApi(APIView):
    @extend_schema(responses=GateOut(many=True), operation_id="projects_gates_list")
    def get(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug)
        return Response(GateOut(selectors.gate_list(project=project), many=True).data)

    @extend_schema(request=GateIn, responses={201: GateOut}, operation_id="projects_gates_create")
    def post(self, request, slug: str):
        project = selectors.project_get(user=request.user, slug=slug, min_role=Role.OWNER)
        data = GateIn(data=request.data)
        data.is_valid(raise_exception=True)
        gate = services.gate_create(project=project, actor=request.user, **data.validated_data)
        return Response(GateOut(gate).data, status=status.HTTP_201_CREATED)


class GateDetailApi(APIView):
    @extend_schema(responses=GateOut, operation_id="gates_retrieve")
    def get(self, request, gate_id: int):
        return Response(GateOut(selectors.gate_get(user=request.user, gate_id=gate_id)).data)


class GateCriterionApi(APIView):
    @extend_schema(request=CriterionIn, responses={201: CriterionOut}, operation_id="gates_criteria_add")
    def post(self, request, gate_id: int):
        gate = selectors.gate_get(user=request.user, gate_id=gate_id, min_role=Role.OWNER)
        data = CriterionIn(data=request.data)
        data.is_valid(raise_exception=True)
        kpi_id = data.validated_data.pop("kpi", None)
        kpi = selectors.kpi_get(user=request.user, kpi_id=kpi_id) if kpi_id else None
        criterion = services.gate_criterion_add(gate=gate, actor=request.user, kpi=kpi, **data.validated_data)
        return Response(CriterionOut(criterion).data, status=status.HTTP_201_CREATED)


class GateCriterionDetailApi(APIView):
    def _criterion(self, request, gate_id: int, criterion_id: int, min_role: str):
        gate = selectors.gate_get(user=request.user, gate_id=gate_id, min_role=min_role)
        criterion = gate.criteria.filter(pk=criterion_id).select_related("gate").first()
        if criterion is None:
            raise NotFound("Criterion not found.")
        return criterion

    @extend_schema(request=CriterionPatchIn, responses=CriterionOut, operation_id="gates_criteria_update")
    def patch(self, request, gate_id: int, criterion_id: int):
        data = CriterionPatchIn(data=request.data)
        data.is_valid(raise_exception=True)
        # Ticking is a data scientist's; rewording what the gate asks is the owner's, as adding is.
        min_role = Role.OWNER if "label" in data.validated_data else Role.DATA_SCIENTIST
        criterion = self._criterion(request, gate_id, criterion_id, min_role)
        with transaction.atomic():
            if "label" in data.validated_data:
                criterion = services.gate_criterion_update(
                    criterion=criterion, actor=request.user, label=data.validated_data["label"]
                )
            if "done" in data.validated_data:
                criterion = services.gate_criterion_set_done(
                    criterion=criterion, actor=request.user, done=data.validated_data["done"]
                )
        return Response(CriterionOut(criterion).data)

    @extend_schema(responses={204: None}, operation_id="gates_criteria_remove")
    def delete(self, request, gate_id: int, criterion_id: int):
        criterion = self._criterion(request, gate_id, criterion_id, Role.OWNER)
        services.gate_criterion_remove(criterion=criterion, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class GateEvidenceApi(APIView):
    @extend_schema(request=EvidenceIn, responses={201: EvidenceOut}, operation_id="gates_evidence_add")
    def post(self, request, gate_id: int):
        gate = selectors.gate_get(user=request.user, gate_id=gate_id, min_role=Role.DATA_SCIENTIST)
        data = EvidenceIn(data=request.data)
        data.is_valid(raise_exception=True)
        evidence = services.gate_evidence_add(gate=gate, actor=request.user, **data.validated_data)
        return Response(EvidenceOut(evidence).data, status=status.HTTP_201_CREATED)


class GateEvidenceDetailApi(APIView):
    def _evidence(self, request, gate_id: int, evidence_id: int):
        gate = selectors.gate_get(user=request.user, gate_id=gate_id, min_role=Role.DATA_SCIENTIST)
        evidence = gate.evidence.filter(pk=evidence_id).select_related("gate").first()
        if evidence is None:
            raise NotFound("Evidence not found.")
        return evidence

    @extend_schema(request=EvidencePatchIn, responses=EvidenceOut, operation_id="gates_evidence_update")
    def patch(self, request, gate_id: int, evidence_id: int):
        evidence = self._evidence(request, gate_id, evidence_id)
        data = EvidencePatchIn(data=request.data)
        data.is_valid(raise_exception=True)
        evidence = services.gate_evidence_update(evidence=evidence, actor=request.user, **data.validated_data)
        return Response(EvidenceOut(evidence).data)

    @extend_schema(responses={204: None}, operation_id="gates_evidence_remove")
    def delete(self, request, gate_id: int, evidence_id: int):
        services.gate_evidence_remove(evidence=self._evidence(request, gate_id, evidence_id), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class GateReviewApi(APIView):
    @extend_schema(request=None, responses=GateOut, operation_id="gates_review_open")
    def post(self, request, gate_id: int):
        gate = selectors.gate_get(user=request.user, gate_id=gate_id, min_role=Role.DATA_SCIENTIST)
        services.gate_review_open(gate=gate, actor=request.user)
        return Response(GateOut(selectors.gate_get(user=request.user, gate_id=gate_id)).data)


class GateVoteApi(APIView):
    @extend_schema(request=GateVoteIn, responses=GateVoteOut, operation_id="gates_vote")
    def post(self, request, gate_id: int):
        gate = selectors.gate_get(user=request.user, gate_id=gate_id)
        data = GateVoteIn(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(GateVoteOut(services.gate_vote(gate=gate, voter=request.user, **data.validated_data)).data)


class GateDecisionApi(APIView):
    @extend_schema(request=DecisionIn, responses={201: DecisionOut}, operation_id="gates_decide")
    def post(self, request, gate_id: int):
        gate = selectors.gate_get(user=request.user, gate_id=gate_id)
        data = DecisionIn(data=request.data)
        data.is_valid(raise_exception=True)
        decision = services.gate_decide(gate=gate, actor=request.user, **data.validated_data)
        return Response(DecisionOut(decision).data, status=status.HTTP_201_CREATED)
