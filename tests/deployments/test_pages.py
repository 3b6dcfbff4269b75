"""The endpoint page's actions: a Promote or Roll back sent from a page that still
shows a revision the endpoint has left is answered with that revision's real state."""

from django.test import Client
import pytest

from deployments import links, services
from deployments.models import Endpoint, RevisionStatus
from tests.deployments.conftest import register_version
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def rolled_back(model_dirs, monkeypatch):
    monkeypatch.setattr(links, "production_gate_passed", lambda *, project: True)
    owner = UserFactory()
    project = make_project(owner=owner, slug="pages-flowers")
    register_version(project=project, user=owner, model_dir=model_dirs["iris"])
    register_version(project=project, user=owner, model_dir=model_dirs["iris2"])
    endpoint, _ = services.endpoint_create(project=project, actor=owner, name="Sorter")
    champion = services.revision_deploy(endpoint=endpoint, actor=owner, model_name="pages-flowers/iris", version=1)
    services.revision_report_load(revision_id=champion.pk, loaded=True)
    canary = services.revision_deploy(
        endpoint=endpoint, actor=owner, model_name="pages-flowers/iris", version=2, role="canary"
    )
    services.revision_report_load(revision_id=canary.pk, loaded=True)
    services.challenger_rollback(endpoint=endpoint, actor=None, reason="accuracy", automatic=True)
    client = Client()
    client.force_login(owner)
    return client, Endpoint.objects.get(pk=endpoint.pk), canary


def test_a_stale_promote_answers_already_rolled_back(rolled_back):
    client, endpoint, canary = rolled_back
    response = client.post(
        f"/deployments/{endpoint.slug}/action/", {"action": "promote", "revision": canary.number}, follow=True
    )
    assert f"Cannot promote revision {canary.number}: it is already rolled back" in response.content.decode()
    endpoint.refresh_from_db()
    canary.refresh_from_db()
    assert endpoint.champion_id != canary.pk and canary.status == RevisionStatus.ROLLED_BACK


def test_the_page_offers_no_promote_once_the_challenger_is_gone(rolled_back):
    client, endpoint, _ = rolled_back
    html = client.get(f"/deployments/{endpoint.slug}/").content.decode()
    assert 'id="challenger-card"' in html
    assert "No challenger" not in html and "None. Deploy a version as a canary" in html
    assert html.count("data-rev hidden") == 1  # the challenger's block, not the champion's


def test_the_policies_form_saves_and_reports_every_error_at_once(rolled_back):
    client, endpoint, _ = rolled_back
    fields = {"max_error_rate": "0.1", "max_p99_ms": "300", "max_psi": "0.3", "breach_seconds": "5"}
    fields |= {"min_requests": "10", "kpi_metric": "accuracy", "min_feedback": "30", "confidence": "0.9"}
    fields |= {"promote_margin": "0", "kpi_rollback": "on", "min_reference_rows": "50", "auto_rollback": "on"}

    bad = client.post(
        f"/deployments/{endpoint.slug}/policies/", {**fields, "max_error_rate": "2", "confidence": "x"}, follow=True
    )
    text = bad.content.decode()
    assert "Policies not saved" in text and "Max error rate" in text and "Confidence" in text
    endpoint.refresh_from_db()
    assert endpoint.policy["min_feedback"] == 100  # nothing changed

    client.post(f"/deployments/{endpoint.slug}/policies/", fields)
    endpoint.refresh_from_db()
    assert endpoint.policy["min_feedback"] == 30 and endpoint.policy["breach_seconds"] == 5
    assert endpoint.auto_rollback and not endpoint.auto_promote
    assert endpoint.events.filter(kind="settings_changed").exists()


def test_register_a_runs_logged_model_as_a_new_model_then_a_new_version(db):
    from experiments import services as exp_services
    from registry.models import ModelVersion

    owner, viewer = UserFactory(), UserFactory()
    project = make_project(owner=owner, slug="reg-page", members={viewer: "viewer"})
    experiment = exp_services.experiment_get_or_create(project=project, name="train", user=owner)
    run = exp_services.run_create(experiment=experiment, user=owner)
    logged = [exp_services.logged_model_create(experiment=experiment, user=owner, name="m", source_run=run)]
    logged.append(exp_services.logged_model_create(experiment=experiment, user=owner, name="m2", source_run=run))
    client, onlooker = Client(), Client()
    client.force_login(owner)
    onlooker.force_login(viewer)

    assert onlooker.post(f"/runs/{run.pk}/register/", {"logged_model": logged[0].pk, "name": "x"}).status_code == 403
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert page.count("register-form") == 2
    first = client.post(f"/runs/{run.pk}/register/", {"logged_model": logged[0].pk, "name": "churn"})
    second = client.post(f"/runs/{run.pk}/register/", {"logged_model": logged[1].pk, "name": "churn"})
    assert first["Location"].endswith("/models/reg-page/churn/versions/1/")
    assert second["Location"].endswith("/models/reg-page/churn/versions/2/")
    assert [mv.logged_model_id for mv in ModelVersion.objects.order_by("version")] == [lm.pk for lm in logged]
    assert "register-form" not in client.get(f"/runs/{run.pk}/").content.decode()  # both registered, linked
