"""The project dashboard's KPI and gate parts, and the gate review page."""

import json

from django import forms
from django.apps import apps
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import FieldError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
import plotly.graph_objects as go

from frontend.views import lifecycle
from frontend.views.common import all_errors
from frontend.views.projects import _project
from ideation import selectors as ideation_selectors
from ideation.text import render_markdown
from mlplatform.errors import ApplicationError, NotFound, ValidationFailed
from mlplatform.errors import PermissionDenied as NotAllowed
from mlplatform.roles import Role, role_at_least
from projects import selectors, services
from projects.models import CriterionKind, KpiDirection, KpiSource, Verdict

STATUS_LABEL = {
    "on_target": "on target",
    "acceptable": "acceptable",
    "below": "below threshold",
    "no_data": "no data yet",
    "no_target": "no target set",
}
STATUS_BADGE = {
    "on_target": "badge-ok",
    "acceptable": "badge-info",
    "below": "badge-bad",
    "no_data": "",
    "no_target": "",
}


class KpiForm(forms.Form):
    name = forms.CharField(max_length=120)
    unit = forms.CharField(max_length=30, required=False)
    direction = forms.ChoiceField(choices=KpiDirection.choices)
    baseline = forms.FloatField(required=False)
    target = forms.FloatField(required=False)
    threshold = forms.FloatField(required=False, label="Acceptance threshold")
    source_type = forms.ChoiceField(choices=KpiSource.choices, label="Source")
    source_key = forms.CharField(max_length=200, required=False, label="Metric key")


class KpiValueForm(forms.Form):
    value = forms.FloatField()
    date = forms.DateField(required=False, help_text="Leave empty for now; a past day backfills.")


def kpi_edit_form(kpi, data=None) -> KpiForm:
    """The edit form of one KPI card; prefixed so each card's ids are unique."""
    initial = {f: getattr(kpi, f) for f in KpiForm.base_fields}
    return KpiForm(data, initial=initial, prefix=f"kpi{kpi.pk}")


class GateForm(forms.Form):
    to_stage = forms.ChoiceField(label="Gate into")
    quorum = forms.IntegerField(min_value=1, max_value=50, initial=1, help_text="Approver votes needed.")
    approver_roles = forms.MultipleChoiceField(
        choices=Role.choices, initial=[Role.OWNER], widget=forms.CheckboxSelectMultiple, required=False
    )
    approver_usernames = forms.CharField(
        required=False, label="Named approvers", help_text="Usernames, comma-separated."
    )

    def __init__(self, *args, stages=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_stage"].choices = [(s, s) for s in stages]


def kpi_figure(kpi, points) -> dict:
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[p.recorded_at.isoformat() for p in points],
            y=[p.value for p in points],
            mode="lines+markers",
            name=kpi.name,
            line={"color": "#3358d4"},
        )
    )
    for value, label, color in ((kpi.target, "target", "#2f8a57"), (kpi.threshold, "threshold", "#b7791f")):
        if value is not None:
            fig.add_hline(y=value, line_dash="dash", line_color=color, annotation_text=label)
    fig.update_layout(
        height=180,
        margin={"l": 40, "r": 10, "t": 10, "b": 30},
        showlegend=False,
        yaxis_title=kpi.unit or None,
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="#fafbfd",
    )
    # Through json_script in the page (escaped), so a KPI name can never end the script tag.
    return json.loads(fig.to_json())


COUNTED = {
    # section url name -> (label, app, model, lookup to the project, noun)
    "section-experiments": ("Experiments", "experiments", "Run", "experiment__project", "run"),
    "section-models": ("Models", "registry", "ModelVersion", "registered_model__project", "model version"),
    "section-deployments": ("Endpoints", "deployments", "Endpoint", "project", "endpoint"),
}


