"""KPIs, lifecycle and decision gates through the services."""

from datetime import timedelta

from django.utils import timezone
import pytest

from mlplatform.errors import Conflict, InvalidState, PermissionDenied, ValidationFailed
from mlplatform.models import AuditEvent
from projects import selectors, services
from projects.models import GateDecision
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    return {"owner": UserFactory(), "ds": UserFactory(), "stake": UserFactory()}


@pytest.fixture
def gp(people):
    return make_project(owner=people["owner"], members={people["ds"]: "data_scientist", people["stake"]: "stakeholder"})


@pytest.fixture
def kpi(gp, people):
    return services.kpi_create(
        project=gp,
        actor=people["owner"],
        name="Recall",
        unit="%",
        direction="higher",
        baseline=50,
        target=90,
        threshold=80,
    )


def _gate(gp, people, kpi, **kwargs):
    gate = services.gate_create(
        project=gp,
        actor=people["owner"],
        to_stage="Experimentation",
        quorum=2,
        approver_roles=["owner"],
        approver_usernames=[people["ds"].username, people["stake"].username],
        **kwargs,
    )
    services.gate_criterion_add(gate=gate, actor=people["owner"], kind="kpi", kpi=kpi)
    services.gate_criterion_add(gate=gate, actor=people["owner"], kind="check", label="Data access agreed")
    return gate


def test_new_projects_start_in_framing_of_the_default_lifecycle(gp):
    state = services.project_lifecycle_state(project=gp)
    assert state.lifecycle.name == "Default" and state.stage.name == "Framing"
    assert [s.name for s in selectors.lifecycle_stages(lifecycle=state.lifecycle)] == [
        "Framing",
        "Experimentation",
        "Pilot",
        "Production",
        "Retired",
    ]
    assert selectors.project_gate_passed(project=gp, stage="Framing")
    assert not selectors.project_gate_passed(project=gp, stage="Production")


def test_kpi_history_status_and_late_values(kpi, people):
    assert kpi.status == "no_data"
    now = timezone.now()
    services.kpi_record_value(kpi=kpi, value=70, source="manual", actor=people["ds"], recorded_at=now)
    services.kpi_record_value(kpi=kpi, value=99, source="run_metric:recall", recorded_at=now - timedelta(days=1))
    kpi.refresh_from_db()
    assert kpi.current_value == 70 and kpi.status == "below" and kpi.progress == pytest.approx(0.5)
    services.kpi_record_value(kpi=kpi, value=85, source="manual", actor=people["ds"])
    kpi.refresh_from_db()
    assert kpi.status == "acceptable"
    assert [p.value for p in selectors.kpi_histories(kpis=[kpi])[kpi.pk]] == [99, 70, 85]
    with pytest.raises(ValidationFailed):
        services.kpi_record_value(kpi=kpi, value=float("nan"), source="manual")


def test_lower_is_better_kpi(gp, people):
    kpi = services.kpi_create(project=gp, actor=people["owner"], name="Stops", direction="lower", target=4, threshold=6)
    services.kpi_record_value(kpi=kpi, value=5, source="manual")
    kpi.refresh_from_db()
    assert kpi.status == "acceptable"


def test_gate_reviewed_voted_and_decided_moves_the_stage(gp, people, kpi):
    gate = _gate(gp, people, kpi)
    services.kpi_record_value(kpi=kpi, value=85, source="manual")
    criterion = gate.criteria.get(kind="check")
    services.gate_criterion_set_done(criterion=criterion, actor=people["ds"], done=True)
    review = services.gate_review_open(gate=gate, actor=people["ds"])
    assert review.snapshot["kpis"][0]["value"] == 85 and all(c["met"] for c in review.snapshot["criteria"])
    services.gate_vote(gate=gate, voter=people["ds"], verdict="go", comment="Recall is there")
    services.gate_vote(gate=gate, voter=people["stake"], verdict="go")
    decision = services.gate_decide(gate=gate, actor=people["owner"], verdict="go", rationale="Evidence holds")
    assert decision.tally == {"go": 2, "no_go": 0, "hold": 0}
    assert services.project_lifecycle_state(project=gp).stage.name == "Experimentation"
    assert selectors.project_gate_passed(project=gp, stage="Experimentation")
    assert not selectors.project_gate_passed(project=gp, stage="Pilot")
    assert AuditEvent.objects.filter(action="gate.decide", object_id=str(gate.pk)).exists()


def test_stakeholder_cannot_decide_and_non_approver_cannot_vote(gp, people, kpi):
    gate = _gate(gp, people, kpi)
    services.gate_review_open(gate=gate, actor=people["owner"])
    outsider = UserFactory()
    gp_member = make_project(owner=outsider)  # a member elsewhere only
    assert gp_member
    with pytest.raises(PermissionDenied, match="not an approver"):
        services.gate_vote(gate=gate, voter=outsider, verdict="go")
    with pytest.raises(PermissionDenied, match="Only the project's owners decide"):
        services.gate_decide(gate=gate, actor=people["stake"], verdict="go")


