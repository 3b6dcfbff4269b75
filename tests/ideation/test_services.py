"""Boards, cards, votes and promotion through the services: the issue's bad inputs."""

import pytest

from ideation import selectors, services
from ideation.models import Idea, Vote, VoteAllowance
from ideation.text import render_markdown
from mlplatform.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from projects.models import Kpi, Membership
from tests.factories import UserFactory
from tests.ideation.conftest import checked

pytestmark = pytest.mark.django_db


def test_new_board_has_default_lanes_and_the_creator_facilitates(board, facilitator):
    lanes = selectors.lane_list(board=board)
    assert [lane.title for lane in lanes] == ["Pain points", "Low-hanging fruit", "Shortlist", "Parked"]
    assert checked(board, facilitator).access.can_facilitate


def test_project_roles_map_to_board_access(board, stakeholder, viewer):
    assert checked(board, stakeholder).access.can_participate
    assert not checked(board, stakeholder).access.can_facilitate
    with pytest.raises(PermissionDenied, match="follow this board but not take part"):
        checked(board, viewer, need="participate")
    with pytest.raises(NotFound):
        checked(board, UserFactory())


def test_organisation_board_is_visible_only_to_invited_people(facilitator):
    board = services.board_create(actor=facilitator, title="Before any project")
    guest, observer, stranger = UserFactory(), UserFactory(), UserFactory()
    with pytest.raises(NotFound):
        checked(board, guest)
    services.participant_invite(board=board, actor=facilitator, username=guest.username)
    services.participant_invite(board=board, actor=facilitator, username=observer.username, role="observer")
    assert checked(board, guest, "participate").access.can_participate
    with pytest.raises(PermissionDenied):
        checked(board, observer, "participate")
    with pytest.raises(NotFound):
        checked(board, stranger)
    assert list(selectors.board_list(user=guest)) == [board]
    assert list(selectors.board_list(user=stranger)) == []


def test_script_in_text_fields_is_stored_as_text_and_markdown_is_sanitised(board, stakeholder):
    b = checked(board, stakeholder, "participate")
    idea = services.idea_create(board=b, actor=stakeholder, title="<script>alert(1)</script>", problem="<b>x</b>")
    assert idea.title == "<script>alert(1)</script>"  # kept verbatim; templates and JS escape it
    html = str(render_markdown("**bold** <script>alert(1)</script> <img src=x onerror=alert(2)> [a](javascript:x)"))
    assert "<strong>bold</strong>" in html
    assert "<script" not in html and "onerror" not in html and "javascript:" not in html


def test_votes_beyond_the_budget_are_refused(board, stakeholder):
    b = checked(board, stakeholder, "participate")
    idea = services.idea_create(board=b, actor=stakeholder, title="Predict pump failures")
    assert [services.vote_add(board=b, actor=stakeholder, idea_id=idea.pk) for _ in range(3)] == [2, 1, 0]
    with pytest.raises(InvalidState, match="used all 3 of your votes"):
        services.vote_add(board=b, actor=stakeholder, idea_id=idea.pk)
    assert Vote.objects.filter(board=board, user=stakeholder).count() == 3
    assert Idea.objects.get(pk=idea.pk).vote_count == 3
    assert services.vote_remove(board=b, actor=stakeholder, idea_id=idea.pk) == 1


