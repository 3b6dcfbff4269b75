"""Project dashboard and gate review pages."""

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
import pytest

from projects import services
from projects.models import GateDecision
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _queries(client, slug) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(f"/projects/{slug}/").status_code == 200
    return len(ctx)


def _fill(project, user, kpis: range, stages: list[str]) -> None:
    for n in kpis:
        kpi = services.kpi_create(project=project, actor=user, name=f"KPI {n}", target=10, threshold=5)
        for v in range(4):
            services.kpi_record_value(kpi=kpi, value=v, source="manual", actor=user)
    for stage in stages:
        gate = services.gate_create(project=project, actor=user, to_stage=stage, approver_usernames=[user.username])
        services.gate_criterion_add(gate=gate, actor=user, kind="check", label="Done")
        services.gate_review_open(gate=gate, actor=user)
        services.gate_vote(gate=gate, voter=user, verdict="hold")


def test_dashboard_renders_with_a_constant_number_of_queries(user):
    project = make_project(owner=user)
    client = _client(user)
    _fill(project, user, range(1), ["Experimentation"])
    few = _queries(client, project.slug)
    _fill(project, user, range(1, 7), ["Pilot", "Production"])
    services.membership_add(project=project, username=UserFactory().username, role="viewer", actor=user)
    assert _queries(client, project.slug) == few


def test_dashboard_shows_timeline_kpis_and_escapes_kpi_names(user):
    project = make_project(owner=user)
    kpi = services.kpi_create(project=project, actor=user, name="</script><script>alert(1)</script>", target=1)
    services.kpi_record_value(kpi=kpi, value=0.5, source="manual", actor=user)
    page = _client(user).get(f"/projects/{project.slug}/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert 'id="stage-timeline"' in page and "Framing" in page and "Production" in page
    assert "Experiments (0 runs)" in page and "Models (0 model versions)" in page


def test_stakeholder_deciding_on_the_gate_page_gets_a_clear_message(user):
    stake = UserFactory()
    project = make_project(owner=user, members={stake: "stakeholder"})
    gate = services.gate_create(project=project, actor=user, to_stage="Experimentation", approver_roles=["stakeholder"])
    services.gate_review_open(gate=gate, actor=user)
    client = _client(stake)
    url = f"/projects/{project.slug}/gates/{gate.pk}/"
    client.post(url + "act/", {"action": "vote", "verdict": "go", "comment": "<b>yes</b>"})
    page = client.post(url + "act/", {"action": "decide", "verdict": "go"}, follow=True).content.decode()
    assert "Only the project&#x27;s owners decide a gate" in page
    assert "&lt;b&gt;yes&lt;/b&gt;" in page
    assert not GateDecision.objects.exists()


def test_owner_decides_through_the_page_and_a_second_decision_is_refused(user):
    project = make_project(owner=user)
    gate = services.gate_create(project=project, actor=user, to_stage="Experimentation")
    client = _client(user)
    url = f"/projects/{project.slug}/gates/{gate.pk}/act/"
    client.post(url, {"action": "review"})
    client.post(url, {"action": "vote", "verdict": "go"})
    page = client.post(url, {"action": "decide", "verdict": "go", "rationale": "ok"}, follow=True).content.decode()
    assert "The project is now in Experimentation" in page
    page = client.post(url, {"action": "decide", "verdict": "no_go"}, follow=True).content.decode()
    assert "already decided" in page
    assert GateDecision.objects.get(gate=gate).verdict == "go"


def test_gate_of_another_project_is_not_found(user):
    other = make_project(owner=UserFactory())
    gate = services.gate_create(project=other, actor=other.owner, to_stage="Pilot")
    mine = make_project(owner=user)
    assert _client(user).get(f"/projects/{mine.slug}/gates/{gate.pk}/").status_code == 404
    assert _client(user).get(f"/projects/{other.slug}/gates/{gate.pk}/").status_code == 404
