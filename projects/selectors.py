"""Reads of projects, filtered by what the asking user may see.

A user sees a project when they are a member or a platform admin. A request made with
a project-scoped API token sees that project only (`user.api_token`, set by
mlplatform.authentication)."""

from django.db.models import Count, OuterRef, QuerySet, Subquery

from mlplatform.errors import NotFound, PermissionDenied
from mlplatform.models import User
from mlplatform.roles import Role, role_at_least
from projects.models import (
    CriterionKind,
    Gate,
    GateCriterion,
    GateDecision,
    Kpi,
    KpiValue,
    Lifecycle,
    Membership,
    Project,
    ProjectStage,
    Stage,
)


def token_scope(user: User) -> int | None:
    token = getattr(user, "api_token", None)
    return token.project_id if token is not None else None


def unscoped_check(*, user: User, action: str) -> None:
    """PermissionDenied when `user` acts through a project-scoped token: such a token
    works inside its project only, so it cannot make anything that lives outside one
    (a project, an organisation-level board)."""
    if token_scope(user) is not None:
        raise PermissionDenied(f"A project-scoped token works inside its project only: it cannot {action}.")


def project_list(*, user: User) -> QuerySet[Project]:
    """Projects the user may see, each annotated with `member_count` and `my_role`."""
    my_role = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    qs = Project.objects.select_related("owner").annotate(member_count=Count("memberships"), my_role=Subquery(my_role))
    if not user.is_admin:
        qs = qs.filter(memberships__user=user)
    scope = token_scope(user)
    if scope is not None:
        qs = qs.filter(pk=scope)
    return qs.order_by("name")


def project_role(*, user: User, project: Project) -> str | None:
    """The user's effective role; platform admins act as owners everywhere."""
    scope = token_scope(user)
    if scope is not None and scope != project.pk:
        return None
    if user.is_admin:
        return Role.OWNER
    return Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()


def project_get(*, user: User, slug: str, min_role: str = Role.VIEWER) -> Project:
    """The project, if the user may see it; NotFound otherwise, never revealing that it
    exists. PermissionDenied if they see it but lack `min_role`."""
    project = Project.objects.select_related("owner").filter(slug=slug).first()
    return project_check(user=user, project=project, min_role=min_role)


def project_check(*, user: User, project: Project | None, min_role: str = Role.VIEWER) -> Project:
    role = project_role(user=user, project=project) if project is not None else None
    if role is None:
        raise NotFound("Project not found.")
    if not role_at_least(role, min_role):
        raise PermissionDenied(f"This needs the {Role(min_role).label} role in project '{project.slug}'.")
    project.my_role = role
    return project


def project_visible_ids(*, user: User) -> QuerySet:
    return project_list(user=user).values("pk")


def membership_list(*, project: Project) -> QuerySet[Membership]:
    return Membership.objects.filter(project=project).select_related("user").order_by("user__username")


# --- KPIs, lifecycle, gates -------------------------------------------------------------


def kpi_list(*, project: Project) -> QuerySet[Kpi]:
    return Kpi.objects.filter(project=project).order_by("is_draft", "name")


def kpis_fed_from(*, project_id: int, source_type: str) -> QuerySet[Kpi]:
    """The project's KPIs fed automatically from one kind of source (e.g. an endpoint)."""
    return Kpi.objects.filter(project_id=project_id, source_type=source_type)


def kpi_get(*, user: User, kpi_id: int, min_role: str = Role.VIEWER) -> Kpi:
    kpi = Kpi.objects.select_related("project", "project__owner").filter(pk=kpi_id).first()
    if kpi is None:
        raise NotFound("KPI not found.")
    project_check(user=user, project=kpi.project, min_role=min_role)
    return kpi


def kpi_histories(*, kpis: list[Kpi], limit: int = 500) -> dict[int, list[KpiValue]]:
    """Recent value history of several KPIs in one query, oldest first."""
    history: dict[int, list[KpiValue]] = {k.pk: [] for k in kpis}
    for point in KpiValue.objects.filter(kpi__in=kpis).order_by("kpi_id", "-recorded_at")[: limit * max(len(kpis), 1)]:
        if len(history[point.kpi_id]) < limit:
            history[point.kpi_id].append(point)
    return {k: list(reversed(v)) for k, v in history.items()}


def criterion_met(criterion: GateCriterion) -> bool:
    if criterion.kind == CriterionKind.CHECK:
        return criterion.done
    kpi = criterion.kpi
    bar = kpi.threshold if kpi.threshold is not None else kpi.target
    return bool(kpi.meets(kpi.current_value, bar))


def gate_list(*, project: Project) -> QuerySet[Gate]:
    return (
        Gate.objects.filter(project=project)
        .select_related("to_stage", "review", "decision", "decision__decided_by", "decision__from_stage")
        .prefetch_related("criteria__kpi", "approvers", "evidence", "review__votes__voter")
        .order_by("to_stage__order", "created_at")
    )


def gate_get(*, user: User, gate_id: int, min_role: str = Role.VIEWER) -> Gate:
    gate = (
        Gate.objects.select_related("project", "project__owner", "to_stage", "review", "decision")
        .prefetch_related("criteria__kpi", "approvers", "evidence", "review__votes__voter")
        .filter(pk=gate_id)
        .first()
    )
    if gate is None:
        raise NotFound("Gate not found.")
    project_check(user=user, project=gate.project, min_role=min_role)
    return gate


def project_stage_state(*, project: Project) -> ProjectStage | None:
    return ProjectStage.objects.select_related("lifecycle", "stage").filter(project=project).first()


def lifecycle_stages(*, lifecycle: Lifecycle) -> list[Stage]:
    return list(Stage.objects.filter(lifecycle=lifecycle).order_by("order"))


def project_gate_passed(*, project: Project, stage: str) -> bool:
    """Whether the project reached or passed `stage` through a Go decision (or `stage`
    is where every project starts). Deployments ask this about "Production"."""
    state = project_stage_state(project=project)
    if state is None:
        return False
    named = Stage.objects.filter(lifecycle_id=state.lifecycle_id, name__iexact=stage).first()
    if named is None:
        return False
    if state.stage.order < named.order:
        return False
    first_order = (
        Stage.objects.filter(lifecycle_id=state.lifecycle_id).order_by("order").values_list("order", flat=True)
    )
    if named.order == first_order.first():
        return True
    return GateDecision.objects.filter(
        gate__project=project, verdict="go", to_stage__lifecycle_id=state.lifecycle_id, to_stage__order__gte=named.order
    ).exists()
