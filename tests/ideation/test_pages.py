"""Board pages: escaping, constant queries, summary, CSV, idea detail and promotion."""

import csv
import io
import json
import re

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
import pytest

from ideation import services
from ideation.models import Idea
from projects.models import Membership
from tests.factories import UserFactory
from tests.ideation.conftest import checked

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _state(response) -> dict:
    raw = re.search(rb'<script id="board-state" type="application/json">(.*?)</script>', response.content, re.S)
    return json.loads(raw.group(1))


def test_board_page_escapes_card_text_in_its_state(board, stakeholder):
    services.idea_create(
        board=checked(board, stakeholder), actor=stakeholder, title="</script><script>alert(1)</script>"
    )
    response = _client(stakeholder).get(f"/ideation/boards/{board.pk}/")
    assert response.status_code == 200
    assert b"<script>alert(1)</script>" not in response.content
    assert _state(response)["ideas"][0]["title"] == "</script><script>alert(1)</script>"


def _board_queries(client, board) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(f"/ideation/boards/{board.pk}/").status_code == 200
    return len(ctx)


def test_board_page_renders_with_a_constant_number_of_queries(board, facilitator, stakeholder):
    client = _client(stakeholder)
    services.idea_create(board=checked(board, stakeholder), actor=stakeholder, title="first")
    few = _board_queries(client, board)
    for n in range(15):
        voter = UserFactory()
        Membership.objects.create(project=board.project, user=voter, role="stakeholder")
        b = checked(board, voter)
        idea = services.idea_create(board=b, actor=voter, title=f"idea {n}", tags=["a", "b"], owner=voter.username)
        services.vote_add(board=b, actor=voter, idea_id=idea.pk)
        services.comment_add(board=b, actor=voter, idea_id=idea.pk, body="+1")
        services.vote_add(board=checked(board, stakeholder), actor=stakeholder, idea_id=idea.pk) if n < 3 else None
    services.participant_invite(board=checked(board, facilitator), actor=facilitator, username=stakeholder.username)
    assert _board_queries(client, board) == few


def test_non_member_gets_404_and_viewer_sees_without_voting(board, viewer):
    assert _client(UserFactory()).get(f"/ideation/boards/{board.pk}/").status_code == 404
    state = _state(_client(viewer).get(f"/ideation/boards/{board.pk}/"))
    assert state["can_participate"] is False


def test_summary_and_csv_list_ideas_by_votes(board, stakeholder):
    b = checked(board, stakeholder)
    low = services.idea_create(board=b, actor=stakeholder, title='=HYPERLINK("http://evil")')
    high = services.idea_create(board=b, actor=stakeholder, title="Predict scrap <b>rate</b>")
    services.vote_add(board=b, actor=stakeholder, idea_id=high.pk)
    client = _client(stakeholder)
    summary = client.get(f"/ideation/boards/{board.pk}/summary/").content.decode()
    assert summary.index("Predict scrap &lt;b&gt;rate&lt;/b&gt;") < summary.index("HYPERLINK")
    response = client.get(f"/ideation/boards/{board.pk}/ideas.csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["title"] for r in rows] == ["Predict scrap <b>rate</b>", '\'=HYPERLINK("http://evil")']
    assert rows[0]["votes"] == "1" and rows[1]["votes"] == "0" and low


def test_idea_page_sanitises_markdown_comments(board, stakeholder):
    idea = services.idea_create(
        board=checked(board, stakeholder), actor=stakeholder, title="x", problem="**big** issue"
    )
    client = _client(stakeholder)
    client.post(
        f"/ideation/boards/{board.pk}/ideas/{idea.pk}/",
        {"action": "comment", "body": "*yes* <script>alert(1)</script><img src=x onerror=alert(1)>"},
    )
    page = client.get(f"/ideation/boards/{board.pk}/ideas/{idea.pk}/").content.decode()
    assert "<em>yes</em>" in page and "<strong>big</strong>" in page
    assert "<script>alert(1)" not in page and "onerror" not in page


def test_opening_a_deleted_idea_redirects_with_a_message(board, stakeholder):
    idea = services.idea_create(board=checked(board, stakeholder), actor=stakeholder, title="x")
    Idea.objects.filter(pk=idea.pk).delete()
    response = _client(stakeholder).get(f"/ideation/boards/{board.pk}/ideas/{idea.pk}/", follow=True)
    assert response.status_code == 200 and b"someone deleted it" in response.content


def test_promote_from_the_idea_page_opens_the_new_project(board, facilitator, stakeholder):
    idea = services.idea_create(board=checked(board, stakeholder), actor=stakeholder, title="Scrap prediction")
    response = _client(facilitator).post(
        f"/ideation/boards/{board.pk}/ideas/{idea.pk}/promote/",
        {
            "name": "Scrap prediction",
            "kpi_name": "Scrap rate",
            "kpi_unit": "%",
            "kpi_direction": "lower",
            "kpi_baseline": "8",
            "kpi_target": "5",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/projects/scrap-prediction/"
    page = _client(facilitator).get("/projects/scrap-prediction/").content.decode()
    assert "Scrap rate" in page and "Scrap prediction" in page


def test_board_list_and_create(facilitator):
    client = _client(facilitator)
    response = client.post("/ideation/", {"title": "Kick-off", "project": "", "vote_budget": "4"})
    assert response.status_code == 302
    assert b"Kick-off" in client.get("/ideation/").content


def test_board_and_lane_titles_are_escaped(facilitator):
    board = services.board_create(actor=facilitator, title="<img src=x onerror=alert(1)>", lanes=["<b>lane</b>"])
    client = _client(facilitator)
    for url in ["/ideation/", f"/ideation/boards/{board.pk}/", f"/ideation/boards/{board.pk}/summary/"]:
        content = client.get(url).content
        assert b"<img src=x" not in content and b"&lt;img src=x" in content
    assert _state(client.get(f"/ideation/boards/{board.pk}/"))["lanes"][0]["title"] == "<b>lane</b>"