def _links(project) -> list[tuple[str, str]]:
    """Experiments, models and endpoints, as those sections and apps exist on this
    install (looked up by name: the apps are optional to this page)."""
    links = []
    for url_name, (label, app, model, lookup, noun) in COUNTED.items():
        try:
            url = reverse("project-experiments", args=[project.slug])
        except NoReverseMatch:
            url = None
        if url_name != "section-experiments" or url is None:
            try:
                url = f"{reverse(url_name)}?project={project.slug}"
            except NoReverseMatch:
                continue
        if apps.is_installed(app):
            try:
                n = apps.get_model(app, model).objects.filter(**{lookup: project}).count()
                label = f"{label} ({n} {noun}{'' if n == 1 else 's'})"
            except (LookupError, FieldError):
                pass
        links.append((label, url))
    return links


def dashboard_context(request, project) -> dict:
    """Everything the dashboard shows, in a fixed number of queries."""
    state = services.project_lifecycle_state(project=project)
    stages = selectors.lifecycle_stages(lifecycle=state.lifecycle)
    kpis = list(selectors.kpi_list(project=project))
    histories = selectors.kpi_histories(kpis=kpis, limit=200)
    can_edit = role_at_least(project.my_role, Role.DATA_SCIENTIST)
    gates = list(selectors.gate_list(project=project))
    decided = {g.to_stage_id for g in gates if hasattr(g, "decision") and g.decision.verdict == Verdict.GO}
    timeline = [
        {
            "name": s.name,
            "current": s.pk == state.stage_id,
            "passed": s.order < state.stage.order,
            "gated": s.pk in decided,
        }
        for s in stages
    ]
    rows = [
        {
            "kpi": k,
            "badge": STATUS_BADGE.get(k.status, ""),
            "status": STATUS_LABEL.get(k.status, k.status),
            "figure": kpi_figure(k, histories[k.pk]),
            "fig_id": f"kpi-fig-{k.pk}",
            "progress": None if k.progress is None else round(k.progress * 100),
            "edit_form": kpi_edit_form(k) if can_edit else None,
        }
        for k in kpis
    ]
    for gate in gates:
        gate.vote_count = len(gate.review.votes.all()) if hasattr(gate, "review") else 0
    later = [s.name for s in stages if s.order > state.stage.order]
    return {
        "state": state,
        "timeline": timeline,
        "kpi_rows": rows,
        "gates": gates,
        "origin": ideation_selectors.idea_for_project(project=project),
        "boards": list(ideation_selectors.board_list(user=request.user).filter(project=project)[:10]),
        "description_html": render_markdown(project.description),
        "can_edit_kpis": can_edit,
        "kpi_form": KpiForm(),
        "today": timezone.localdate().isoformat(),
        "gate_form": GateForm(stages=later),
        "links": _links(project),
    }


@login_required
@require_POST
def kpi_add(request, slug: str):
    project = _project(request, slug, Role.DATA_SCIENTIST)
    form = KpiForm(request.POST)
    if form.is_valid():
        try:
            kpi = services.kpi_create(project=project, actor=request.user, **form.cleaned_data)
            messages.success(request, f"KPI '{kpi.name}' added.")
        except ApplicationError as exc:
            messages.error(request, exc.message)
    else:
        messages.error(request, "Check the KPI: " + all_errors(form))
    return redirect(f"{reverse('project-detail', args=[project.slug])}#kpis")


@login_required
@require_POST
def kpi_record(request, slug: str, kpi_id: int):
    project = _project(request, slug, Role.DATA_SCIENTIST)
    try:
        kpi = selectors.kpi_get(user=request.user, kpi_id=kpi_id, min_role=Role.DATA_SCIENTIST)
        if kpi.project_id != project.pk:
            raise NotFound("KPI not found.")
        messages.success(request, _kpi_action(request, kpi))
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect(f"{reverse('project-detail', args=[project.slug])}#kpis")


