"""Browser: what an open page shows follows the live stream without a reload: a job
page leaves "Queued" when its job runs, an endpoint's champion card leaves "Deploying"
when the revision is ready, and a rolled-back challenger loses its Promote button.
The changes are made from this (test) thread, as the Celery worker thread or the
policies would: not from a request on the server's own loop."""

import pytest

from deployments import links, services
from deployments.models import Endpoint
from jobs.models import JobStatus, Reason
from jobs.services import job_submit, job_transition
from tests.deployments.conftest import make_model_dirs, register_version
from tests.e2e.conftest import elsewhere, login
from tests.factories import UserFactory, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_job_page_follows_the_job_without_reload(live_asgi, browser, shot_dir):
    # Given an open job page of a queued job
    user = UserFactory(username="lena")
    project = make_project(owner=user, slug="live-jobs")
    job = job_submit(project=project, user=user, script="print('hi')", dispatch=False)
    page = browser.new_page(viewport={"width": 1300, "height": 800})
    login(page, live_asgi, user.username)
    page.goto(f"{live_asgi}/jobs/{job.pk}/")
    page.wait_for_selector("[data-status]:has-text('Queued')")
    page.wait_for_selector("#job[data-live=open]")  # the socket's snapshot arrived

    # When a worker starts it
    elsewhere(job_transition, job=job, to=JobStatus.STARTING, reason=Reason.DISPATCHED)
    elsewhere(job_transition, job=job, to=JobStatus.RUNNING, reason=Reason.STARTED)

    # Then the page says running, and the history has the steps
    page.wait_for_selector("h1 [data-status]:has-text('Running')", timeout=5000)
    assert page.locator("#job h1").inner_text().startswith(f"#{job.pk}")
    assert "→ running" in page.locator("#job-events").inner_text()
    page.screenshot(path=str(shot_dir / "live-job-running.png"), full_page=True)
    page.close()


def test_endpoint_cards_follow_ready_and_rollback(live_asgi, browser, shot_dir, monkeypatch):
    monkeypatch.setattr(links, "production_gate_passed", lambda *, project: True)
    dirs = make_model_dirs()
    owner = UserFactory(username="omar")
    project = make_project(owner=owner, slug="live-flowers")
    first = register_version(project=project, user=owner, model_dir=dirs["iris"])
    second = register_version(project=project, user=owner, model_dir=dirs["iris2"])
    endpoint, _ = services.endpoint_create(project=project, actor=owner, name="Live sorter")
    champion = services.revision_deploy(endpoint=endpoint, actor=owner, model_name="live-flowers/iris", version=1)

    # Given the page open while the champion deploys
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    login(page, live_asgi, owner.username)
    page.goto(f"{live_asgi}/deployments/{endpoint.slug}/")
    page.wait_for_selector("#champion-status:has-text('Deploying')")
    page.wait_for_function("document.getElementById('live-state').textContent.startsWith('live')")

    # When a serving process reports it loaded
    elsewhere(services.revision_report_load, revision_id=champion.pk, loaded=True)

    # Then the champion card says ready
    page.wait_for_selector("#champion-status:has-text('Ready')", timeout=5000)

    # Given a ready canary with its Promote button
    canary = services.revision_deploy(
        endpoint=endpoint, actor=owner, model_name="live-flowers/iris", version=second.version, role="canary"
    )
    elsewhere(services.revision_report_load, revision_id=canary.pk, loaded=True)
    page.wait_for_selector("#challenger-card [data-promote]:visible", timeout=5000)
    assert page.locator("#challenger-card [data-rev-name]").inner_text().startswith(f"r{canary.number}")

    # When the policy rolls it back
    elsewhere(
        services.challenger_rollback,
        endpoint=Endpoint.objects.get(pk=endpoint.pk),
        actor=None,
        reason="accuracy below champion",
        automatic=True,
    )

    # Then the card offers nothing to promote, and the revision table says so
    page.wait_for_selector("#challenger-card [data-rev-none]:visible", timeout=5000)
    assert page.locator("#challenger-card [data-promote]").is_hidden()
    page.wait_for_selector(f"[data-revision-status='{canary.number}']:has-text('Rolled back')")
    page.screenshot(path=str(shot_dir / "live-endpoint-rolled-back.png"), full_page=True)
    assert first.version == 1
    page.close()


def test_the_mlflow_clients_view_run_link_opens_our_run_page(live_asgi, browser):
    from experiments import services as experiment_services

    # Given a run, and the link the MLflow client prints for it
    user = UserFactory(username="rita")
    project = make_project(owner=user, slug="links")
    experiment = experiment_services.experiment_get_or_create(project=project, name="trials", user=user)
    run = experiment_services.run_create(experiment=experiment, user=user, name="first try")
    link = f"{live_asgi}/#/experiments/{experiment.pk}/runs/{run.pk}"
    page = browser.new_page()

    # When someone signed out opens it, signs in
    page.goto(link)
    page.wait_for_url(f"{live_asgi}/accounts/login/**")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "pw-123456")
    page.click("button[type=submit]")

    # Then our run page opens; and once signed in, the link goes straight there
    page.wait_for_url(f"{live_asgi}/runs/{run.pk}/")
    page.goto(f"{live_asgi}/projects/")  # another document: the link is a real navigation
    page.goto(link)
    page.wait_for_url(f"{live_asgi}/runs/{run.pk}/")
    assert page.locator("h1").inner_text().startswith("first try")
    page.close()