def test_a_second_decision_on_a_decided_gate_is_refused(gp, people, kpi):
    gate = _gate(gp, people, kpi)
    services.gate_review_open(gate=gate, actor=people["owner"])
    services.gate_vote(gate=gate, voter=people["ds"], verdict="hold")
    services.gate_vote(gate=gate, voter=people["owner"], verdict="hold")
    services.gate_decide(gate=gate, actor=people["owner"], verdict="hold", rationale="Not now")
    with pytest.raises(Conflict, match="already decided"):
        services.gate_decide(gate=gate, actor=people["owner"], verdict="go")
    with pytest.raises(InvalidState, match="already decided"):
        services.gate_vote(gate=gate, voter=people["ds"], verdict="go")
    assert GateDecision.objects.filter(gate=gate).count() == 1
    assert services.project_lifecycle_state(project=gp).stage.name == "Framing"


def test_go_needs_quorum_and_met_criteria(gp, people, kpi):
    gate = _gate(gp, people, kpi)
    with pytest.raises(InvalidState, match="Open the review"):
        services.gate_decide(gate=gate, actor=people["owner"], verdict="go")
    services.gate_review_open(gate=gate, actor=people["owner"])
    services.gate_vote(gate=gate, voter=people["ds"], verdict="go")
    with pytest.raises(InvalidState, match="quorum is 2"):
        services.gate_decide(gate=gate, actor=people["owner"], verdict="go")
    services.gate_vote(gate=gate, voter=people["owner"], verdict="go")
    with pytest.raises(ValidationFailed, match="not met: Recall meets its acceptance threshold; Data access agreed"):
        services.gate_decide(gate=gate, actor=people["owner"], verdict="go")


def test_gate_into_a_stage_already_passed_or_unknown_is_refused(gp, people):
    with pytest.raises(ValidationFailed, match="not a stage"):
        services.gate_create(project=gp, actor=people["owner"], to_stage="Moon")
    with pytest.raises(InvalidState, match="already at or past"):
        services.gate_create(project=gp, actor=people["owner"], to_stage="Framing")


def test_evidence_is_snapshotted_generically(gp, people, kpi):
    from projects.services import gates

    gate = _gate(gp, people, kpi)
    gates.EVIDENCE_RESOLVERS["notebook"] = lambda ref, project_id: {"recall": 0.91, "live": True}
    try:
        services.gate_evidence_add(gate=gate, actor=people["ds"], kind="notebook", ref_id="abc123", data={"r": 0.9})
        review = services.gate_review_open(gate=gate, actor=people["ds"])
    finally:
        del gates.EVIDENCE_RESOLVERS["notebook"]
    assert review.snapshot["evidence"] == [
        {"kind": "notebook", "ref_id": "abc123", "label": "", "data": {"recall": 0.91, "live": True}, "resolved": True}
    ]


def test_admin_defined_lifecycle_and_run_metric_feed(gp, people, kpi):
    from projects.models import Lifecycle, Stage

    lean = Lifecycle.objects.create(name="Lean")
    Stage.objects.bulk_create([Stage(lifecycle=lean, name=n, order=i) for i, n in enumerate(["Idea", "Live"])])
    services.project_lifecycle_set(project=gp, lifecycle=lean, actor=people["owner"])
    assert services.project_lifecycle_state(project=gp).stage.name == "Idea"
    gate = services.gate_create(project=gp, actor=people["owner"], to_stage="Live")
    services.gate_review_open(gate=gate, actor=people["owner"])
    services.gate_vote(gate=gate, voter=people["owner"], verdict="go")
    services.gate_decide(gate=gate, actor=people["owner"], verdict="go")
    assert selectors.project_gate_passed(project=gp, stage="Live")
    assert not selectors.project_gate_passed(project=gp, stage="Production")  # not a stage of this lifecycle
    with pytest.raises(InvalidState, match="can no longer change"):
        services.project_lifecycle_set(project=gp, lifecycle=services.lifecycle_default(), actor=people["owner"])

    services.kpi_update(kpi=kpi, actor=people["owner"], source_type="run_metric", source_key="recall")
    assert services.kpi_feed_run_metric(project=gp, key="recall", value=88, run_ref="abc") == 1
    kpi.refresh_from_db()
    assert kpi.current_value == 88 and kpi.values.get().source == "run:abc"


def test_a_run_of_this_project_is_snapshotted_and_another_projects_run_is_not(gp, people, kpi):
    pytest.importorskip("experiments")
    from experiments.models import LatestMetric
    from experiments.services.experiments import experiment_create
    from experiments.services.runs import run_create

    def run_in(project) -> str:
        experiment = experiment_create(project=project, name="gates", user=None)
        run = run_create(experiment=experiment, user=None, name="gbm")
        LatestMetric.objects.create(run=run, key="recall", value=0.84, timestamp=1)
        return run.pk

    mine, foreign = run_in(gp), run_in(make_project(owner=UserFactory()))
    gate = _gate(gp, people, kpi)
    services.gate_evidence_add(gate=gate, actor=people["ds"], kind="run", ref_id=mine)
    # Another project's run, or a made-up id, is refused and links nothing.
    for made_up in (foreign, "0123456789abcdef0123456789abcdef"):
        with pytest.raises(ValidationFailed, match=f"No run '{made_up}' in this project"):
            services.gate_evidence_add(gate=gate, actor=people["ds"], kind="run", ref_id=made_up)
    with pytest.raises(ValidationFailed, match="model version is <model name>/<version>"):
        services.gate_evidence_add(gate=gate, actor=people["ds"], kind="model_version", ref_id="churn/7")
    evidence = {e["ref_id"]: e for e in services.gate_review_open(gate=gate, actor=people["ds"]).snapshot["evidence"]}
    assert list(evidence) == [mine]
    assert evidence[mine]["resolved"] and evidence[mine]["data"]["metrics"] == {"recall": 0.84}
