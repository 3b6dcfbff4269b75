"""Editing and removing KPIs, gate criteria and evidence; backfilled and absurd KPI values.
Through the services, the REST API and the dashboard / gate pages, with the role rules."""

from datetime import timedelta

from django.test import Client
from django.utils import timezone
import pytest
from rest_framework.test import APIClient

from mlplatform.errors import InvalidState, ValidationFailed
from mlplatform.models import AuditEvent
from projects import services
from projects.models import GateCriterion, GateEvidence, Kpi, KpiValue
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    return {"owner": UserFactory(), "ds": UserFactory(), "viewer": UserFactory(), "outsider": UserFactory()}


@pytest.fixture
def proj(people):
    return make_project(owner=people["owner"], members={people["ds"]: "data_scientist", people["viewer"]: "viewer"})


@pytest.fixture
def kpi(proj, people):
    return services.kpi_create(
        project=proj, actor=people["owner"], name="Recall", unit="%", baseline=50, target=90, threshold=80
    )


@pytest.fixture
def gate(proj, people, kpi):
    gate = services.gate_create(project=proj, actor=people["owner"], to_stage="Experimentation")
    services.gate_criterion_add(gate=gate, actor=people["owner"], kind="check", label="Data access agreed")
    GateEvidence.objects.create(gate=gate, kind="document", ref_id="DPIA-7", label="privacy", added_by=people["ds"])
    return gate


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _page(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _actions() -> list[str]:
    return list(AuditEvent.objects.order_by("pk").values_list("action", flat=True))


# --- services -------------------------------------------------------------------------


def test_absurd_values_are_refused_with_the_rule_and_nothing_recorded(kpi, people):
    for value, message in [
        (float("inf"), "finite"),
        (130, "percentage: a value lies between 0 and 100, not 130"),
        (-1, "between 0 and 100"),
    ]:
        with pytest.raises(ValidationFailed, match=message):
            services.kpi_record_value(kpi=kpi, value=value, source="manual", actor=people["ds"])
    orders = services.kpi_create(project=kpi.project, actor=people["owner"], name="Orders", baseline=200, target=300)
    with pytest.raises(ValidationFailed, match=r"implausible for 'Orders': values lie within ±300000"):
        services.kpi_record_value(kpi=orders, value=3_000_001, source="manual", actor=people["ds"])
    services.kpi_record_value(kpi=orders, value=299_999, source="manual", actor=people["ds"])  # large, not absurd
    # A machine feed is held to finiteness only (a run's metric is what it is).
    services.kpi_record_value(kpi=kpi, value=130, source="run:abc")
    assert list(KpiValue.objects.values_list("value", flat=True).order_by("pk")) == [299_999, 130]


def test_backfilled_value_joins_history_without_moving_current_and_future_is_refused(kpi, people):
    services.kpi_record_value(kpi=kpi, value=70, source="manual", actor=people["ds"])
    past = services.kpi_backfill_time(day=timezone.localdate() - timedelta(days=10))
    services.kpi_record_value(kpi=kpi, value=60, source="manual", actor=people["ds"], recorded_at=past)
    kpi.refresh_from_db()
    assert kpi.current_value == 70
    assert list(kpi.values.order_by("recorded_at").values_list("value", flat=True)) == [60, 70]
    with pytest.raises(ValidationFailed, match="in the future"):
        services.kpi_backfill_time(day=timezone.localdate() + timedelta(days=1))
    with pytest.raises(ValidationFailed, match="future"):
        services.kpi_record_value(
            kpi=kpi, value=1, source="manual", actor=people["ds"], recorded_at=timezone.now() + timedelta(hours=2)
        )
    assert kpi.values.count() == 2


def test_kpi_checked_by_a_gate_cannot_be_removed_until_its_criterion_is(kpi, gate, people):
    criterion = services.gate_criterion_add(gate=gate, actor=people["owner"], kind="kpi", kpi=kpi)
    with pytest.raises(InvalidState, match="is a criterion of Gate to Experimentation; remove the criterion first"):
        services.kpi_delete(kpi=kpi, actor=people["ds"])
    services.gate_criterion_remove(criterion=criterion, actor=people["owner"])
    services.kpi_delete(kpi=kpi, actor=people["ds"])
    assert not Kpi.objects.filter(name="Recall").exists()
    removed = AuditEvent.objects.get(action="kpi.delete")
    assert removed.before["name"] == "Recall" and removed.actor == people["ds"]


def test_criteria_and_evidence_edits_are_audited_and_a_decided_gate_is_frozen(gate, people):
    criterion = gate.criteria.get()
    evidence = gate.evidence.get()
    services.gate_criterion_update(criterion=criterion, actor=people["owner"], label="Data access signed")
    services.gate_evidence_update(evidence=evidence, actor=people["ds"], label="DPIA v2")
    update = AuditEvent.objects.get(action="gate.criterion_update")
    assert update.before == {"label": "Data access agreed"} and update.after == {"label": "Data access signed"}
    with pytest.raises(ValidationFailed, match="needs a text"):
        services.gate_criterion_update(criterion=criterion, actor=people["owner"], label="  ")
    services.gate_criterion_set_done(criterion=criterion, actor=people["owner"], done=True)
    services.gate_review_open(gate=gate, actor=people["owner"])
    services.gate_vote(gate=gate, voter=people["owner"], verdict="go")
    services.gate_decide(gate=gate, actor=people["owner"], verdict="go")
    gate.refresh_from_db()
    with pytest.raises(InvalidState, match="already decided"):
        services.gate_criterion_remove(criterion=GateCriterion.objects.get(pk=criterion.pk), actor=people["owner"])
    with pytest.raises(InvalidState, match="already decided"):
        services.gate_evidence_remove(evidence=GateEvidence.objects.get(pk=evidence.pk), actor=people["ds"])
    assert GateCriterion.objects.filter(pk=criterion.pk).exists() and GateEvidence.objects.filter(pk=evidence.pk)


# --- REST ------------------------------------------------------------------------------


def test_api_edits_and_removes_kpis_with_the_role_rules(kpi, people):
    url = f"/api/v1/kpis/{kpi.pk}/"
    assert _api(people["viewer"]).patch(url, {"target": 95}, format="json").status_code == 403
    assert _api(people["outsider"]).delete(url).status_code == 404
    assert _api(people["viewer"]).delete(url).status_code == 403
    answer = _api(people["ds"]).patch(url, {"target": 95, "unit": "%"}, format="json")
    assert answer.status_code == 200 and answer.json()["target"] == 95
    assert _api(people["ds"]).delete(url).status_code == 204
    assert not Kpi.objects.filter(pk=kpi.pk).exists()
    assert _actions()[-2:] == ["kpi.update", "kpi.delete"]


def test_api_backfills_by_date_and_refuses_future_and_absurd_values(kpi, people):
    url = f"/api/v1/kpis/{kpi.pk}/values/"
    ds = _api(people["ds"])
    day = (timezone.localdate() - timedelta(days=3)).isoformat()
    answer = ds.post(url, {"value": 72.5, "date": day}, format="json")
    assert answer.status_code == 201 and answer.json()["recorded_at"].startswith(day)
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    refused = ds.post(url, {"value": 72.5, "date": tomorrow}, format="json")
    assert refused.status_code == 400 and "in the future" in str(refused.json())
    absurd = ds.post(url, {"value": 7250}, format="json")
    assert absurd.status_code == 400 and "between 0 and 100" in str(absurd.json())
    both = ds.post(url, {"value": 1, "date": day, "recorded_at": timezone.now().isoformat()}, format="json")
    assert both.status_code == 400
    assert kpi.values.count() == 1


def test_api_edits_and_removes_criteria_and_evidence_with_the_role_rules(gate, people):
    criterion, evidence = gate.criteria.get(), gate.evidence.get()
    c_url = f"/api/v1/gates/{gate.pk}/criteria/{criterion.pk}/"
    e_url = f"/api/v1/gates/{gate.pk}/evidence/{evidence.pk}/"
    ds = _api(people["ds"])
    assert ds.patch(c_url, {"label": "Reworded"}, format="json").status_code == 403  # owner's to reword
    assert ds.patch(c_url, {"done": True}, format="json").status_code == 200  # a data scientist ticks
    assert ds.delete(c_url).status_code == 403
    assert _api(people["viewer"]).delete(e_url).status_code == 403
    assert _api(people["owner"]).patch(c_url, {}, format="json").status_code == 400
    answer = _api(people["owner"]).patch(c_url, {"label": "Reworded"}, format="json")
    assert answer.status_code == 200 and answer.json()["label"] == "Reworded" and answer.json()["done"] is True
    assert ds.patch(e_url, {"label": "DPIA v2"}, format="json").json()["label"] == "DPIA v2"
    listed = _api(people["viewer"]).get(f"/api/v1/gates/{gate.pk}/").json()
    assert [e["label"] for e in listed["evidence"]] == ["DPIA v2"]
    assert ds.delete(e_url).status_code == 204 and ds.delete(e_url).status_code == 404
    assert _api(people["owner"]).delete(c_url).status_code == 204
    assert not gate.criteria.exists() and not gate.evidence.exists()
    assert {"gate.criterion_update", "gate.criterion_remove", "gate.evidence_update", "gate.evidence_remove"} <= set(
        _actions()
    )


# --- pages -----------------------------------------------------------------------------


def test_dashboard_edits_backfills_and_removes_a_kpi(kpi, people):
    client = _page(people["ds"])
    url = f"/projects/{kpi.project.slug}/kpis/{kpi.pk}/"
    page = client.get(f"/projects/{kpi.project.slug}/").content.decode()
    assert "Edit or remove" in page and 'type="date"' in page
    day = timezone.localdate() - timedelta(days=2)
    page = client.post(url, {"value": "64", "date": day.isoformat()}, follow=True).content.decode()
    assert f"Recorded 64 for &#x27;Recall&#x27; on {day.isoformat()}." in page
    assert kpi.values.get().recorded_at.date() == day
    page = client.post(url, {"value": "640"}, follow=True).content.decode()
    assert "a value lies between 0 and 100, not 640" in page and kpi.values.count() == 1
    prefix = f"kpi{kpi.pk}-"
    form = {f"{prefix}name": "Recall@10", f"{prefix}unit": "%", f"{prefix}direction": "higher"}
    form |= {f"{prefix}target": "92", f"{prefix}source_type": "manual", "action": "edit"}
    page = client.post(url, form, follow=True).content.decode()
    kpi.refresh_from_db()
    assert "KPI &#x27;Recall@10&#x27; saved." in page and kpi.target == 92 and kpi.baseline is None
    client.post(url, {"action": "remove"}, follow=True)
    assert not Kpi.objects.filter(pk=kpi.pk).exists()
    assert "kpi.delete" in _actions()


def test_viewer_cannot_edit_a_kpi_through_the_page(kpi, people):
    client = _page(people["viewer"])
    assert "Edit or remove" not in client.get(f"/projects/{kpi.project.slug}/").content.decode()
    assert client.post(f"/projects/{kpi.project.slug}/kpis/{kpi.pk}/", {"action": "remove"}).status_code == 403
    assert Kpi.objects.filter(pk=kpi.pk).exists()


def test_gate_page_edits_and_removes_criteria_and_evidence(gate, people):
    url = f"/projects/{gate.project.slug}/gates/{gate.pk}/"
    criterion, evidence = gate.criteria.get(), gate.evidence.get()
    ds = _page(people["ds"])
    page = ds.get(url).content.decode()
    assert 'value="evidence_remove"' in page and 'value="criterion_remove"' not in page
    page = ds.post(url + "act/", {"action": "criterion_remove", "criterion": criterion.pk}, follow=True)
    assert "needs the Owner role" in page.content.decode() and gate.criteria.exists()
    ds.post(url + "act/", {"action": "evidence_edit", "evidence": evidence.pk, "label": "DPIA final"})
    assert gate.evidence.get().label == "DPIA final"
    owner = _page(people["owner"])
    owner.post(url + "act/", {"action": "criterion_edit", "criterion": criterion.pk, "label": "Signed"})
    assert gate.criteria.get().label == "Signed"
    page = owner.post(url + "act/", {"action": "criterion_remove", "criterion": "x"}, follow=True).content.decode()
    assert "That criterion no longer exists." in page
    owner.post(url + "act/", {"action": "criterion_remove", "criterion": criterion.pk})
    page = ds.post(url + "act/", {"action": "evidence_remove", "evidence": evidence.pk}, follow=True).content.decode()
    assert "Evidence unlinked." in page and not gate.criteria.exists() and not gate.evidence.exists()
