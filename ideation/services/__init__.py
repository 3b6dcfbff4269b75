"""Writes of the ideation app. Every change publishes an event to the board's group
(after commit), so every participant's browser follows without reloading.

Each service takes an already-checked board (ideation.selectors.board_get with the
`need` the docstring names); the services re-check what depends on the object itself
(a card's author, a locked board)."""

from ideation.services.boards import (
    board_create,
    board_update,
    lane_create,
    lane_delete,
    lane_rename,
    lane_reorder,
    participant_invite,
    presence_join,
    presence_leave,
    presence_seen,
)
from ideation.services.ideas import (
    comment_add,
    idea_create,
    idea_delete,
    idea_move,
    idea_promote,
    idea_update,
    vote_add,
    vote_remove,
)

__all__ = [
    "board_create",
    "board_update",
    "comment_add",
    "idea_create",
    "idea_delete",
    "idea_move",
    "idea_promote",
    "idea_update",
    "lane_create",
    "lane_delete",
    "lane_rename",
    "lane_reorder",
    "participant_invite",
    "presence_join",
    "presence_leave",
    "presence_seen",
    "vote_add",
    "vote_remove",
]