def test_the_database_refuses_an_allowance_over_budget(board, stakeholder):
    from django.db import IntegrityError, transaction

    allowance = VoteAllowance.objects.create(board=board, user=stakeholder, budget=2, used=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        VoteAllowance.objects.filter(pk=allowance.pk).update(used=3)


def test_lowering_the_budget_keeps_placed_dots_and_stops_more(board, facilitator, stakeholder):
    b = checked(board, stakeholder, "participate")
    idea = services.idea_create(board=b, actor=stakeholder, title="Idea")
    services.vote_add(board=b, actor=stakeholder, idea_id=idea.pk)
    services.vote_add(board=b, actor=stakeholder, idea_id=idea.pk)
    services.board_update(board=checked(board, facilitator), actor=facilitator, vote_budget=1)
    with pytest.raises(InvalidState):
        services.vote_add(board=checked(board, stakeholder), actor=stakeholder, idea_id=idea.pk)
    assert Vote.objects.filter(idea=idea).count() == 2


def test_vote_on_a_locked_board_is_refused(board, facilitator, stakeholder):
    idea = services.idea_create(board=checked(board, stakeholder), actor=stakeholder, title="Idea")
    services.board_update(board=checked(board, facilitator), actor=facilitator, locked=True)
    with pytest.raises(InvalidState, match="locked by the facilitator"):
        services.vote_add(board=checked(board, stakeholder), actor=stakeholder, idea_id=idea.pk)
    with pytest.raises(InvalidState, match="locked"):
        services.idea_create(board=checked(board, stakeholder), actor=stakeholder, title="Late idea")


def test_moving_a_card_someone_just_deleted_says_so(board, facilitator, stakeholder):
    b = checked(board, stakeholder, "participate")
    idea = services.idea_create(board=b, actor=stakeholder, title="Idea")
    services.idea_delete(board=checked(board, facilitator), actor=facilitator, idea_id=idea.pk)
    lane = selectors.lane_list(board=board)[1]
    with pytest.raises(NotFound, match="someone deleted it"):
        services.idea_move(board=b, actor=stakeholder, idea_id=idea.pk, lane_id=lane.pk, position=0)


def test_move_reorders_the_target_lane(board, stakeholder):
    b = checked(board, stakeholder, "participate")
    lanes = selectors.lane_list(board=board)
    a, c = (services.idea_create(board=b, actor=stakeholder, title=t, lane_id=lanes[1].pk) for t in "ac")
    m = services.idea_create(board=b, actor=stakeholder, title="m")
    services.idea_move(board=b, actor=stakeholder, idea_id=m.pk, lane_id=lanes[1].pk, position=1)
    order = list(Idea.objects.filter(lane=lanes[1]).order_by("position").values_list("title", flat=True))
    assert order == ["a", "m", "c"] and {a.pk, c.pk}


def test_only_author_or_facilitator_deletes_and_votes_return(board, facilitator, stakeholder):
    other = UserFactory()
    Membership.objects.create(project=board.project, user=other, role="stakeholder")
    idea = services.idea_create(board=checked(board, stakeholder), actor=stakeholder, title="Mine")
    services.vote_add(board=checked(board, other), actor=other, idea_id=idea.pk)
    with pytest.raises(PermissionDenied, match="author or the facilitator"):
        services.idea_delete(board=checked(board, other), actor=other, idea_id=idea.pk)
    services.idea_delete(board=checked(board, stakeholder), actor=stakeholder, idea_id=idea.pk)
    assert selectors.votes_left(board=board, user=other) == 3


def test_last_write_wins_per_field_and_names_the_overwritten_editor(board, facilitator, stakeholder):
    idea = services.idea_create(board=checked(board, stakeholder), actor=stakeholder, title="Idea")
    seen = 0  # both opened the card before any edit
    services.idea_update(
        board=checked(board, stakeholder),
        actor=stakeholder,
        idea_id=idea.pk,
        changes={"title": "Sam's title"},
        versions={"title": seen},
    )
    idea, conflicts = services.idea_update(
        board=checked(board, facilitator),
        actor=facilitator,
        idea_id=idea.pk,
        changes={"title": "Fran's title", "impact": 5},
        versions={"title": seen, "impact": seen},
    )
    assert idea.title == "Fran's title" and idea.impact == 5
    assert conflicts == [{"field": "title", "overwritten": "sam"}]


def test_bad_card_values_are_refused(board, stakeholder):
    b = checked(board, stakeholder, "participate")
    with pytest.raises(ValidationFailed, match="Impact is a whole number from 1 to 5"):
        services.idea_create(board=b, actor=stakeholder, title="x", impact=9)
    with pytest.raises(ValidationFailed, match="needs a title"):
        services.idea_create(board=b, actor=stakeholder, title="   ")


def test_promote_makes_a_project_with_the_ideas_text_and_draft_kpis(board, facilitator, stakeholder):
    idea = services.idea_create(
        board=checked(board, stakeholder),
        actor=stakeholder,
        title="Predict pump failures",
        problem="Pumps fail without warning",
        benefit="Fewer stops",
    )
    project = services.idea_promote(
        board=checked(board, facilitator),
        actor=facilitator,
        idea_id=idea.pk,
        kpis=[{"name": "Unplanned stops per month", "direction": "lower", "baseline": 12, "target": 4}],
    )
    idea.refresh_from_db()
    assert idea.project == project and idea.status == "promoted"
    assert "Pumps fail without warning" in project.description
    kpi = Kpi.objects.get(project=project)
    assert kpi.is_draft and kpi.direction == "lower"
    assert selectors.idea_for_project(project=project) == idea
    assert Membership.objects.filter(project=project, user=stakeholder, role="stakeholder").exists()
    with pytest.raises(Exception, match="already the project"):
        services.idea_promote(board=checked(board, facilitator), actor=facilitator, idea_id=idea.pk)


def test_a_participant_cannot_promote(board, stakeholder):
    idea = services.idea_create(board=checked(board, stakeholder), actor=stakeholder, title="x")
    with pytest.raises(PermissionDenied, match="facilitator"):
        services.idea_promote(board=checked(board, stakeholder), actor=stakeholder, idea_id=idea.pk)


def test_facilitator_controls_timer_lanes_and_invites(board, facilitator, stakeholder, viewer):
    b = checked(board, facilitator, "facilitate")
    b = services.board_update(board=b, actor=facilitator, timer_minutes=5, votes_hidden=True)
    assert b.timer_ends_at is not None and b.votes_hidden
    assert services.board_update(board=b, actor=facilitator, timer_minutes=0).timer_ends_at is None
    lanes = selectors.lane_list(board=board)
    services.lane_rename(board=b, actor=facilitator, lane_id=lanes[0].pk, title="Pains")
    services.lane_reorder(board=b, actor=facilitator, lane_ids=[lane.pk for lane in reversed(lanes)])
    assert [lane.title for lane in selectors.lane_list(board=board)][-1] == "Pains"
    idea = services.idea_create(board=b, actor=facilitator, title="x", lane_id=lanes[1].pk)
    with pytest.raises(InvalidState, match="still holds cards"):
        services.lane_delete(board=b, actor=facilitator, lane_id=lanes[1].pk)
    services.lane_delete(board=b, actor=facilitator, lane_id=lanes[2].pk)
    with pytest.raises(ValidationFailed, match="not a member of the project"):
        services.participant_invite(board=b, actor=facilitator, username=UserFactory().username)
    services.participant_invite(board=b, actor=facilitator, username=viewer.username, role="facilitator")
    assert checked(board, viewer, "facilitate") and idea
    with pytest.raises(PermissionDenied, match="Only the board's facilitator"):
        checked(board, stakeholder, "facilitate")
    with pytest.raises(ValidationFailed, match="vote budget"):
        services.board_update(board=b, actor=facilitator, vote_budget=100)


def test_project_scoped_token_reaches_only_boards_of_its_project(board, facilitator):
    from mlplatform.models import ApiToken

    org_board = services.board_create(actor=facilitator, title="Org")
    facilitator.api_token = ApiToken(project_id=board.project_id)
    assert checked(board, facilitator).access.can_facilitate
    with pytest.raises(NotFound):
        checked(org_board, facilitator)
    with pytest.raises(PermissionDenied, match="inside its project only"):
        services.board_create(actor=facilitator, title="Other", project=None)
    assert [b.pk for b in selectors.board_list(user=facilitator)] == [board.pk]


def test_presence_forgets_connections_that_stopped_pinging(board, facilitator, stakeholder):
    from datetime import timedelta

    from django.utils import timezone

    from ideation.models import Presence

    services.presence_join(board=board, user=facilitator, channel_name="c1")
    services.presence_join(board=board, user=stakeholder, channel_name="c2")
    assert selectors.presence_list(board=board) == ["fran", "sam"]
    Presence.objects.filter(channel_name="c2").update(last_seen=timezone.now() - timedelta(minutes=5))
    assert selectors.presence_list(board=board) == ["fran"]
    services.presence_seen(channel_name="c2")
    assert selectors.presence_list(board=board) == ["fran", "sam"]
    services.presence_leave(channel_name="c1")
    assert selectors.presence_list(board=board) == ["sam"]
