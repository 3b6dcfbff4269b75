"""Many concurrent clicks on "vote": the budget holds exactly, on SQLite and PostgreSQL."""

from concurrent.futures import ThreadPoolExecutor
import threading
import time

from django.db import OperationalError, connection
import pytest

from ideation import services
from ideation.models import Idea, Vote, VoteAllowance
from mlplatform.errors import InvalidState
from tests.factories import UserFactory, make_project
from tests.ideation.conftest import checked

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_votes_never_exceed_the_budget():
    owner, voter = UserFactory(), UserFactory()
    project = make_project(owner=owner, members={voter: "stakeholder"})
    board = services.board_create(actor=owner, title="Race", project=project, vote_budget=3)
    idea = services.idea_create(board=checked(board, owner), actor=owner, title="Popular")
    start = threading.Barrier(8)

    def click() -> str:
        start.wait()
        try:
            for _ in range(200):  # SQLite may report a locked table; a user would click again
                try:
                    services.vote_add(board=checked(board, voter), actor=voter, idea_id=idea.pk)
                    return "ok"
                except OperationalError:
                    time.sleep(0.02)
            return "busy"
        except InvalidState:
            return "refused"
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: click(), range(8)))

    assert results.count("ok") == 3 and results.count("refused") == 5, results
    assert Vote.objects.filter(board=board, user=voter).count() == 3
    assert VoteAllowance.objects.get(board=board, user=voter).used == 3
    assert Idea.objects.get(pk=idea.pk).vote_count == 3
