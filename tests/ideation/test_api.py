"""REST API wiring: status codes, error shapes, permissions, schema."""

import pytest
from rest_framework.test import APIClient

from ideation.models import Idea
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_board_idea_vote_comment_move_promote_round_trip(board, facilitator, stakeholder):
    api = _api(stakeholder)
    state = api.get(f"/api/v1/boards/{board.pk}/").json()
    lane2 = state["lanes"][1]["id"]
    idea = api.post(f"/api/v1/boards/{board.pk}/ideas/", {"title": "Scrap", "impact": 4}, format="json").json()
    assert idea["votes"] == 0 and idea["author"] == stakeholder.username
    assert api.post(f"/api/v1/boards/{board.pk}/ideas/{idea['id']}/votes/").json() == {"votes_left": 2}
    moved = api.post(
        f"/api/v1/boards/{board.pk}/ideas/{idea['id']}/move/", {"lane": lane2, "position": 0}, format="json"
    )
    assert moved.json()["lane"] == lane2
    comment = api.post(f"/api/v1/boards/{board.pk}/ideas/{idea['id']}/comments/", {"body": "**yes**"}, format="json")
    assert comment.status_code == 201 and comment.json()["html"] == "<p><strong>yes</strong></p>"
    patched = api.patch(
        f"/api/v1/boards/{board.pk}/ideas/{idea['id']}/",
        {"title": "Scrap rate", "versions": {"title": 0}},
        format="json",
    )
    assert patched.json()["title"] == "Scrap rate" and patched.json()["conflicts"] == []
    denied = api.post(f"/api/v1/boards/{board.pk}/ideas/{idea['id']}/promote/", {}, format="json")
    assert denied.status_code == 403 and "facilitator" in denied.json()["error"]["message"]
    promoted = _api(facilitator).post(
        f"/api/v1/boards/{board.pk}/ideas/{idea['id']}/promote/",
        {"kpis": [{"name": "Scrap rate", "direction": "lower", "target": 2}]},
        format="json",
    )
    assert promoted.status_code == 201 and promoted.json()["project"] == "scrap-rate"
    kpis = _api(facilitator).get("/api/v1/projects/scrap-rate/kpis/").json()
    assert kpis[0]["name"] == "Scrap rate" and kpis[0]["is_draft"] is True


def test_vote_beyond_budget_and_on_locked_board_are_409_with_a_message(board, facilitator, stakeholder):
    api = _api(stakeholder)
    idea = api.post(f"/api/v1/boards/{board.pk}/ideas/", {"title": "x"}, format="json").json()
    url = f"/api/v1/boards/{board.pk}/ideas/{idea['id']}/votes/"
    for _ in range(3):
        api.post(url)
    over = api.post(url)
    assert (
        over.status_code == 409
        and over.json()["error"]["message"] == "You have used all 3 of your votes on this board."
    )
    _api(facilitator).patch(f"/api/v1/boards/{board.pk}/", {"locked": True}, format="json")
    locked = api.delete(url)
    assert locked.status_code == 409 and "locked" in locked.json()["error"]["message"]