def _kpi_action(request, kpi) -> str:
    """Agree, edit, remove, or record a value (today's, or a past day's), as posted."""
    action = request.POST.get("action") or ("agree" if request.POST.get("agree") else "record")
    if action == "agree":
        services.kpi_update(kpi=kpi, actor=request.user, is_draft=False)
        return f"KPI '{kpi.name}' agreed."
    if action == "remove":
        name = kpi.name
        services.kpi_delete(kpi=kpi, actor=request.user)
        return f"KPI '{name}' removed."
    form = kpi_edit_form(kpi, request.POST) if action == "edit" else KpiValueForm(request.POST)
    if not form.is_valid():
        raise ValidationFailed(f"Check the KPI '{kpi.name}': " + all_errors(form))
    if action == "edit":
        services.kpi_update(kpi=kpi, actor=request.user, **form.cleaned_data)
        return f"KPI '{kpi.name}' saved."
    day, value = form.cleaned_data["date"], form.cleaned_data["value"]
    recorded_at = services.kpi_backfill_time(day=day) if day else None
    services.kpi_record_value(
        kpi=kpi, value=value, source=KpiSource.MANUAL, recorded_at=recorded_at, actor=request.user
    )
    return f"Recorded {value:g} for '{kpi.name}'" + (f" on {day.isoformat()}." if day else ".")


