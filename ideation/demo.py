"""Demo data for `make run`: a finished workshop board with voted ideas, one idea
promoted to a project with KPIs, a passed gate and a pending one. Idempotent."""

from datetime import timedelta

from django.utils import timezone

from ideation import selectors, services
from ideation.models import Board
from mlplatform.models import User
from projects import services as project_services
from projects.models import Project

BOARD_TITLE = "Plant maintenance workshop"
PROMOTED_SLUG = "pump-failures"

IDEAS = [
    # lane, title, kind, impact, effort, problem, solution, data, benefit, votes (admin, alice, bob)
    (
        0,
        "Predict pump failures from vibration",
        "pain_point",
        5,
        3,
        "Pumps on line 2 fail without warning; each stop costs a shift.",
        "Classify vibration spectra a week ahead of a failure.",
        "Two years of vibration sensors, work orders.",
        "Fewer unplanned stops.",
        (2, 2, 3),
    ),
    (
        0,
        "Spot scrap early in the extrusion line",
        "pain_point",
        4,
        4,
        "Scrap is found at the end of the line, an hour late.",
        "Anomaly detection on melt temperature and pressure.",
        "PLC logs at 1 Hz.",
        "Less scrap, earlier alarms.",
        (1, 1, 0),
    ),
    (
        1,
        "Forecast energy use per shift",
        "low_hanging_fruit",
        3,
        1,
        "Energy contracts are bought blind.",
        "Daily regression on production plan and weather.",
        "Meter readings, production plan.",
        "Cheaper energy contracts.",
        (1, 1, 1),
    ),
    (
        1,
        "Auto-tag maintenance reports",
        "low_hanging_fruit",
        2,
        1,
        "Free-text reports are never analysed.",
        "Text classification of report categories.",
        "8,000 reports.",
        "Find recurring faults.",
        (0, 1, 1),
    ),
    (
        2,
        "Optimise spare-part stock",
        "pain_point",
        4,
        5,
        "Spare parts run out or rot on the shelf.",
        "Demand forecast per part from failure predictions.",
        "ERP stock movements.",
        "Lower stock, fewer waits.",
        (1, 0, 0),
    ),
    (
        3,
        "Chatbot for the shift handover",
        "low_hanging_fruit",
        1,
        3,
        "Handover notes are scattered.",
        "LLM summary of the shift log.",
        "Shift logs.",
        "Time saved.",
        (0, 0, 0),
    ),
]


def _members(project: Project, admin: User) -> None:
    for username, role in (("alice", "data_scientist"), ("bob", "stakeholder")):
        if (
            User.objects.filter(username=username).exists()
            and not project.memberships.filter(user__username=username).exists()
        ):
            project_services.membership_add(project=project, username=username, role=role, actor=admin)


def seed(admin: User, project: Project) -> None:
    if Board.objects.filter(title=BOARD_TITLE, project=project).exists():
        return
    board = services.board_create(
        actor=admin,
        title=BOARD_TITLE,
        project=project,
        vote_budget=5,
        description="Line 2 operators, planners and the data team: pain points and quick wins for maintenance.",
    )
    people = {u.username: u for u in User.objects.filter(username__in=["admin", "alice", "bob"])}
    lanes = selectors.lane_list(board=board)
    made = []
    for lane, title, kind, impact, effort, problem, solution, data, benefit, votes in IDEAS:
        author = people.get("bob", admin) if kind == "pain_point" else people.get("alice", admin)
        checked = selectors.board_get(user=author, board_id=board.pk, need="participate")
        idea = services.idea_create(
            board=checked,
            actor=author,
            lane_id=lanes[lane].pk,
            title=title,
            kind=kind,
            impact=impact,
            effort=effort,
            problem=problem,
            solution=solution,
            data_available=data,
            benefit=benefit,
        )
        made.append(idea)
        for username, n in zip(("admin", "alice", "bob"), votes, strict=True):
            if username in people:
                voter = selectors.board_get(user=people[username], board_id=board.pk, need="participate")
                for _ in range(n):
                    services.vote_add(board=voter, actor=people[username], idea_id=idea.pk)
    if "alice" in people:
        alice_board = selectors.board_get(user=people["alice"], board_id=board.pk, need="participate")
        services.comment_add(
            board=alice_board,
            actor=people["alice"],
            idea_id=made[0].pk,
            body="We have **two years** of labelled failures; a first model is realistic in a month.",
        )
    promoted = _promote(board, admin, made[0].pk)
    _members(promoted, admin)
    _kpis_and_gates(promoted, admin, people)
    services.board_update(board=selectors.board_get(user=admin, board_id=board.pk), actor=admin, locked=True)


