"""Browser: a user deploys a registered version, calls it, watches the dashboard move,
starts a failing canary and sees it rolled back, then a better one promoted."""

import time

import pytest
import requests
from sklearn.datasets import load_iris

from deployments import links, services
from deployments.models import Endpoint, PredictionLog, RevisionStatus
from deployments.tasks import endpoints_policy_check_task
from tests.deployments.conftest import COLUMNS, make_model_dirs, register_version
from tests.e2e.conftest import login
from tests.factories import UserFactory, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

X, Y = load_iris(return_X_y=True)
PUSH_WAIT = 2.5


@pytest.fixture(scope="module")
def model_dirs():
    return make_model_dirs()


def call(url, token, n, *, feedback=True):
    """n single-row requests with true labels sent back as ground truth."""
    for i in range(n):
        row = [float(v) for v in X[(i * 7) % len(X)]]
        response = requests.post(
            f"{url}/invocations",
            json={"dataframe_split": {"columns": COLUMNS, "data": [row]}},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        if feedback:
            body = {"request_id": response.headers["x-request-id"], "actual": [int(Y[(i * 7) % len(X)])]}
            requests.post(f"{url}/feedback", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def wait_until(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except Exception:  # noqa: S110 - SQLite's shared test database may be briefly locked
            pass
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_deploy_call_watch_rollback_and_promote(live_asgi, browser, shot_dir, model_dirs, monkeypatch):
    monkeypatch.setattr(links, "production_gate_passed", lambda *, project: True)
    owner = UserFactory(username="nadia")
    project = make_project(owner=owner, slug="flowers", name="Flower sorting")
    weak = register_version(project=project, user=owner, model_dir=model_dirs["weak"])
    broken = register_version(project=project, user=owner, model_dir=model_dirs["broken"])
    strong = register_version(project=project, user=owner, model_dir=model_dirs["iris"])
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    login(page, live_asgi, owner.username)

    page.goto(f"{live_asgi}/deployments/")
    page.screenshot(path=str(shot_dir / "deployments-empty.png"), full_page=True)
    page.click("text=Create your first endpoint")
    page.select_option("select[name=project]", "flowers")
    page.fill("input[name=name]", "Iris sorter")
    page.click("button:has-text('Create')")
    page.wait_for_url(f"{live_asgi}/deployments/iris-sorter/")
    token = page.locator(".secret pre").inner_text().strip()
    page.fill("input[name=model]", "flowers/iris")
    page.fill("input[name=version]", str(weak.version))
    page.click("button:has-text('Deploy')")
    page.wait_for_selector("text=Revision 1 is deploying.")

    endpoint = Endpoint.objects.get(slug="iris-sorter")
    services.endpoint_update(
        endpoint=endpoint, actor=owner, policy={"breach_seconds": 0, "min_requests": 10, "min_feedback": 20}
    )
    url = f"{live_asgi}/serve/iris-sorter"
    wait_until(
        lambda: (
            requests.post(
                f"{url}/invocations",
                json={"instances": [[1.0, 1.0, 1.0, 1.0]]},
                headers={"Authorization": f"Bearer {token}"},
            ).status_code
            == 200
        )
    )
    call(url, token, 30)
    page.reload()
    page.wait_for_function("document.getElementById('live-state').textContent.startsWith('live')", timeout=20000)
    page.wait_for_selector("#chart-traffic .main-svg")
    page.screenshot(path=str(shot_dir / "deployment-dashboard.png"), full_page=True)

    # A canary that fails: the champion answers for it, the policy rolls it back.
    services.revision_deploy(
        endpoint=endpoint,
        actor=owner,
        model_name="flowers/iris",
        version=broken.version,
        role="canary",
        traffic=0.5,
        trusted=True,
    )
    wait_until(lambda: Endpoint.objects.get(pk=endpoint.pk).challenger.status == RevisionStatus.READY)
    call(url, token, 40, feedback=False)
    wait_until(lambda: PredictionLog.objects.filter(endpoint_id=endpoint.pk, status=500).count() >= 10)
    endpoints_policy_check_task()
    page.reload()
    page.wait_for_selector("#timeline .ev-rolled_back.ev-auto")
    assert "error rate" in page.locator("#timeline .ev-rolled_back").first.inner_text()
    page.screenshot(path=str(shot_dir / "deployment-rolled-back.png"), full_page=True)

    # A better canary: live accuracy from ground truth beats the champion's.
    services.revision_deploy(
        endpoint=endpoint, actor=owner, model_name="flowers/iris", version=strong.version, role="canary", traffic=0.5
    )
    wait_until(lambda: Endpoint.objects.get(pk=endpoint.pk).challenger.status == RevisionStatus.READY)
    call(url, token, 80)
    wait_until(
        lambda: (
            PredictionLog.objects.filter(
                endpoint_id=endpoint.pk, revision_id=Endpoint.objects.get(pk=endpoint.pk).challenger_id
            ).count()
            >= 20
        )
    )
    time.sleep(1)
    endpoints_policy_check_task()
    endpoint.refresh_from_db()
    assert endpoint.champion.model_version == strong and endpoint.challenger is None
    page.reload()
    page.wait_for_selector("#timeline .ev-promoted.ev-auto")
    page.wait_for_function("document.getElementById('live-state').textContent.startsWith('live')", timeout=20000)
    page.screenshot(path=str(shot_dir / "deployment-promoted.png"), full_page=True)
    # Close the dashboard's websocket while the server still runs, so its 2-second
    # push loop ends here and not in a later test.
    page.close()
    time.sleep(PUSH_WAIT)
