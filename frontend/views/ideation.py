"""Ideation pages: board list, the live board, idea detail, summary and CSV export.
Board changes from the page go through the REST API (fetch) and come back to every
participant over the board's websocket."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from frontend.views.common import call_service
from ideation import selectors, services
from ideation.api import board_detail_payload
from ideation.models import ParticipantRole
from ideation.selectors import FACILITATE, VIEW
from ideation.text import render_markdown
from mlplatform import csvsafe
from mlplatform.errors import ApplicationError, NotFound
from mlplatform.errors import PermissionDenied as NotAllowed
from projects import selectors as project_selectors


class BoardForm(forms.Form):
    title = forms.CharField(max_length=160)
    project = forms.ChoiceField(required=False, help_text="Leave empty for an organisation-level workshop.")
    vote_budget = forms.IntegerField(min_value=0, max_value=99, initial=5, help_text="Dots per participant.")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=20000)

    def __init__(self, *args, projects=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].choices = [("", "Organisation (no project yet)")] + [(p.slug, p.name) for p in projects]


class InviteForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=ParticipantRole.choices, initial=ParticipantRole.PARTICIPANT)


class PromoteForm(forms.Form):
    name = forms.CharField(max_length=120, required=False, help_text="Defaults to the idea's title.")
    kpi_name = forms.CharField(max_length=120, required=False, label="Draft KPI", initial="Expected benefit")
    kpi_unit = forms.CharField(max_length=30, required=False, label="Unit")
    kpi_direction = forms.ChoiceField(
        choices=[("higher", "Higher is better"), ("lower", "Lower is better")], label="Direction"
    )
    kpi_baseline = forms.FloatField(required=False, label="Baseline")
    kpi_target = forms.FloatField(required=False, label="Target")


def _board(request, board_id: int, need: str = VIEW):
    try:
        return selectors.board_get(user=request.user, board_id=board_id, need=need)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except NotAllowed as exc:
        raise PermissionDenied(exc.message) from exc


@login_required
def board_list(request):
    projects = project_selectors.project_list(user=request.user)
    form = BoardForm(request.POST or None, projects=projects)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            project = (
                project_selectors.project_get(user=request.user, slug=data["project"]) if data["project"] else None
            )
        except ApplicationError as exc:
            form.add_error("project", exc.message)
        else:
            board = call_service(
                form,
                services.board_create,
                actor=request.user,
                title=data["title"],
                project=project,
                vote_budget=data["vote_budget"],
                description=data["description"],
            )
            if board is not None:
                messages.success(request, f"Board '{board.title}' is open. Invite people and start collecting.")
                return redirect("board-detail", board_id=board.pk)
    boards = selectors.board_list(user=request.user)
    return render(request, "frontend/ideation/list.html", {"boards": boards, "form": form})


@login_required
def board_detail(request, board_id: int):
    board = _board(request, board_id)
    state = board_detail_payload(board, request.user)
    state["me"] = request.user.username
    state["presence"] = selectors.presence_list(board=board)
    context = {
        "board": board,
        "state": state,
        "participants": selectors.participant_list(board=board),
        "invite_form": InviteForm(),
    }
    return render(request, "frontend/ideation/board.html", context)


@login_required
@require_POST
def board_invite(request, board_id: int):
    board = _board(request, board_id, FACILITATE)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            p = services.participant_invite(board=board, actor=request.user, **form.cleaned_data)
            messages.success(request, f"{p.user.username} is invited as {p.get_role_display().lower()}.")
        except ApplicationError as exc:
            messages.error(request, exc.message)
    else:
        messages.error(request, "Give a username and a role.")
    return redirect("board-detail", board_id=board.pk)


def _rows(board):
    lanes = {lane.pk: lane.title for lane in selectors.lane_list(board=board)}
    # While tallies are hidden, even the order must not give them away.
    rank = (lambda i: i.title.lower()) if board.votes_hidden else (lambda i: (-i.vote_count, i.title.lower()))
    ideas = sorted(selectors.idea_list(board=board), key=rank)
    for idea in ideas:
        idea.lane_title = lanes.get(idea.lane_id, "")
    return lanes, ideas


@login_required
def board_summary(request, board_id: int):
    board = _board(request, board_id)
    lanes, ideas = _rows(board)
    return render(
        request,
        "frontend/ideation/summary.html",
        {"board": board, "lanes": lanes, "ideas": ideas, "hidden": board.votes_hidden},
    )


@login_required
def board_export(request, board_id: int):
    board = _board(request, board_id)
    lanes, ideas = _rows(board)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="board-{board.pk}-ideas.csv"'
    writer = csvsafe.writer(response)
    header = ["id", "title", "kind", "lane", "status", "votes", "impact", "effort", "owner", "author", "tags"]
    writer.writerow([*header, "problem", "solution", "data_available", "benefit", "project"])
    for i in ideas:
        row = [
            i.pk,
            i.title,
            i.kind,
            lanes.get(i.lane_id, ""),
            i.status,
            "" if board.votes_hidden else i.vote_count,
            i.impact,
            i.effort,
            i.owner.username if i.owner_id else "",
            i.author.username if i.author_id else "",
            ";".join(i.tags),
            i.problem,
            i.solution,
            i.data_available,
            i.benefit,
            i.project.slug if i.project_id else "",
        ]
        # Spreadsheets run cells starting with = + - @ as formulas; a quote keeps them text.
        writer.writerow([f"'{v}" if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v for v in row])
    return response


@login_required
def idea_detail(request, board_id: int, idea_id: int):
    board = _board(request, board_id)
    try:
        idea = selectors.idea_get(board=board, idea_id=idea_id)
    except NotFound as exc:
        messages.error(request, exc.message)
        return redirect("board-detail", board_id=board.pk)
    if request.method == "POST" and request.POST.get("action") == "comment":
        try:
            services.comment_add(board=board, actor=request.user, idea_id=idea.pk, body=request.POST.get("body", ""))
            messages.success(request, "Comment added.")
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return redirect("idea-detail", board_id=board.pk, idea_id=idea.pk)
    comments = [(c, render_markdown(c.body)) for c in selectors.comment_list(idea=idea)]
    texts = [(label, render_markdown(getattr(idea, f))) for f, label in IDEA_TEXTS if getattr(idea, f)]
    promote_form = PromoteForm(initial={"name": idea.title})
    return render(
        request,
        "frontend/ideation/idea.html",
        {"board": board, "idea": idea, "comments": comments, "texts": texts, "promote_form": promote_form},
    )


IDEA_TEXTS = [
    ("problem", "Problem"),
    ("solution", "Proposed data-driven solution"),
    ("data_available", "Data available"),
    ("benefit", "Expected benefit"),
]


@login_required
@require_POST
def idea_promote(request, board_id: int, idea_id: int):
    board = _board(request, board_id, FACILITATE)
    form = PromoteForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, "Check the promotion form: " + "; ".join(e for errs in form.errors.values() for e in errs)
        )
        return redirect("idea-detail", board_id=board.pk, idea_id=idea_id)
    data = form.cleaned_data
    kpis = []
    if data["kpi_name"]:
        kpis.append(
            {
                "name": data["kpi_name"],
                "unit": data["kpi_unit"],
                "direction": data["kpi_direction"],
                "baseline": data["kpi_baseline"],
                "target": data["kpi_target"],
            }
        )
    try:
        project = services.idea_promote(board=board, actor=request.user, idea_id=idea_id, name=data["name"], kpis=kpis)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("idea-detail", board_id=board.pk, idea_id=idea_id)
    messages.success(request, f"Project '{project.name}' created from the idea, with draft KPIs to agree.")
    return redirect("project-detail", slug=project.slug)
