"""Reads of boards, and the one place that says who may do what on a board.

The permission model (kept explicit on purpose, and tested):
- Project boards: project viewers see the board; stakeholders and above take part
  (cards, votes, comments); project owners facilitate.
- Organisation-level boards (no project yet): only the people the facilitator invited
  see them, as participant or observer; invitees with the facilitator role help run it.
- The board's facilitator and platform admins may do everything.
- A project-scoped API token reaches only boards of its project.
Anyone else gets "not found", never a hint that the board exists."""

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from ideation.models import Board, Comment, Idea, Lane, Participant, ParticipantRole, Presence, Vote, VoteAllowance
from mlplatform.errors import NotFound, PermissionDenied
from mlplatform.models import User
from mlplatform.roles import Role, role_at_least
from projects.selectors import project_role, token_scope

VIEW, PARTICIPATE, FACILITATE = "view", "participate", "facilitate"
LEVEL = {VIEW: 1, PARTICIPATE: 2, FACILITATE: 3}


@dataclass(frozen=True)
class BoardAccess:
    level: int  # 0 none, 1 view, 2 participate, 3 facilitate

    @property
    def can_view(self) -> bool:
        return self.level >= 1

    @property
    def can_participate(self) -> bool:
        return self.level >= 2

    @property
    def can_facilitate(self) -> bool:
        return self.level >= 3


def board_access(*, user: User, board: Board) -> BoardAccess:
    if user is None or not user.is_authenticated:
        return BoardAccess(0)
    scope = token_scope(user)
    if scope is not None and scope != board.project_id:
        return BoardAccess(0)
    if user.is_admin or board.facilitator_id == user.pk:
        return BoardAccess(3)
    invited = Participant.objects.filter(board=board, user=user).values_list("role", flat=True).first()
    level = {ParticipantRole.FACILITATOR: 3, ParticipantRole.PARTICIPANT: 2, ParticipantRole.OBSERVER: 1}.get(
        invited, 0
    )
    if board.project_id is not None:
        role = project_role(user=user, project=board.project)
        if role is None:
            return BoardAccess(0)  # an invitation never outlives project membership
        if role_at_least(role, Role.OWNER):
            level = 3
        elif role_at_least(role, Role.STAKEHOLDER):
            level = max(level, 2)
        else:
            level = max(level, 1)
    return BoardAccess(level)


def board_check(*, user: User, board: Board | None, need: str = VIEW) -> Board:
    access = board_access(user=user, board=board) if board is not None else BoardAccess(0)
    if not access.can_view:
        raise NotFound("Board not found.")
    if access.level < LEVEL[need]:
        if need == FACILITATE:
            raise PermissionDenied("Only the board's facilitator can do that.")
        raise PermissionDenied("You can follow this board but not take part: ask the facilitator for access.")
    board.access = access
    return board


def board_get(*, user: User, board_id: int, need: str = VIEW) -> Board:
    board = Board.objects.select_related("project", "facilitator").filter(pk=board_id).first()
    return board_check(user=user, board=board, need=need)


def board_list(*, user: User) -> QuerySet[Board]:
    qs = Board.objects.select_related("project", "facilitator").annotate(idea_count=Count("ideas", distinct=True))
    if not user.is_admin:
        qs = qs.filter(
            Q(project__memberships__user=user)
            | Q(project__isnull=True, participants__user=user)
            | Q(project__isnull=True, facilitator=user)
        ).distinct()
    scope = token_scope(user)
    if scope is not None:
        qs = qs.filter(project_id=scope)
    return qs.order_by("-created_at")


def lane_list(*, board: Board) -> list[Lane]:
    return list(Lane.objects.filter(board=board).order_by("position", "pk"))


def idea_list(*, board: Board) -> QuerySet[Idea]:
    return (
        Idea.objects.filter(board=board)
        .select_related("owner", "author", "project")
        .annotate(comment_count=Count("comments"))
        .order_by("lane__position", "lane_id", "position", "pk")
    )


def idea_get(*, board: Board, idea_id: int) -> Idea:
    idea = Idea.objects.select_related("owner", "author", "project", "lane").filter(board=board, pk=idea_id).first()
    if idea is None:
        raise NotFound("That card no longer exists: someone deleted it a moment ago.")
    return idea


def comment_list(*, idea: Idea) -> QuerySet[Comment]:
    return Comment.objects.filter(idea=idea).select_related("author").order_by("created_at", "pk")


def my_votes(*, board: Board, user: User) -> dict[int, int]:
    rows = Vote.objects.filter(board=board, user=user).values("idea_id").annotate(n=Count("pk"))
    return {row["idea_id"]: row["n"] for row in rows}


def votes_left(*, board: Board, user: User) -> int:
    allowance = VoteAllowance.objects.filter(board=board, user=user).values_list("budget", "used").first()
    if allowance is None:
        return board.vote_budget
    return max(0, allowance[0] - allowance[1])


PRESENCE_TTL = timedelta(seconds=90)


def presence_list(*, board: Board) -> list[str]:
    alive = Presence.objects.filter(board=board, last_seen__gte=timezone.now() - PRESENCE_TTL)
    names = alive.values_list("user__username", flat=True).distinct()
    return sorted(set(names))


def participant_list(*, board: Board) -> QuerySet[Participant]:
    return Participant.objects.filter(board=board).select_related("user").order_by("user__username")


def idea_for_project(*, project) -> Idea | None:
    """The idea a project was promoted from, if any (the project's origin)."""
    return Idea.objects.select_related("board").filter(project=project).first()
