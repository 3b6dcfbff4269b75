"""Lifecycles, decision gates, their reviews, votes and decisions.

Gate votes and decisions check the actor themselves (who may vote depends on the gate,
not only on a role); the other writes expect the caller to have checked the role."""

from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.db import IntegrityError, transaction
from django.utils import timezone

from mlplatform import events
from mlplatform.audit import audit_record
from mlplatform.errors import AlreadyExists, Conflict, InvalidState, NotFound, PermissionDenied, ValidationFailed
from mlplatform.models import User
from mlplatform.roles import Role
from projects.models import (
    DEFAULT_LIFECYCLE,
    DEFAULT_STAGES,
    CriterionKind,
    Gate,
    GateCriterion,
    GateDecision,
    GateEvidence,
    GateReview,
    GateStatus,
    GateVote,
    Kpi,
    Lifecycle,
    Project,
    ProjectStage,
    Stage,
    Verdict,
)
from projects.selectors import criterion_met, project_role

# How to describe a piece of evidence at review time: (ref_id, project_id) -> a JSON
# snapshot, or None when it does not exist in that project. Runs and model versions
# are looked up through django.apps, so this app imports neither sibling; other apps
# may register more kinds.
EVIDENCE_RESOLVERS: dict[str, Callable[[str, int], dict[str, Any] | None]] = {}


def _run_snapshot(ref_id: str, project_id: int) -> dict[str, Any] | None:
    if not apps.is_installed("experiments"):
        return None
    run_model = apps.get_model("experiments", "Run")
    run = run_model.objects.filter(pk=ref_id, experiment__project_id=project_id).first()
    if run is None:
        return None
    metrics = dict(run.latest_metrics.values_list("key", "value"))
    return {"name": run.name, "status": run.status, "experiment": run.experiment_id, "metrics": metrics}


def _model_version_snapshot(ref_id: str, project_id: int) -> dict[str, Any] | None:
    """`ref_id` is "<registered model name>/<version>"."""
    if not apps.is_installed("registry") or "/" not in ref_id:
        return None
    name, _, number = ref_id.rpartition("/")
    version_model = apps.get_model("registry", "ModelVersion")
    version = (
        version_model.objects.filter(
            registered_model__project_id=project_id, registered_model__name=name, version=number
        ).first()
        if number.isdigit()
        else None
    )
    if version is None:
        return None
    return {
        "model": name,
        "version": version.version,
        "status": version.status,
        "stage": version.current_stage,
        "run": version.run_id,
        "source": version.source,
    }


DEFAULT_RESOLVERS = {"run": _run_snapshot, "model_version": _model_version_snapshot}


def lifecycle_default() -> Lifecycle:
    lifecycle, created = Lifecycle.objects.get_or_create(
        name=DEFAULT_LIFECYCLE, defaults={"description": " → ".join(DEFAULT_STAGES)}
    )
    if created or not lifecycle.stages.exists():
        Stage.objects.bulk_create([Stage(lifecycle=lifecycle, name=n, order=i) for i, n in enumerate(DEFAULT_STAGES)])
    return lifecycle


@transaction.atomic
def project_lifecycle_state(*, project: Project, lifecycle: Lifecycle | None = None) -> ProjectStage:
    """The project's lifecycle state, made on first use (projects older than gates)."""
    state = ProjectStage.objects.select_related("lifecycle", "stage").filter(project=project).first()
    if state is not None:
        return state
    lifecycle = lifecycle or lifecycle_default()
    first = lifecycle.stages.order_by("order").first()
    if first is None:
        raise ValidationFailed(f"Lifecycle '{lifecycle.name}' has no stages.")
    state, _ = ProjectStage.objects.get_or_create(project=project, defaults={"lifecycle": lifecycle, "stage": first})
    return state


def _stage_named(state: ProjectStage, name: str) -> Stage:
    stage = Stage.objects.filter(lifecycle=state.lifecycle, name__iexact=name.strip()).first()
    if stage is None:
        names = ", ".join(state.lifecycle.stages.values_list("name", flat=True))
        raise ValidationFailed(f"'{name}' is not a stage of this project's lifecycle ({names}).")
    return stage


