"""REST API: /api/v1/boards/… (boards, lanes, ideas, votes, comments, promotion)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from ideation import selectors, services
from ideation.models import IdeaKind, IdeaStatus, ParticipantRole
from ideation.payloads import board_payload, idea_payload, lane_payload
from ideation.selectors import FACILITATE, PARTICIPATE, VIEW
from ideation.text import render_markdown
from mlplatform.api.pagination import Pagination
from projects.models import KpiDirection
from projects.selectors import project_get


class LaneOut(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    position = serializers.IntegerField()


class IdeaOut(serializers.Serializer):
    id = serializers.IntegerField()
    lane = serializers.IntegerField()
    position = serializers.IntegerField()
    title = serializers.CharField()
    problem = serializers.CharField()
    solution = serializers.CharField()
    data_available = serializers.CharField()
    benefit = serializers.CharField()
    kind = serializers.ChoiceField(choices=IdeaKind.choices)
    impact = serializers.IntegerField()
    effort = serializers.IntegerField()
    tags = serializers.ListField(child=serializers.CharField())
    owner = serializers.CharField(allow_null=True)
    author = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=IdeaStatus.choices)
    project = serializers.CharField(allow_null=True, help_text="Slug of the project it was promoted to.")
    votes = serializers.IntegerField(allow_null=True, help_text="Null while the facilitator hides tallies.")
    comments = serializers.IntegerField(allow_null=True)
    versions = serializers.DictField(child=serializers.IntegerField(), help_text="Per-field edit versions.")


class BoardOut(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField()
    project = serializers.CharField(allow_null=True)
    facilitator = serializers.CharField()
    vote_budget = serializers.IntegerField()
    votes_hidden = serializers.BooleanField()
    locked = serializers.BooleanField()
    timer_ends_at = serializers.DateTimeField(allow_null=True)


class BoardDetailOut(BoardOut):
    lanes = LaneOut(many=True)
    ideas = IdeaOut(many=True)
    my_votes = serializers.DictField(child=serializers.IntegerField())
    votes_left = serializers.IntegerField()
    can_participate = serializers.BooleanField()
    can_facilitate = serializers.BooleanField()


class BoardIn(serializers.Serializer):
    title = serializers.CharField(max_length=160)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    project = serializers.CharField(required=False, allow_blank=True, help_text="Project slug; empty: organisation.")
    vote_budget = serializers.IntegerField(required=False, min_value=0, max_value=99, default=5)
    lanes = serializers.ListField(child=serializers.CharField(max_length=80), required=False)


class BoardUpdateIn(serializers.Serializer):
    title = serializers.CharField(max_length=160, required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    vote_budget = serializers.IntegerField(required=False, min_value=0, max_value=99)
    votes_hidden = serializers.BooleanField(required=False)
    locked = serializers.BooleanField(required=False)
    timer_minutes = serializers.IntegerField(required=False, min_value=0, max_value=240, help_text="0 stops it.")


class ParticipantIn(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=ParticipantRole.choices, default=ParticipantRole.PARTICIPANT)


class ParticipantOut(serializers.Serializer):
    username = serializers.CharField(source="user.username")
    role = serializers.CharField()


class LaneIn(serializers.Serializer):
    title = serializers.CharField(max_length=80)


class LaneOrderIn(serializers.Serializer):
    order = serializers.ListField(child=serializers.IntegerField())


class IdeaIn(serializers.Serializer):
    lane = serializers.IntegerField(required=False)
    title = serializers.CharField(max_length=200, required=False)
    problem = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    solution = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    data_available = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    benefit = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    kind = serializers.ChoiceField(choices=IdeaKind.choices, required=False)
    impact = serializers.IntegerField(required=False, min_value=1, max_value=5)
    effort = serializers.IntegerField(required=False, min_value=1, max_value=5)
    tags = serializers.ListField(child=serializers.CharField(max_length=30), required=False, max_length=10)
    owner = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    status = serializers.ChoiceField(choices=IdeaStatus.choices, required=False)


class IdeaUpdateIn(IdeaIn):
    versions = serializers.DictField(
        child=serializers.IntegerField(), required=False, help_text="Field versions the editor started from."
    )


class IdeaUpdatedOut(IdeaOut):
    conflicts = serializers.ListField(child=serializers.DictField(), help_text="Fields whose other edit you overwrote.")


class MoveIn(serializers.Serializer):
    lane = serializers.IntegerField()
    position = serializers.IntegerField(min_value=0)


class VotesOut(serializers.Serializer):
    votes_left = serializers.IntegerField()


class CommentIn(serializers.Serializer):
    body = serializers.CharField(max_length=5000)


class CommentOut(serializers.Serializer):
    id = serializers.IntegerField()
    author = serializers.CharField(source="author.username", allow_null=True, default=None)
    body = serializers.CharField()
    html = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_html(self, obj) -> str:
        return str(render_markdown(obj.body))


class KpiDraftIn(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(required=False, allow_blank=True)
    unit = serializers.CharField(required=False, allow_blank=True, max_length=30)
    direction = serializers.ChoiceField(choices=KpiDirection.choices, required=False)
    baseline = serializers.FloatField(required=False, allow_null=True)
    target = serializers.FloatField(required=False, allow_null=True)
    threshold = serializers.FloatField(required=False, allow_null=True)


class PromoteIn(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False, allow_blank=True)
    slug = serializers.CharField(max_length=50, required=False, allow_blank=True)
    kpis = KpiDraftIn(many=True, required=False)


class PromotedOut(serializers.Serializer):
    project = serializers.CharField(source="slug")
    name = serializers.CharField()


def _valid(serializer_class, data):
    s = serializer_class(data=data)
    s.is_valid(raise_exception=True)
    return s.validated_data


def board_detail_payload(board, user) -> dict:
    hidden = board.votes_hidden
    return {
        **board_payload(board),
        "lanes": [lane_payload(lane) for lane in selectors.lane_list(board=board)],
        "ideas": [idea_payload(i, hidden=hidden) for i in selectors.idea_list(board=board)],
        "my_votes": {str(k): v for k, v in selectors.my_votes(board=board, user=user).items()},
        "votes_left": selectors.votes_left(board=board, user=user),
        "can_participate": board.access.can_participate,
        "can_facilitate": board.access.can_facilitate,
    }


class BoardListApi(APIView):
    @extend_schema(responses=BoardOut(many=True), operation_id="boards_list")
    def get(self, request):
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.board_list(user=request.user), request, view=self)
        return paginator.get_paginated_response([board_payload(b) for b in page])

    @extend_schema(request=BoardIn, responses={201: BoardOut}, operation_id="boards_create")
    def post(self, request):
        data = _valid(BoardIn, request.data)
        slug = data.pop("project", "")
        project = project_get(user=request.user, slug=slug) if slug else None
        board = services.board_create(actor=request.user, project=project, **data)
        return Response(board_payload(board), status=status.HTTP_201_CREATED)


class BoardDetailApi(APIView):
    @extend_schema(responses=BoardDetailOut, operation_id="boards_retrieve")
    def get(self, request, board_id: int):
        board = selectors.board_get(user=request.user, board_id=board_id)
        return Response(board_detail_payload(board, request.user))

    @extend_schema(request=BoardUpdateIn, responses=BoardOut, operation_id="boards_update")
    def patch(self, request, board_id: int):
        board = selectors.board_get(user=request.user, board_id=board_id, need=FACILITATE)
        board = services.board_update(board=board, actor=request.user, **_valid(BoardUpdateIn, request.data))
        return Response(board_payload(board))


class ParticipantListApi(APIView):
    @extend_schema(responses=ParticipantOut(many=True), operation_id="boards_participants_list")
    def get(self, request, board_id: int):
        board = selectors.board_get(user=request.user, board_id=board_id)
        return Response(ParticipantOut(selectors.participant_list(board=board), many=True).data)

    @extend_schema(request=ParticipantIn, responses={201: ParticipantOut}, operation_id="boards_participants_invite")
    def post(self, request, board_id: int):
        board = selectors.board_get(user=request.user, board_id=board_id, need=FACILITATE)
        participant = services.participant_invite(
            board=board, actor=request.user, **_valid(ParticipantIn, request.data)
        )
        return Response(ParticipantOut(participant).data, status=status.HTTP_201_CREATED)


class LaneListApi(APIView):
    @extend_schema(request=LaneIn, responses={201: LaneOut}, operation_id="boards_lanes_create")
    def post(self, request, board_id: int):
        board = selectors.board_get(user=request.user, board_id=board_id, need=FACILITATE)
        lane = services.lane_create(board=board, actor=request.user, **_valid(LaneIn, request.data))
        return Response(lane_payload(lane), status=status.HTTP_201_CREATED)


class LaneOrderApi(APIView):
    @extend_schema(request=LaneOrderIn, responses=LaneOut(many=True), operation_id="boards_lanes_reorder")
    def post(self, request, board_id: int):
        board = selectors.board_get(user=request.user, board_id=board_id, need=FACILITATE)
        lanes = services.lane_reorder(
            board=board, actor=request.user, lane_ids=_valid(LaneOrderIn, request.data)["order"]
        )
        return Response([lane_payload(lane) for lane in lanes])


class LaneDetailApi(APIView):
    @extend_schema(request=LaneIn, responses=LaneOut, operation_id="boards_lanes_rename")
    def patch(self, request, board_id: int, lane_id: int):
        board = selectors.board_get(user=request.user, board_id=board_id, need=FACILITATE)
        lane = services.lane_rename(board=board, actor=request.user, lane_id=lane_id, **_valid(LaneIn, request.data))
        return Response(lane_payload(lane))

    @extend_schema(responses={204: None}, operation_id="boards_lanes_delete")
    def delete(self, request, board_id: int, lane_id: int):
        board = selectors.board_get(user=request.user, board_id=board_id, need=FACILITATE)
        services.lane_delete(board=board, actor=request.user, lane_id=lane_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class IdeaListApi(APIView):
    @extend_schema(responses=IdeaOut(many=True), operation_id="boards_ideas_list")
    def get(self, request, board_id: int):
        board = selectors.board_get(user=request.user, board_id=board_id)
        return Response([idea_payload(i, hidden=board.votes_hidden) for i in selectors.idea_list(board=board)])

    @extend_schema(request=IdeaIn, responses={201: IdeaOut}, operation_id="boards_ideas_create")
    def post(self, request, board_id: int):
        board = selectors.board_get(user=request.user, board_id=board_id, need=PARTICIPATE)
        data = _valid(IdeaIn, request.data)
        idea = services.idea_create(board=board, actor=request.user, lane_id=data.pop("lane", None), **data)
        return Response(idea_payload(idea, hidden=board.votes_hidden), status=status.HTTP_201_CREATED)


class IdeaDetailApi(APIView):
    @extend_schema(responses=IdeaOut, operation_id="boards_ideas_retrieve")
    def get(self, request, board_id: int, idea_id: int):
        board = selectors.board_get(user=request.user, board_id=board_id, need=VIEW)
        return Response(idea_payload(selectors.idea_get(board=board, idea_id=idea_id), hidden=board.votes_hidden))

    @extend_schema(request=IdeaUpdateIn, responses=IdeaUpdatedOut, operation_id="boards_ideas_update")
    def patch(self, request, board_id: int, idea_id: int):
        board = selectors.board_get(user=request.user, board_id=board_id, need=PARTICIPATE)
        data = _valid(IdeaUpdateIn, request.data)
        versions = data.pop("versions", None)
        data.pop("lane", None)
        idea, conflicts = services.idea_update(
            board=board, actor=request.user, idea_id=idea_id, changes=data, versions=versions
        )
        return Response({**idea_payload(idea, hidden=board.votes_hidden), "conflicts": conflicts})

    @extend_schema(responses={204: None}, operation_id="boards_ideas_delete")
    def delete(self, request, board_id: int, idea_id: int):
        board = selectors.board_get(user=request.user, board_id=board_id, need=PARTICIPATE)
        services.idea_delete(board=board, actor=request.user, idea_id=idea_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class IdeaMoveApi(APIView):
    @extend_schema(request=MoveIn, responses=IdeaOut, operation_id="boards_ideas_move")
    def post(self, request, board_id: int, idea_id: int):
        board = selectors.board_get(user=request.user, board_id=board_id, need=PARTICIPATE)
        data = _valid(MoveIn, request.data)
        idea = services.idea_move(
            board=board, actor=request.user, idea_id=idea_id, lane_id=data["lane"], position=data["position"]
        )
        return Response(idea_payload(idea, hidden=board.votes_hidden))


class IdeaVoteApi(APIView):
    @extend_schema(request=None, responses=VotesOut, operation_id="boards_ideas_vote")
    def post(self, request, board_id: int, idea_id: int):
        board = selectors.board_get(user=request.user, board_id=board_id, need=PARTICIPATE)
        return Response({"votes_left": services.vote_add(board=board, actor=request.user, idea_id=idea_id)})

    @extend_schema(request=None, responses=VotesOut, operation_id="boards_ideas_unvote")
    def delete(self, request, board_id: int, idea_id: int):
        board = selectors.board_get(user=request.user, board_id=board_id, need=PARTICIPATE)
        return Response({"votes_left": services.vote_remove(board=board, actor=request.user, idea_id=idea_id)})


class CommentListApi(APIView):
    @extend_schema(responses=CommentOut(many=True), operation_id="boards_ideas_comments_list")
    def get(self, request, board_id: int, idea_id: int):
        board = selectors.board_get(user=request.user, board_id=board_id)
        idea = selectors.idea_get(board=board, idea_id=idea_id)
        return Response(CommentOut(selectors.comment_list(idea=idea), many=True).data)

    @extend_schema(request=CommentIn, responses={201: CommentOut}, operation_id="boards_ideas_comments_create")
    def post(self, request, board_id: int, idea_id: int):
        board = selectors.board_get(user=request.user, board_id=board_id, need=PARTICIPATE)
        comment = services.comment_add(
            board=board, actor=request.user, idea_id=idea_id, **_valid(CommentIn, request.data)
        )
        return Response(CommentOut(comment).data, status=status.HTTP_201_CREATED)


class IdeaPromoteApi(APIView):
    @extend_schema(request=PromoteIn, responses={201: PromotedOut}, operation_id="boards_ideas_promote")
    def post(self, request, board_id: int, idea_id: int):
        board = selectors.board_get(user=request.user, board_id=board_id, need=FACILITATE)
        project = services.idea_promote(
            board=board, actor=request.user, idea_id=idea_id, **_valid(PromoteIn, request.data)
        )
        return Response(PromotedOut(project).data, status=status.HTTP_201_CREATED)
