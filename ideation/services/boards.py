"""Boards, lanes, invitations and presence."""

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from ideation.models import Board, Idea, Lane, Participant, ParticipantRole, Presence, VoteAllowance
from ideation.payloads import board_payload, lane_payload
from ideation.selectors import presence_list
from mlplatform import events
from mlplatform.audit import audit_record, snapshot
from mlplatform.errors import InvalidState, NotFound, ValidationFailed
from mlplatform.models import User
from mlplatform.roles import Role
from projects.models import Membership, Project
from projects.selectors import project_check, unscoped_check

DEFAULT_LANES = ["Pain points", "Low-hanging fruit", "Shortlist", "Parked"]
BOARD_FIELDS = ["title", "description", "vote_budget", "votes_hidden", "locked", "timer_ends_at"]


def board_group(board_id: int) -> str:
    return events.group_name("board", board_id)


def publish(board: Board, event: str, payload: dict[str, Any]) -> None:
    events.publish(board_group(board.pk), event, payload)


def _validate_budget(budget: int) -> int:
    if not isinstance(budget, int) or isinstance(budget, bool) or not 0 <= budget <= 99:
        raise ValidationFailed("The vote budget is a whole number from 0 to 99.")
    return budget


@transaction.atomic
def board_create(
    *,
    actor: User,
    title: str,
    project: Project | None = None,
    description: str = "",
    vote_budget: int = 5,
    lanes: list[str] | None = None,
) -> Board:
    """Any signed-in user may open an organisation-level board (and facilitates it);
    a project board needs the stakeholder role there."""
    if project is not None:
        project_check(user=actor, project=project, min_role=Role.STAKEHOLDER)
    else:
        unscoped_check(user=actor, action="open organisation-level boards")
    title = (title or "").strip()[:160]
    if not title:
        raise ValidationFailed("A board needs a title.")
    board = Board.objects.create(
        project=project,
        title=title,
        description=description[:20000],
        facilitator=actor,
        vote_budget=_validate_budget(vote_budget),
    )
    names = [n.strip()[:80] for n in (lanes or DEFAULT_LANES) if n.strip()] or DEFAULT_LANES
    Lane.objects.bulk_create([Lane(board=board, title=n, position=i) for i, n in enumerate(names)])
    audit_record(
        actor=actor,
        action="board.create",
        target=board,
        project_id=board.project_id,
        after={"title": title, "lanes": names},
    )
    return board


@transaction.atomic
def board_update(*, board: Board, actor: User, timer_minutes: int | None = None, **changes: Any) -> Board:
    """Facilitator controls: title, budget, hide/reveal votes, lock, timer.
    `timer_minutes` starts a shared countdown (0 stops it)."""
    unknown = set(changes) - {"title", "description", "vote_budget", "votes_hidden", "locked"}
    if unknown:
        raise ValidationFailed(f"Unknown board fields: {', '.join(sorted(unknown))}.")
    if "title" in changes:
        changes["title"] = (changes["title"] or "").strip()[:160]
        if not changes["title"]:
            raise ValidationFailed("A board needs a title.")
    if timer_minutes is not None:
        if not 0 <= timer_minutes <= 240:
            raise ValidationFailed("The timer runs 1 to 240 minutes (0 stops it).")
        changes["timer_ends_at"] = timezone.now() + timedelta(minutes=timer_minutes) if timer_minutes else None
    before = snapshot(board, BOARD_FIELDS)
    if "vote_budget" in changes:
        budget = _validate_budget(changes["vote_budget"])
        # Dots already placed stay; a lower budget only stops further votes.
        VoteAllowance.objects.filter(board=board).update(budget=Greatest(budget, F("used")))
    was_hidden = board.votes_hidden
    for field, value in changes.items():
        setattr(board, field, value)
    board.save(update_fields=[*changes, "updated_at"])
    audit_record(
        actor=actor,
        action="board.update",
        target=board,
        project_id=board.project_id,
        before=before,
        after=snapshot(board, BOARD_FIELDS),
    )
    payload = board_payload(board)
    if was_hidden and not board.votes_hidden:
        payload["vote_counts"] = dict(Idea.objects.filter(board=board).values_list("pk", "vote_count"))
    publish(board, "board.updated", {**payload, "by": actor.username})
    return board


