from django.urls import path

from ideation import api

urlpatterns = [
    path("boards/", api.BoardListApi.as_view(), name="api-boards"),
    path("boards/<int:board_id>/", api.BoardDetailApi.as_view(), name="api-board"),
    path("boards/<int:board_id>/participants/", api.ParticipantListApi.as_view(), name="api-board-participants"),
    path("boards/<int:board_id>/lanes/", api.LaneListApi.as_view(), name="api-board-lanes"),
    path("boards/<int:board_id>/lanes/order/", api.LaneOrderApi.as_view(), name="api-board-lane-order"),
    path("boards/<int:board_id>/lanes/<int:lane_id>/", api.LaneDetailApi.as_view(), name="api-board-lane"),
    path("boards/<int:board_id>/ideas/", api.IdeaListApi.as_view(), name="api-board-ideas"),
    path("boards/<int:board_id>/ideas/<int:idea_id>/", api.IdeaDetailApi.as_view(), name="api-board-idea"),
    path("boards/<int:board_id>/ideas/<int:idea_id>/move/", api.IdeaMoveApi.as_view(), name="api-board-idea-move"),
    path("boards/<int:board_id>/ideas/<int:idea_id>/votes/", api.IdeaVoteApi.as_view(), name="api-board-idea-votes"),
    path(
        "boards/<int:board_id>/ideas/<int:idea_id>/comments/",
        api.CommentListApi.as_view(),
        name="api-board-idea-comments",
    ),
    path(
        "boards/<int:board_id>/ideas/<int:idea_id>/promote/",
        api.IdeaPromoteApi.as_view(),
        name="api-board-idea-promote",
    ),
]
