"""Idea cards, their moves, dot votes, comments, and promotion to a project."""

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, F

from ideation.models import Board, Comment, Idea, IdeaKind, IdeaStatus, Lane, Vote, VoteAllowance
from ideation.payloads import IDEA_EDITABLE, IDEA_TEXT_FIELDS, idea_payload
from ideation.selectors import FACILITATE, board_check, idea_get
from ideation.services.boards import _writable, publish
from ideation.text import render_markdown
from mlplatform.audit import audit_record
from mlplatform.errors import AlreadyExists, InvalidState, NotFound, PermissionDenied, ValidationFailed
from mlplatform.models import User
from projects import services as project_services
from projects.models import Membership, Project

TEXT_LIMITS = {"title": 200, "problem": 5000, "solution": 5000, "data_available": 5000, "benefit": 5000}


def _clean(changes: dict[str, Any]) -> dict[str, Any]:
    unknown = set(changes) - set(IDEA_EDITABLE)
    if unknown:
        raise ValidationFailed(f"Unknown card fields: {', '.join(sorted(unknown))}.")
    clean: dict[str, Any] = {}
    for field, value in changes.items():
        if field in IDEA_TEXT_FIELDS:
            value = str(value or "").strip()
            if len(value) > TEXT_LIMITS[field]:
                raise ValidationFailed(f"The {field.replace('_', ' ')} is at most {TEXT_LIMITS[field]} characters.")
            if field == "title" and not value:
                raise ValidationFailed("A card needs a title.")
        elif field in ("impact", "effort"):
            try:
                value = int(value)
            except (TypeError, ValueError):
                value = 0
            if not 1 <= value <= 5:
                raise ValidationFailed(f"{field.capitalize()} is a whole number from 1 to 5.")
        elif field == "kind" and value not in IdeaKind.values:
            raise ValidationFailed("Kind is 'pain_point' or 'low_hanging_fruit'.")
        elif field == "status" and value not in (IdeaStatus.NEW, IdeaStatus.SHORTLISTED, IdeaStatus.PARKED):
            raise ValidationFailed("Status is new, shortlisted or parked (promotion makes a project).")
        elif field == "tags":
            value = _tags(value)
        elif field == "owner":
            value = _user(value)
        clean[field] = value
    return clean


def _tags(value: Any) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value or [])
    tags = []
    for item in items:
        tag = str(item).strip()[:30]
        if tag and tag not in tags:
            tags.append(tag)
    if len(tags) > 10:
        raise ValidationFailed("A card has at most 10 tags.")
    return tags


def _user(username: Any) -> User | None:
    if not username:
        return None
    user = User.objects.filter(username=str(username).strip(), is_active=True).first()
    if user is None:
        raise ValidationFailed(f"There is no user named '{username}'.")
    return user


def _idea_for_update(board: Board, idea_id: int) -> Idea:
    idea = Idea.objects.select_for_update(of=("self",)).select_related("owner", "author", "project")
    idea = idea.filter(board=board, pk=idea_id)
    found = idea.first()
    if found is None:
        raise NotFound("That card no longer exists: someone deleted it a moment ago.")
    return found


def _publish_idea(board: Board, event: str, idea: Idea, **extra: Any) -> None:
    publish(board, event, {**idea_payload(idea, hidden=board.votes_hidden), **extra})


@transaction.atomic
def idea_create(*, board: Board, actor: User, lane_id: int | None = None, **fields: Any) -> Idea:
    """Needs PARTICIPATE on the board."""
    _writable(board)
    fields = _clean(fields)
    if "title" not in fields:
        raise ValidationFailed("A card needs a title.")
    lane = Lane.objects.filter(board=board, pk=lane_id).first() if lane_id else None
    lane = lane or Lane.objects.filter(board=board).order_by("position", "pk").first()
    if lane is None:
        raise NotFound("That lane no longer exists.")
    fields.setdefault("status", IdeaStatus.NEW)
    last = Idea.objects.filter(lane=lane).order_by("-position").values_list("position", flat=True).first()
    idea = Idea.objects.create(
        board=board, lane=lane, position=(last + 1) if last is not None else 0, author=actor, **fields
    )
    idea.comment_count = 0
    audit_record(
        actor=actor, action="idea.create", target=idea, project_id=board.project_id, after={"title": idea.title}
    )
    _publish_idea(board, "idea.created", idea, by=actor.username)
    return idea