@transaction.atomic
def gate_create(
    *,
    project: Project,
    actor: User,
    to_stage: str,
    name: str = "",
    quorum: int = 1,
    approver_roles: list[str] | None = None,
    approver_usernames: list[str] | None = None,
) -> Gate:
    state = project_lifecycle_state(project=project)
    stage = _stage_named(state, to_stage)
    if stage.order <= state.stage.order:
        raise InvalidState(f"The project is already at or past {stage.name}.")
    if Gate.objects.filter(project=project, to_stage=stage).exclude(status=GateStatus.DECIDED).exists():
        raise AlreadyExists(f"There is already an open gate into {stage.name}.")
    roles = approver_roles if approver_roles is not None else [Role.OWNER]
    if any(r not in Role.values for r in roles):
        raise ValidationFailed(f"Approver roles are among: {', '.join(Role.values)}.")
    users = list(User.objects.filter(username__in=approver_usernames or [], memberships__project=project))
    if len(users) != len(set(approver_usernames or [])):
        raise ValidationFailed("Named approvers must be members of the project.")
    if quorum < 1:
        raise ValidationFailed("The quorum is at least 1.")
    gate = Gate.objects.create(
        project=project,
        to_stage=stage,
        name=(name or f"Gate to {stage.name}")[:120],
        quorum=quorum,
        approver_roles=list(roles),
    )
    gate.approvers.set(users)
    audit_record(
        actor=actor,
        action="gate.create",
        target=gate,
        project_id=project.pk,
        after={"to_stage": stage.name, "quorum": quorum, "roles": list(roles), "users": [u.username for u in users]},
    )
    return gate


@transaction.atomic
def gate_criterion_add(*, gate: Gate, actor: User, kind: str, label: str = "", kpi: Kpi | None = None) -> GateCriterion:
    _not_decided(gate)
    if kind not in CriterionKind.values:
        raise ValidationFailed("A criterion is a 'kpi' threshold or a 'check' item.")
    if kind == CriterionKind.KPI:
        if kpi is None or kpi.project_id != gate.project_id:
            raise ValidationFailed("A KPI criterion needs a KPI of this project.")
        if kpi.threshold is None and kpi.target is None:
            raise ValidationFailed(f"KPI '{kpi.name}' has no acceptance threshold or target to check.")
        label = label or f"{kpi.name} meets its acceptance threshold"
    label = label.strip()[:200]
    if not label:
        raise ValidationFailed("A checklist item needs a text.")
    criterion = GateCriterion.objects.create(
        gate=gate,
        kind=kind,
        label=label,
        kpi=kpi if kind == CriterionKind.KPI else None,
        position=gate.criteria.count(),
    )
    audit_record(
        actor=actor,
        action="gate.criterion_add",
        target=gate,
        project_id=gate.project_id,
        after={"kind": kind, "label": label},
    )
    return criterion


@transaction.atomic
def gate_criterion_set_done(*, criterion: GateCriterion, actor: User, done: bool) -> GateCriterion:
    _not_decided(criterion.gate)
    if criterion.kind != CriterionKind.CHECK:
        raise ValidationFailed("KPI criteria are evaluated from the KPI's values, not ticked.")
    before = {"done": criterion.done}
    criterion.done = done
    criterion.save(update_fields=["done"])
    audit_record(
        actor=actor,
        action="gate.criterion_check",
        target=criterion.gate,
        project_id=criterion.gate.project_id,
        before=before,
        after={"done": done, "label": criterion.label},
    )
    return criterion


@transaction.atomic
def gate_criterion_update(*, criterion: GateCriterion, actor: User, label: str) -> GateCriterion:
    """Reword a criterion (a KPI criterion keeps its KPI: to check another, remove it
    and add one). An undecided gate only; a decided one is history."""
    _not_decided(criterion.gate)
    label = (label or "").strip()[:200]
    if not label:
        raise ValidationFailed("A criterion needs a text.")
    before = {"label": criterion.label}
    criterion.label = label
    criterion.save(update_fields=["label"])
    audit_record(
        actor=actor,
        action="gate.criterion_update",
        target=criterion.gate,
        project_id=criterion.gate.project_id,
        before=before,
        after={"label": label},
    )
    return criterion


