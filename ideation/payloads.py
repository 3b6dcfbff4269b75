"""The JSON shape of boards, lanes and cards: one definition shared by the page's
initial state, the websocket events and the REST API."""

from typing import Any

from ideation.models import Board, Idea, Lane

IDEA_TEXT_FIELDS = ["title", "problem", "solution", "data_available", "benefit"]
IDEA_EDITABLE = [*IDEA_TEXT_FIELDS, "kind", "impact", "effort", "tags", "owner", "status"]


def lane_payload(lane: Lane) -> dict[str, Any]:
    return {"id": lane.pk, "title": lane.title, "position": lane.position}


def idea_payload(idea: Idea, *, hidden: bool = False) -> dict[str, Any]:
    return {
        "id": idea.pk,
        "lane": idea.lane_id,
        "position": idea.position,
        "title": idea.title,
        "problem": idea.problem,
        "solution": idea.solution,
        "data_available": idea.data_available,
        "benefit": idea.benefit,
        "kind": idea.kind,
        "impact": idea.impact,
        "effort": idea.effort,
        "tags": list(idea.tags or []),
        "owner": idea.owner.username if idea.owner_id else None,
        "author": idea.author.username if idea.author_id else None,
        "status": idea.status,
        "project": idea.project.slug if idea.project_id else None,
        "votes": None if hidden else idea.vote_count,
        "comments": getattr(idea, "comment_count", None),
        "versions": {k: v.get("v", 0) for k, v in (idea.field_versions or {}).items()},
    }


def board_payload(board: Board) -> dict[str, Any]:
    return {
        "id": board.pk,
        "title": board.title,
        "description": board.description,
        "project": board.project.slug if board.project_id else None,
        "facilitator": board.facilitator.username,
        "vote_budget": board.vote_budget,
        "votes_hidden": board.votes_hidden,
        "locked": board.locked,
        "timer_ends_at": board.timer_ends_at.isoformat() if board.timer_ends_at else None,
    }