@transaction.atomic
def idea_update(
    *, board: Board, actor: User, idea_id: int, changes: dict[str, Any], versions: dict[str, int] | None = None
) -> tuple[Idea, list[dict[str, Any]]]:
    """Last write wins per field. `versions` are the field versions the editor saw;
    where someone else changed the field since, the write still wins and the event
    names whose change it overwrote, so both participants are told."""
    _writable(board)
    changes = _clean(changes)
    idea = _idea_for_update(board, idea_id)
    meta = dict(idea.field_versions or {})
    conflicts, before = [], {}
    for field, value in changes.items():
        current = meta.get(field, {"v": 0, "by": None})
        seen = (versions or {}).get(field)
        if seen is not None and int(seen) != current["v"] and current.get("by") not in (None, actor.username):
            conflicts.append({"field": field, "overwritten": current["by"]})
        meta[field] = {"v": current["v"] + 1, "by": actor.username}
        before[field] = getattr(idea, field).username if field == "owner" and idea.owner_id else getattr(idea, field)
        setattr(idea, field, value)
    idea.field_versions = meta
    idea.save(update_fields=[*changes, "field_versions", "updated_at"])
    after = {f: (v.username if isinstance(v, User) else v) for f, v in changes.items()}
    before = {f: (v.username if isinstance(v, User) else v) for f, v in before.items()}
    audit_record(
        actor=actor, action="idea.update", target=idea, project_id=board.project_id, before=before, after=after
    )
    idea.comment_count = idea.comments.count()
    _publish_idea(board, "idea.updated", idea, by=actor.username, fields=list(changes), conflicts=conflicts)
    return idea, conflicts


@transaction.atomic
def idea_move(*, board: Board, actor: User, idea_id: int, lane_id: int, position: int) -> Idea:
    _writable(board)
    idea = _idea_for_update(board, idea_id)
    lane = Lane.objects.filter(board=board, pk=lane_id).first()
    if lane is None:
        raise NotFound("That lane no longer exists.")
    order = list(Idea.objects.filter(lane=lane).exclude(pk=idea.pk).order_by("position", "pk"))
    position = max(0, min(int(position), len(order)))
    order.insert(position, idea)
    from_lane = idea.lane_id
    idea.lane = lane
    changed = []
    for i, card in enumerate(order):
        if card.position != i or card.pk == idea.pk:
            card.position = i
            changed.append(card)
    Idea.objects.bulk_update(changed, ["position", "lane"])
    audit_record(
        actor=actor,
        action="idea.move",
        target=idea,
        project_id=board.project_id,
        before={"lane": from_lane},
        after={"lane": lane.pk, "position": position},
    )
    publish(
        board,
        "idea.moved",
        {"id": idea.pk, "lane": lane.pk, "position": position, "order": [c.pk for c in order], "by": actor.username},
    )
    return idea


@transaction.atomic
def idea_delete(*, board: Board, actor: User, idea_id: int) -> None:
    _writable(board)
    idea = _idea_for_update(board, idea_id)
    if idea.author_id != actor.pk and not board.access.can_facilitate:
        raise PermissionDenied("Only the card's author or the facilitator can delete it.")
    if idea.project_id:
        raise InvalidState("This card became a project; it stays as the project's origin.")
    # Dots on a deleted card go back to their owners' budgets.
    for user_id, n in _votes_by_user(idea):
        VoteAllowance.objects.filter(board=board, user_id=user_id).update(used=F("used") - n)
    audit_record(
        actor=actor, action="idea.delete", target=idea, project_id=board.project_id, before={"title": idea.title}
    )
    idea.delete()
    publish(board, "idea.deleted", {"id": idea_id, "by": actor.username})


def _votes_by_user(idea: Idea) -> list[tuple[int, int]]:
    return list(Vote.objects.filter(idea=idea).values("user_id").annotate(n=Count("pk")).values_list("user_id", "n"))


def _allowance(board: Board, user: User) -> VoteAllowance:
    try:
        with transaction.atomic():
            allowance, _ = VoteAllowance.objects.get_or_create(
                board=board, user=user, defaults={"budget": board.vote_budget}
            )
    except IntegrityError:  # a concurrent first vote made it
        allowance = VoteAllowance.objects.get(board=board, user=user)
    return allowance


def _vote_event(board: Board, idea: Idea, actor: User, left: int, delta: int) -> None:
    count = Idea.objects.filter(pk=idea.pk).values_list("vote_count", flat=True).first()
    publish(
        board,
        "vote.changed",
        {"id": idea.pk, "votes": None if board.votes_hidden else count, "by": actor.username, "delta": delta},
    )