def test_moving_a_deleted_card_is_a_404_with_a_clear_message(board, stakeholder):
    api = _api(stakeholder)
    idea = api.post(f"/api/v1/boards/{board.pk}/ideas/", {"title": "x"}, format="json").json()
    Idea.objects.filter(pk=idea["id"]).delete()
    lane = api.get(f"/api/v1/boards/{board.pk}/").json()["lanes"][0]["id"]
    response = api.post(
        f"/api/v1/boards/{board.pk}/ideas/{idea['id']}/move/", {"lane": lane, "position": 0}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "That card no longer exists: someone deleted it a moment ago."


def test_outsiders_and_viewers(board, viewer):
    assert _api(UserFactory()).get(f"/api/v1/boards/{board.pk}/").status_code == 404
    assert _api(viewer).get(f"/api/v1/boards/{board.pk}/").status_code == 200
    response = _api(viewer).post(f"/api/v1/boards/{board.pk}/ideas/", {"title": "x"}, format="json")
    assert response.status_code == 403
    assert _api(viewer).patch(f"/api/v1/boards/{board.pk}/", {"locked": True}, format="json").status_code == 403


def test_hidden_votes_are_not_in_the_api_until_revealed(board, facilitator, stakeholder):
    api = _api(stakeholder)
    idea = api.post(f"/api/v1/boards/{board.pk}/ideas/", {"title": "x"}, format="json").json()
    api.post(f"/api/v1/boards/{board.pk}/ideas/{idea['id']}/votes/")
    _api(facilitator).patch(f"/api/v1/boards/{board.pk}/", {"votes_hidden": True}, format="json")
    assert api.get(f"/api/v1/boards/{board.pk}/ideas/").json()[0]["votes"] is None
    _api(facilitator).patch(f"/api/v1/boards/{board.pk}/", {"votes_hidden": False}, format="json")
    assert api.get(f"/api/v1/boards/{board.pk}/ideas/").json()[0]["votes"] == 1


def test_organisation_board_via_api(facilitator):
    api = _api(facilitator)
    board = api.post("/api/v1/boards/", {"title": "Org kick-off"}, format="json").json()
    assert board["project"] is None
    guest = UserFactory()
    assert _api(guest).get(f"/api/v1/boards/{board['id']}/").status_code == 404
    api.post(f"/api/v1/boards/{board['id']}/participants/", {"username": guest.username}, format="json")
    assert _api(guest).get(f"/api/v1/boards/{board['id']}/").json()["can_participate"] is True


def test_gate_api_flow_and_refusals(facilitator, stakeholder, board_project):
    owner, slug = _api(facilitator), board_project.slug
    kpi = owner.post(f"/api/v1/projects/{slug}/kpis/", {"name": "Recall", "threshold": 0.8}, format="json").json()
    owner.post(f"/api/v1/kpis/{kpi['id']}/values/", {"value": 0.85}, format="json")
    gate = owner.post(
        f"/api/v1/projects/{slug}/gates/",
        {"to_stage": "Experimentation", "approver_roles": ["owner", "stakeholder"]},
        format="json",
    ).json()
    owner.post(f"/api/v1/gates/{gate['id']}/criteria/", {"kind": "kpi", "kpi": kpi["id"]}, format="json")
    made_up = owner.post(f"/api/v1/gates/{gate['id']}/evidence/", {"kind": "run", "ref_id": "r1"}, format="json")
    assert made_up.status_code == 400 and "No run 'r1' in this project" in made_up.json()["error"]["message"]
    owner.post(f"/api/v1/gates/{gate['id']}/evidence/", {"kind": "report", "ref_id": "r1"}, format="json")
    review = owner.post(f"/api/v1/gates/{gate['id']}/review/").json()
    assert review["snapshot"]["kpis"][0]["value"] == 0.85 and review["criteria"][0]["met"] is True
    assert (
        _api(stakeholder).post(f"/api/v1/gates/{gate['id']}/votes/", {"verdict": "go"}, format="json").status_code
        == 200
    )
    refused = _api(stakeholder).post(f"/api/v1/gates/{gate['id']}/decision/", {"verdict": "go"}, format="json")
    assert refused.status_code == 403 and "owners decide" in refused.json()["error"]["message"]
    assert owner.post(f"/api/v1/gates/{gate['id']}/decision/", {"verdict": "go"}, format="json").status_code == 201
    again = owner.post(f"/api/v1/gates/{gate['id']}/decision/", {"verdict": "go"}, format="json")
    assert again.status_code == 409 and "already decided" in again.json()["error"]["message"]
    assert owner.get(f"/api/v1/projects/{slug}/stage/").json()["stage"] == "Experimentation"
    assert _api(UserFactory()).get(f"/api/v1/gates/{gate['id']}/").status_code == 404


def test_schema_lists_the_new_endpoints(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path in [
        "/api/v1/boards/",
        "/api/v1/boards/{board_id}/ideas/{idea_id}/votes/",
        "/api/v1/gates/{gate_id}/decision/",
        "/api/v1/projects/{slug}/kpis/",
        "/api/v1/kpis/{kpi_id}/values/",
    ]:
        assert path in schema["paths"]