@transaction.atomic
def participant_invite(*, board: Board, actor: User, username: str, role: str = ParticipantRole.PARTICIPANT):
    if role not in ParticipantRole.values:
        raise ValidationFailed(f"Role is one of: {', '.join(ParticipantRole.values)}.")
    user = User.objects.filter(username=(username or "").strip(), is_active=True).first()
    if user is None:
        raise ValidationFailed(f"There is no user named '{username}'.")
    if board.project_id and not Membership.objects.filter(project_id=board.project_id, user=user).exists():
        raise ValidationFailed(f"{user.username} is not a member of the project; add them there first.")
    participant, created = Participant.objects.update_or_create(board=board, user=user, defaults={"role": role})
    audit_record(
        actor=actor,
        action="board.invite",
        target=board,
        project_id=board.project_id,
        after={"user": user.username, "role": role},
    )
    publish(board, "participant.invited", {"user": user.username, "role": role})
    return participant


def _writable(board: Board) -> None:
    if board.locked:
        raise InvalidState("The board is locked by the facilitator; nothing can change until it is unlocked.")


@transaction.atomic
def lane_create(*, board: Board, actor: User, title: str) -> Lane:
    title = (title or "").strip()[:80]
    if not title:
        raise ValidationFailed("A lane needs a title.")
    position = Lane.objects.filter(board=board).count()
    lane = Lane.objects.create(board=board, title=title, position=position)
    audit_record(actor=actor, action="lane.create", target=lane, project_id=board.project_id, after={"title": title})
    publish(board, "lane.created", {**lane_payload(lane), "by": actor.username})
    return lane


def _lane(board: Board, lane_id: int) -> Lane:
    lane = Lane.objects.filter(board=board, pk=lane_id).first()
    if lane is None:
        raise NotFound("That lane no longer exists.")
    return lane


@transaction.atomic
def lane_rename(*, board: Board, actor: User, lane_id: int, title: str) -> Lane:
    lane = _lane(board, lane_id)
    title = (title or "").strip()[:80]
    if not title:
        raise ValidationFailed("A lane needs a title.")
    before = {"title": lane.title}
    lane.title = title
    lane.save(update_fields=["title"])
    audit_record(
        actor=actor,
        action="lane.rename",
        target=lane,
        project_id=board.project_id,
        before=before,
        after={"title": title},
    )
    publish(board, "lane.updated", {**lane_payload(lane), "by": actor.username})
    return lane


@transaction.atomic
def lane_reorder(*, board: Board, actor: User, lane_ids: list[int]) -> list[Lane]:
    lanes = {lane.pk: lane for lane in Lane.objects.filter(board=board)}
    if sorted(lane_ids) != sorted(lanes):
        raise ValidationFailed("Give every lane of the board exactly once, in the new order.")
    for i, pk in enumerate(lane_ids):
        lanes[pk].position = i
    Lane.objects.bulk_update(lanes.values(), ["position"])
    audit_record(
        actor=actor, action="lane.reorder", target=board, project_id=board.project_id, after={"order": lane_ids}
    )
    publish(board, "lanes.reordered", {"order": lane_ids, "by": actor.username})
    return [lanes[pk] for pk in lane_ids]


@transaction.atomic
def lane_delete(*, board: Board, actor: User, lane_id: int) -> None:
    lane = _lane(board, lane_id)
    if Idea.objects.filter(lane=lane).exists():
        raise InvalidState(f"Lane '{lane.title}' still holds cards; move them first.")
    if Lane.objects.filter(board=board).count() == 1:
        raise InvalidState("A board keeps at least one lane.")
    audit_record(
        actor=actor, action="lane.delete", target=lane, project_id=board.project_id, before={"title": lane.title}
    )
    lane.delete()
    publish(board, "lane.deleted", {"id": lane_id, "by": actor.username})


def presence_join(*, board: Board, user: User, channel_name: str) -> list[str]:
    Presence.objects.filter(board=board, last_seen__lt=timezone.now() - timedelta(hours=1)).delete()
    Presence.objects.update_or_create(channel_name=channel_name, defaults={"board": board, "user": user})
    names = presence_list(board=board)
    publish(board, "presence", {"users": names})
    return names


def presence_seen(*, channel_name: str) -> None:
    Presence.objects.filter(channel_name=channel_name).update(last_seen=timezone.now())


def presence_leave(*, channel_name: str) -> None:
    row = Presence.objects.select_related("board").filter(channel_name=channel_name).first()
    if row is None:
        return
    row.delete()
    publish(row.board, "presence", {"users": presence_list(board=row.board)})
