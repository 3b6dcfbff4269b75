import pytest

from ideation import demo
from ideation.models import Board, Idea
from mlplatform.management.commands.seed_demo import demo_project, demo_users
from projects.models import Gate, GateDecision, Project
from projects.selectors import project_gate_passed

pytestmark = pytest.mark.django_db


def test_seed_demo_makes_a_finished_board_and_a_promoted_project_idempotently():
    # The ideation part of seed_demo (the tracking part serves the app and needs its own test).
    admin = demo_users()
    demo.seed(admin, demo_project(admin))
    demo.seed(admin, demo_project(admin))
    board = Board.objects.get()
    assert board.locked and Idea.objects.filter(board=board).count() == 6
    assert Idea.objects.filter(vote_count__gt=0).count() >= 4
    project = Project.objects.get(slug="pump-failures")
    assert Idea.objects.get(project=project).title == "Predict pump failures from vibration"
    assert project.kpis.count() == 2
    assert Gate.objects.filter(project=project).count() == 2 and GateDecision.objects.count() == 1
    assert project_gate_passed(project=project, stage="Experimentation")
    assert not project_gate_passed(project=project, stage="Pilot")