@transaction.atomic
def gate_criterion_remove(*, criterion: GateCriterion, actor: User) -> None:
    gate = criterion.gate
    _not_decided(gate)
    before = {"kind": criterion.kind, "label": criterion.label, "kpi": criterion.kpi_id, "done": criterion.done}
    criterion.delete()
    audit_record(actor=actor, action="gate.criterion_remove", target=gate, project_id=gate.project_id, before=before)


@transaction.atomic
def gate_evidence_update(*, evidence: GateEvidence, actor: User, label: str) -> GateEvidence:
    """Relabel a piece of evidence; what it points at stays (remove and link anew)."""
    _not_decided(evidence.gate)
    before = {"label": evidence.label}
    evidence.label = (label or "").strip()[:200]
    evidence.save(update_fields=["label"])
    audit_record(
        actor=actor,
        action="gate.evidence_update",
        target=evidence.gate,
        project_id=evidence.gate.project_id,
        before=before,
        after={"kind": evidence.kind, "ref_id": evidence.ref_id, "label": evidence.label},
    )
    return evidence


@transaction.atomic
def gate_evidence_remove(*, evidence: GateEvidence, actor: User) -> None:
    """Unlink evidence from an undecided gate. An open review keeps its snapshot (votes
    rest on it); refreshing the review drops the removed evidence."""
    gate = evidence.gate
    _not_decided(gate)
    before = {"kind": evidence.kind, "ref_id": evidence.ref_id, "label": evidence.label}
    evidence.delete()
    audit_record(actor=actor, action="gate.evidence_remove", target=gate, project_id=gate.project_id, before=before)


@transaction.atomic
def gate_evidence_add(
    *, gate: Gate, actor: User, kind: str, ref_id: str, label: str = "", data: dict | None = None
) -> GateEvidence:
    _not_decided(gate)
    kind, ref_id = kind.strip()[:40], str(ref_id).strip()[:64]
    if not kind or not ref_id:
        raise ValidationFailed("Evidence needs a kind (run, model_version, ...) and an id.")
    _check_evidence_exists(kind, ref_id, gate.project_id)
    try:
        with transaction.atomic():
            evidence = GateEvidence.objects.create(
                gate=gate, kind=kind, ref_id=ref_id, label=label[:200], data=data or {}, added_by=actor
            )
    except IntegrityError as exc:
        raise AlreadyExists(f"That {kind} is already linked to this gate.") from exc
    audit_record(
        actor=actor,
        action="gate.evidence_add",
        target=gate,
        project_id=gate.project_id,
        after={"kind": kind, "ref_id": ref_id},
    )
    return evidence


def _check_evidence_exists(kind: str, ref_id: str, project_id: int) -> None:
    """A kind this platform knows (a run, a model version) must name one of this
    project's: a made-up or mistyped id is refused, not linked. Kinds without a
    resolver are other apps' and linked as given."""
    resolver = EVIDENCE_RESOLVERS.get(kind) or DEFAULT_RESOLVERS.get(kind)
    if resolver is not None and resolver(ref_id, project_id) is None:
        hint = " (a model version is <model name>/<version>)" if kind == "model_version" else ""
        raise ValidationFailed(f"No {kind.replace('_', ' ')} '{ref_id}' in this project{hint}.")


def _not_decided(gate: Gate) -> None:
    if gate.status == GateStatus.DECIDED:
        raise InvalidState(f"'{gate.name}' is already decided; its record cannot change.")


def _evidence_snapshot(evidence: GateEvidence, project_id: int) -> dict[str, Any]:
    resolver = EVIDENCE_RESOLVERS.get(evidence.kind) or DEFAULT_RESOLVERS.get(evidence.kind)
    live = None
    if resolver is not None:
        try:
            live = resolver(evidence.ref_id, project_id)
        except Exception:  # evidence from a sibling app must not block a review
            live = None
    return {
        "kind": evidence.kind,
        "ref_id": evidence.ref_id,
        "label": evidence.label,
        "data": live if live is not None else evidence.data,
        "resolved": live is not None,
    }


