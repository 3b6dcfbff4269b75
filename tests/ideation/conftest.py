import pytest

from ideation import services
from tests.factories import UserFactory, make_project


@pytest.fixture
def facilitator(db):
    return UserFactory(username="fran")


@pytest.fixture
def stakeholder(db):
    return UserFactory(username="sam")


@pytest.fixture
def viewer(db):
    return UserFactory(username="vic")


@pytest.fixture
def board_project(facilitator, stakeholder, viewer):
    return make_project(owner=facilitator, members={stakeholder: "stakeholder", viewer: "viewer"})


@pytest.fixture
def board(board_project, facilitator):
    board = services.board_create(actor=facilitator, title="Workshop", project=board_project, vote_budget=3)
    return board


def checked(board, user, need="view"):
    from ideation.selectors import board_get

    return board_get(user=user, board_id=board.pk, need=need)