@transaction.atomic
def vote_add(*, board: Board, actor: User, idea_id: int) -> int:
    """Place one dot; returns the dots the voter has left. The conditional UPDATE takes
    a dot only while one is left, and the allowance's CHECK constraint backs it."""
    _writable(board)
    idea = idea_get(board=board, idea_id=idea_id)
    allowance = _allowance(board, actor)
    try:
        with transaction.atomic():
            taken = VoteAllowance.objects.filter(pk=allowance.pk, used__lt=F("budget")).update(used=F("used") + 1)
    except IntegrityError:
        taken = 0
    if not taken:
        raise InvalidState(f"You have used all {allowance.budget} of your votes on this board.")
    Vote.objects.create(board=board, idea=idea, user=actor)
    Idea.objects.filter(pk=idea.pk).update(vote_count=F("vote_count") + 1)
    allowance.refresh_from_db(fields=["used", "budget"])
    _vote_event(board, idea, actor, allowance.budget - allowance.used, +1)
    return allowance.budget - allowance.used


@transaction.atomic
def vote_remove(*, board: Board, actor: User, idea_id: int) -> int:
    _writable(board)
    idea = idea_get(board=board, idea_id=idea_id)
    vote = Vote.objects.filter(board=board, idea=idea, user=actor).order_by("-pk").first()
    if vote is None:
        raise InvalidState("You have no vote on this card to take back.")
    vote.delete()
    VoteAllowance.objects.filter(board=board, user=actor).update(used=F("used") - 1)
    Idea.objects.filter(pk=idea.pk).update(vote_count=F("vote_count") - 1)
    allowance = VoteAllowance.objects.get(board=board, user=actor)
    _vote_event(board, idea, actor, allowance.budget - allowance.used, -1)
    return allowance.budget - allowance.used


@transaction.atomic
def comment_add(*, board: Board, actor: User, idea_id: int, body: str) -> Comment:
    _writable(board)
    idea = idea_get(board=board, idea_id=idea_id)
    body = (body or "").strip()
    if not body:
        raise ValidationFailed("A comment needs some text.")
    if len(body) > 5000:
        raise ValidationFailed("A comment is at most 5000 characters.")
    comment = Comment.objects.create(idea=idea, author=actor, body=body)
    audit_record(
        actor=actor, action="comment.add", target=idea, project_id=board.project_id, after={"body": body[:500]}
    )
    publish(
        board,
        "comment.added",
        {
            "idea": idea.pk,
            "id": comment.pk,
            "author": actor.username,
            "html": str(render_markdown(body)),
            "count": Comment.objects.filter(idea=idea).count(),
            "by": actor.username,
        },
    )
    return comment


def _project_description(idea: Idea) -> str:
    parts = [("Problem", idea.problem), ("Proposed data-driven solution", idea.solution)]
    parts += [("Data available", idea.data_available), ("Expected benefit", idea.benefit)]
    text = "\n\n".join(f"**{label}:** {value}" for label, value in parts if value)
    return f"{text}\n\nPromoted from the idea '{idea.title}' on board '{idea.board.title}'.".strip()


@transaction.atomic
def idea_promote(
    *, board: Board, actor: User, idea_id: int, name: str = "", slug: str = "", kpis: list[dict] | None = None
) -> Project:
    """Make a project from an idea (needs FACILITATE): it starts with the idea's text
    and draft KPIs; the card links to the project and the project to its origin."""
    board_check(user=actor, board=board, need=FACILITATE)
    idea = _idea_for_update(board, idea_id)
    if idea.project_id:
        raise AlreadyExists(f"This idea is already the project '{idea.project.slug}'.")
    project = project_services.project_create(
        owner=actor, name=(name or idea.title)[:120], slug=slug, description=_project_description(idea)
    )
    drafts = kpis if kpis else [{"name": "Expected benefit", "description": idea.benefit}]
    for spec in drafts:
        project_services.kpi_create(project=project, actor=actor, is_draft=True, **spec)
    for user in {idea.author, idea.owner} - {None, actor}:
        if not Membership.objects.filter(project=project, user=user).exists():
            project_services.membership_add(project=project, username=user.username, role="stakeholder", actor=actor)
    idea.project = project
    idea.status = IdeaStatus.PROMOTED
    idea.save(update_fields=["project", "status", "updated_at"])
    audit_record(
        actor=actor,
        action="idea.promote",
        target=idea,
        project_id=project.pk,
        after={"project": project.slug, "kpis": [k["name"] for k in drafts]},
    )
    idea.comment_count = idea.comments.count()
    _publish_idea(board, "idea.updated", idea, by=actor.username, fields=["status", "project"], conflicts=[])
    return project