def gate_snapshot(gate: Gate) -> dict[str, Any]:
    kpis = {k.pk: k for k in Kpi.objects.filter(project_id=gate.project_id)}
    criteria = list(gate.criteria.all())
    for c in criteria:
        if c.kpi_id:
            c.kpi = kpis.get(c.kpi_id, c.kpi)
    return {
        "taken_at": timezone.now().isoformat(),
        "kpis": [
            {
                "id": k.pk,
                "name": k.name,
                "unit": k.unit,
                "direction": k.direction,
                "baseline": k.baseline,
                "target": k.target,
                "threshold": k.threshold,
                "value": k.current_value,
                "at": k.current_at.isoformat() if k.current_at else None,
                "status": k.status,
            }
            for k in kpis.values()
        ],
        "criteria": [{"label": c.label, "kind": c.kind, "met": criterion_met(c)} for c in criteria],
        "evidence": [_evidence_snapshot(e, gate.project_id) for e in gate.evidence.all()],
    }


@transaction.atomic
def gate_review_open(*, gate: Gate, actor: User) -> GateReview:
    """Open the review (or refresh its evidence snapshot while nobody has voted)."""
    gate = Gate.objects.select_for_update().get(pk=gate.pk)
    _not_decided(gate)
    review = GateReview.objects.filter(gate=gate).first()
    if review is not None and review.votes.exists():
        raise InvalidState("Votes have been cast on this evidence; the snapshot stays as it was.")
    snap = gate_snapshot(gate)
    if review is None:
        review = GateReview.objects.create(gate=gate, opened_by=actor, snapshot=snap)
    else:
        review.snapshot = snap
        review.save(update_fields=["snapshot"])
    Gate.objects.filter(pk=gate.pk).update(status=GateStatus.IN_REVIEW)
    audit_record(
        actor=actor,
        action="gate.review_open",
        target=gate,
        project_id=gate.project_id,
        after={"criteria": snap["criteria"]},
    )
    events.publish(events.group_name("project", gate.project_id), "gate.review", {"gate": gate.pk})
    return review


def gate_is_approver(*, gate: Gate, user: User) -> bool:
    role = project_role(user=user, project=gate.project)
    if role is None:
        return False
    if role in (gate.approver_roles or []):
        return True
    return gate.approvers.filter(pk=user.pk).exists()


@transaction.atomic
def gate_vote(*, gate: Gate, voter: User, verdict: str, comment: str = "") -> GateVote:
    if verdict not in Verdict.values:
        raise ValidationFailed("A vote is 'go', 'no_go' or 'hold'.")
    gate = Gate.objects.select_for_update().select_related("project").get(pk=gate.pk)
    _not_decided(gate)
    if not gate_is_approver(gate=gate, user=voter):
        raise PermissionDenied(f"You are not an approver of '{gate.name}'.")
    review = GateReview.objects.filter(gate=gate).first()
    if review is None:
        raise InvalidState("The review has not been opened yet; votes need its evidence snapshot.")
    vote, _ = GateVote.objects.update_or_create(
        review=review, voter=voter, defaults={"verdict": verdict, "comment": comment[:5000]}
    )
    audit_record(
        actor=voter,
        action="gate.vote",
        target=gate,
        project_id=gate.project_id,
        after={"verdict": verdict, "comment": comment[:500]},
    )
    events.publish(events.group_name("project", gate.project_id), "gate.vote", {"gate": gate.pk})
    return vote


def _tally(review: GateReview) -> dict[str, int]:
    tally = dict.fromkeys(Verdict.values, 0)
    for verdict in review.votes.values_list("verdict", flat=True):
        tally[verdict] += 1
    return tally