@login_required
@require_POST
def gate_add(request, slug: str):
    project = _project(request, slug, Role.OWNER)
    state = services.project_lifecycle_state(project=project)
    stages = [s.name for s in selectors.lifecycle_stages(lifecycle=state.lifecycle) if s.order > state.stage.order]
    form = GateForm(request.POST, stages=stages)
    if not form.is_valid():
        messages.error(request, "Check the gate: " + all_errors(form))
        return redirect(f"{reverse('project-detail', args=[project.slug])}#gates")
    data = form.cleaned_data
    names = [n.strip() for n in data["approver_usernames"].split(",") if n.strip()]
    try:
        gate = services.gate_create(
            project=project,
            actor=request.user,
            to_stage=data["to_stage"],
            quorum=data["quorum"],
            approver_roles=data["approver_roles"],
            approver_usernames=names,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect(f"{reverse('project-detail', args=[project.slug])}#gates")
    messages.success(request, f"'{gate.name}' created: add its criteria, then open the review.")
    return redirect("gate-detail", slug=project.slug, gate_id=gate.pk)


def _gate(request, slug: str, gate_id: int):
    project = _project(request, slug)
    try:
        gate = selectors.gate_get(user=request.user, gate_id=gate_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    if gate.project_id != project.pk:
        raise Http404("Gate not found.")
    return project, gate


@login_required
def gate_detail(request, slug: str, gate_id: int):
    project, gate = _gate(request, slug, gate_id)
    review = getattr(gate, "review", None) if hasattr(gate, "review") else None
    votes = list(review.votes.all()) if review else []
    decision = gate.decision if hasattr(gate, "decision") else None
    is_approver = services.gates.gate_is_approver(gate=gate, user=request.user)
    my_vote = next((v for v in votes if v.voter_id == request.user.pk), None)
    return render(
        request,
        "frontend/projects/gate.html",
        {
            "project": project,
            "gate": gate,
            "criteria": [(c, selectors.criterion_met(c)) for c in gate.criteria.all()],
            "evidence": list(gate.evidence.all()),
            "evidence_choices": lifecycle.picker_choices(project),
            "project_prefix": f"{project.slug}/",
            "review": review,
            "votes": votes,
            "decision": decision,
            "is_owner": project.my_role == Role.OWNER,
            "can_edit": role_at_least(project.my_role, Role.DATA_SCIENTIST),
            "is_approver": is_approver,
            "my_vote": my_vote,
            "kpis": selectors.kpi_list(project=project),
            "verdicts": Verdict.choices,
            "approvers": [u.username for u in gate.approvers.all()],
            "quorum_met": len(votes) >= gate.quorum,
            "snapshot_evidence": [
                {**e, "summary": _summary(e.get("data") or {})}
                for e in (review.snapshot.get("evidence", []) if review else [])
            ],
            "snapshot_kpis": [
                {**k, "status_label": STATUS_LABEL.get(k.get("status"), k.get("status"))}
                for k in (review.snapshot.get("kpis", []) if review else [])
            ],
        },
    )


def _summary(data: dict, prefix: str = "") -> str:
    """A snapshot's data as "key: value" pairs, nested keys dotted."""
    parts = []
    for key, value in data.items():
        if isinstance(value, dict):
            parts.append(_summary(value, f"{prefix}{key}."))
        else:
            parts.append(f"{prefix}{key}: {value}")
    return ", ".join(p for p in parts if p)


GATE_ACTIONS = {
    "criterion": Role.OWNER,
    "criterion_edit": Role.OWNER,
    "criterion_remove": Role.OWNER,
    "evidence_edit": Role.DATA_SCIENTIST,
    "evidence_remove": Role.DATA_SCIENTIST,
    "check": Role.DATA_SCIENTIST,
    "evidence": Role.DATA_SCIENTIST,
    "review": Role.DATA_SCIENTIST,
    "vote": Role.VIEWER,  # the service checks that the voter is an approver
    "decide": Role.VIEWER,  # the service checks that the actor owns the project
}


@login_required
@require_POST
def gate_action(request, slug: str, gate_id: int):
    project, gate = _gate(request, slug, gate_id)
    action = request.POST.get("action", "")
    if action not in GATE_ACTIONS:
        raise Http404("Unknown action.")
    try:
        if not role_at_least(project.my_role, GATE_ACTIONS[action]):
            raise NotAllowed(f"This needs the {Role(GATE_ACTIONS[action]).label} role.")
        messages.success(request, _run_gate_action(request, gate, action))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("gate-detail", slug=project.slug, gate_id=gate.pk)


def _gate_item(queryset, pk: str | None, noun: str):
    item = queryset.select_related("gate").filter(pk=pk if (pk or "").isdigit() else 0).first()
    if item is None:
        raise NotFound(f"That {noun} no longer exists.")
    return item


def _run_edit_action(request, gate, action: str) -> str:
    post, user = request.POST, request.user
    if action.startswith("criterion_"):
        criterion = _gate_item(gate.criteria, post.get("criterion"), "criterion")
        if action == "criterion_remove":
            services.gate_criterion_remove(criterion=criterion, actor=user)
            return "Criterion removed."
        services.gate_criterion_update(criterion=criterion, actor=user, label=post.get("label", ""))
        return "Criterion saved."
    evidence = _gate_item(gate.evidence, post.get("evidence"), "evidence")
    if action == "evidence_remove":
        services.gate_evidence_remove(evidence=evidence, actor=user)
        return "Evidence unlinked."
    services.gate_evidence_update(evidence=evidence, actor=user, label=post.get("label", ""))
    return "Evidence saved."


def _run_gate_action(request, gate, action: str) -> str:
    post, user = request.POST, request.user
    if action.endswith(("_edit", "_remove")):
        return _run_edit_action(request, gate, action)
    if action == "criterion":
        kind = post.get("kind", CriterionKind.CHECK)
        kpi = gate.project.kpis.filter(pk=post.get("kpi") or 0).first() if kind == CriterionKind.KPI else None
        services.gate_criterion_add(gate=gate, actor=user, kind=kind, label=post.get("label", ""), kpi=kpi)
        return "Criterion added."
    if action == "check":
        criterion = gate.criteria.filter(pk=post.get("criterion") or 0).first()
        if criterion is None:
            raise NotFound("That criterion no longer exists.")
        services.gate_criterion_set_done(criterion=criterion, actor=user, done=post.get("done") == "1")
        return "Checklist updated."
    if action == "evidence":
        services.gate_evidence_add(
            gate=gate, actor=user, kind=post.get("kind", ""), ref_id=post.get("ref_id", ""), label=post.get("label", "")
        )
        return "Evidence linked."
    if action == "review":
        services.gate_review_open(gate=gate, actor=user)
        return "Review open: the evidence is snapshotted; approvers can vote."
    if action == "vote":
        vote = services.gate_vote(
            gate=gate, voter=user, verdict=post.get("verdict", ""), comment=post.get("comment", "")
        )
        return f"Your vote ({vote.get_verdict_display()}) is recorded."
    decision = services.gate_decide(
        gate=gate, actor=user, verdict=post.get("verdict", ""), rationale=post.get("rationale", "")
    )
    return f"Decided: {decision.get_verdict_display()}. The project is now in {decision.to_stage.name}."