def _promote(board: Board, admin: User, idea_id: int) -> Project:
    existing = Project.objects.filter(slug=PROMOTED_SLUG).first()
    if existing is not None:
        return existing
    return services.idea_promote(
        board=selectors.board_get(user=admin, board_id=board.pk, need="facilitate"),
        actor=admin,
        idea_id=idea_id,
        name="Pump failure prediction",
        slug=PROMOTED_SLUG,
        kpis=[
            {
                "name": "Unplanned stops per month",
                "unit": "stops",
                "direction": "lower",
                "baseline": 12,
                "target": 4,
                "threshold": 6,
            },
            {
                "name": "Failure recall one week ahead",
                "unit": "",
                "direction": "higher",
                "baseline": 0,
                "target": 0.9,
                "threshold": 0.8,
                "source_type": "run_metric",
                "source_key": "recall",
            },
        ],
    )


def _kpis_and_gates(project: Project, admin: User, people: dict[str, User]) -> None:
    now = timezone.now()
    kpis = {k.name: k for k in project.kpis.all()}
    for kpi in kpis.values():
        project_services.kpi_update(kpi=kpi, actor=admin, is_draft=False)
    stops, recall = kpis["Unplanned stops per month"], kpis["Failure recall one week ahead"]
    for i, value in enumerate([12, 11, 9, 8, 6, 5]):
        project_services.kpi_record_value(
            kpi=stops, value=value, source="manual", recorded_at=now - timedelta(days=30 * (5 - i)), actor=admin
        )
    for i, value in enumerate([0.55, 0.68, 0.74, 0.83]):
        project_services.kpi_record_value(
            kpi=recall, value=value, source="run_metric:recall", recorded_at=now - timedelta(days=7 * (3 - i))
        )
    alice = people.get("alice")
    passed = project_services.gate_create(
        project=project,
        actor=admin,
        to_stage="Experimentation",
        quorum=1,
        approver_roles=["owner"],
    )
    project_services.gate_criterion_add(gate=passed, actor=admin, kind="check", label="Sensor data access agreed")
    project_services.gate_criterion_set_done(criterion=passed.criteria.get(), actor=admin, done=True)
    project_services.gate_review_open(gate=passed, actor=admin)
    project_services.gate_vote(gate=passed, voter=admin, verdict="go", comment="Data is there; worth a month.")
    project_services.gate_decide(gate=passed, actor=admin, verdict="go", rationale="Strong workshop vote, data ready.")
    pending = project_services.gate_create(
        project=project,
        actor=admin,
        to_stage="Pilot",
        quorum=2,
        approver_roles=["owner"],
        approver_usernames=[alice.username] if alice else [],
    )
    project_services.gate_criterion_add(gate=pending, actor=admin, kind="kpi", kpi=recall)
    project_services.gate_criterion_add(gate=pending, actor=admin, kind="kpi", kpi=stops)
    project_services.gate_criterion_add(gate=pending, actor=admin, kind="check", label="Planners trained on alerts")
    project_services.gate_evidence_add(
        gate=pending,
        actor=admin,
        kind="report",
        ref_id="demo-report-42",
        label="Gradient boosting, 2 years of data",
        data={"recall": 0.83, "precision": 0.71},
    )
    project_services.gate_review_open(gate=pending, actor=admin)
    if alice:
        project_services.gate_vote(gate=pending, voter=alice, verdict="go", comment="Recall passes the threshold.")