@transaction.atomic
def gate_decide(*, gate: Gate, actor: User, verdict: str, rationale: str = "") -> GateDecision:
    """Record the gate's one decision. Only the project's owners decide, once the
    approvers' quorum has voted; Go needs every criterion met, and moves the stage."""
    if verdict not in Verdict.values:
        raise ValidationFailed("A decision is 'go', 'no_go' or 'hold'.")
    gate = Gate.objects.select_for_update().select_related("project", "to_stage").get(pk=gate.pk)
    if project_role(user=actor, project=gate.project) != Role.OWNER:
        raise PermissionDenied("Only the project's owners decide a gate; approvers vote.")
    if gate.status == GateStatus.DECIDED:
        raise Conflict(f"'{gate.name}' is already decided; a decision is final.")
    review = GateReview.objects.filter(gate=gate).first()
    if review is None:
        raise InvalidState("Open the review first: a decision rests on its evidence.")
    tally = _tally(review)
    if sum(tally.values()) < gate.quorum:
        raise InvalidState(f"The quorum is {gate.quorum} approver vote(s); {sum(tally.values())} cast so far.")
    state = project_lifecycle_state(project=gate.project)
    unmet = [c.label for c in gate.criteria.select_related("kpi") if not criterion_met(c)]
    if verdict == Verdict.GO:
        if unmet:
            raise ValidationFailed(f"Go needs every criterion met; not met: {'; '.join(unmet)}.")
        if state.stage.order >= gate.to_stage.order:
            raise InvalidState(f"The project is already at or past {gate.to_stage.name}.")
    from_stage = state.stage
    try:
        with transaction.atomic():
            decision = GateDecision.objects.create(
                gate=gate,
                verdict=verdict,
                rationale=rationale[:10000],
                decided_by=actor,
                from_stage=from_stage,
                to_stage=gate.to_stage if verdict == Verdict.GO else from_stage,
                tally=tally,
                snapshot=review.snapshot,
            )
    except IntegrityError as exc:  # a concurrent decision won the race
        raise Conflict(f"'{gate.name}' is already decided; a decision is final.") from exc
    Gate.objects.filter(pk=gate.pk).update(status=GateStatus.DECIDED)
    gate.status = GateStatus.DECIDED
    if verdict == Verdict.GO:
        ProjectStage.objects.filter(pk=state.pk).update(stage=gate.to_stage, changed_at=timezone.now())
    audit_record(
        actor=actor,
        action="gate.decide",
        target=gate,
        project_id=gate.project_id,
        before={"stage": from_stage.name},
        after={"verdict": verdict, "stage": decision.to_stage.name, "tally": tally},
        reason=rationale[:500],
    )
    events.publish(events.group_name("project", gate.project_id), "gate.decided", {"gate": gate.pk, "verdict": verdict})
    return decision


def gate_get_for_update(gate_id: int) -> Gate:
    gate = Gate.objects.filter(pk=gate_id).first()
    if gate is None:
        raise NotFound("Gate not found.")
    return gate


@transaction.atomic
def project_lifecycle_set(*, project: Project, lifecycle: Lifecycle, actor: User) -> ProjectStage:
    """Move a project onto another lifecycle (admins define them), only before any
    gate decision: a decided history must not be re-read against other stages."""
    if GateDecision.objects.filter(gate__project=project).exists():
        raise InvalidState("The project has gate decisions; its lifecycle can no longer change.")
    first = lifecycle.stages.order_by("order").first()
    if first is None:
        raise ValidationFailed(f"Lifecycle '{lifecycle.name}' has no stages.")
    state = project_lifecycle_state(project=project)
    before = {"lifecycle": state.lifecycle.name, "stage": state.stage.name}
    Gate.objects.filter(project=project).delete()  # undecided gates point at the old stages
    state.lifecycle, state.stage = lifecycle, first
    state.save(update_fields=["lifecycle", "stage", "changed_at"])
    audit_record(
        actor=actor,
        action="project.lifecycle_set",
        target=project,
        project_id=project.pk,
        before=before,
        after={"lifecycle": lifecycle.name, "stage": first.name},
    )
    return state
