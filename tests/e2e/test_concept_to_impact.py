"""Concept to impact in one sitting, in Chromium, as three people:

- Sofia, a stakeholder, runs the workshop: a board, an idea, the project it becomes,
  its KPIs and gates (she owns the project, so she decides them);
- Dana, a data scientist, trains random forests as jobs from the UI, registers the
  logged models from their runs and links the evidence for the Production gate;
- Mel, an ML engineer, creates the endpoint, deploys with the pickers, edits the
  policies and watches the dashboard while a worse canary is rolled back for accuracy
  and a better one is promoted with its statistical test in the event.

No API call but the scoring traffic a client sends (`requests`, the curl of the
endpoint page). Two stand-ins for processes the embedded platform runs by itself: the
Celery worker (a job is run by `runner.job_execute` on a thread) and beat (the policy
check is called on a thread, as its periodic task would be). Screenshots of every step
go to var/screens/concept-to-impact/."""

from pathlib import Path
import threading

import pytest
import requests
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

from deployments import selectors as deployment_selectors
from deployments.models import Endpoint, RevisionStatus
from deployments.tasks import endpoints_policy_check_task
from jobs import runner
from projects.models import Kpi
from tests.e2e.conftest import elsewhere, login
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENS = Path(__file__).resolve().parents[2] / "var" / "screens" / "concept-to-impact"
X, Y = load_iris(return_X_y=True, as_frame=True)
# The rows the job's template trains on: live traffic drawn from them must read as
# "no drift" against the training-data reference.
X_TRAIN, _, Y_TRAIN, _ = train_test_split(X, Y, random_state=0)
COLUMNS = list(X.columns)
ROWS_PER_REQUEST = 5


class Screens:
    def __init__(self) -> None:
        SCREENS.mkdir(parents=True, exist_ok=True)
        for old in SCREENS.glob("*.png"):
            old.unlink()
        self.n = 0

    def __call__(self, page, name: str) -> None:
        self.n += 1
        page.screenshot(path=str(SCREENS / f"{self.n:02d}-{name}.png"), full_page=True)


def browser_for(browser, base: str, username: str):
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    login(page, base, username)
    return page


def score(base: str, slug: str, token: str, requests_n: int, *, offset: int = 0) -> int:
    """A client's traffic: batches of training rows, each answer's ground truth sent
    back to /feedback. Returns how many requests were answered 200."""
    ok = 0
    for i in range(requests_n):
        start = ((offset + i) * ROWS_PER_REQUEST) % (len(X_TRAIN) - ROWS_PER_REQUEST)
        rows = X_TRAIN.iloc[start : start + ROWS_PER_REQUEST]
        headers = {"Authorization": f"Bearer {token}"}
        body = {"dataframe_split": {"columns": COLUMNS, "data": rows.values.tolist()}}
        answer = requests.post(f"{base}/serve/{slug}/invocations", json=body, headers=headers, timeout=30)
        if answer.status_code != 200:
            continue
        ok += 1
        truth = [int(v) for v in Y_TRAIN.iloc[start : start + ROWS_PER_REQUEST]]
        feedback = {"request_id": answer.headers["x-request-id"], "actual": truth}
        requests.post(f"{base}/serve/{slug}/feedback", json=feedback, headers=headers, timeout=30)
    return ok


def run_job_in_background(job_id: int) -> threading.Thread:
    thread = threading.Thread(target=runner.job_execute, kwargs={"job_id": job_id, "worker": "e2e"}, daemon=True)
    thread.start()
    return thread


def beat_tick() -> None:
    elsewhere(endpoints_policy_check_task)


def wait_labelled(endpoint: Endpoint, want: int) -> None:
    """Until the serving plane's log flusher has stored the traffic: `want` labelled
    predictions for each revision in traffic (read from the database, no API)."""
    for _ in range(300):
        endpoint = Endpoint.objects.select_related("champion", "challenger").get(pk=endpoint.pk)
        arms = [r for r in (endpoint.champion, endpoint.challenger) if r is not None]
        since = endpoint.challenger.created_at if endpoint.challenger else None
        counts = [len(deployment_selectors.live_pairs(endpoint=endpoint, revision_id=r.pk, since=since)) for r in arms]
        if min(counts) >= want:
            return
        threading.Event().wait(0.2)
    raise AssertionError(f"labelled predictions per arm: {counts}, wanted {want}")


def test_concept_to_impact(live_asgi, browser, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.MLP_PUBLIC_URL = live_asgi  # where the jobs' MLflow clients log
    settings.DEPLOYMENT_KPI_FEED_INTERVAL = 0  # the project KPI follows every policy check
    shot = Screens()
    base = live_asgi
    UserFactory(username="sofia")
    UserFactory(username="dana")
    UserFactory(username="mel")
    sofia = browser_for(browser, base, "sofia")

    # -- the workshop: a board, an idea, the project it becomes ------------------------
    sofia.goto(f"{base}/ideation/")
    sofia.fill("input[name=title]", "Flower shop workshop")
    sofia.click("button:has-text('Open board')")
    sofia.wait_for_selector("#live-status.badge-ok")
    lane = sofia.locator(".lane", has=sofia.locator(".lane-title", has_text="Pain points"))
    lane.locator(".add-card input").fill("Sort incoming iris flowers automatically")
    lane.locator(".add-card button").click()
    card = sofia.locator(".idea-card", has_text="Sort incoming iris flowers automatically")
    card.wait_for()
    shot(sofia, "board-idea")
    card.locator(".idea-title").click()
    sofia.wait_for_selector("#promote")
    sofia.fill("#id_name", "Iris sorting")
    sofia.fill("#id_kpi_name", "Sorting accuracy")
    sofia.select_option("#id_kpi_direction", "higher")
    sofia.fill("#id_kpi_baseline", "0.7")
    sofia.fill("#id_kpi_target", "0.95")
    sofia.click("#promote button[type=submit]")
    sofia.wait_for_url(f"{base}/projects/iris-sorting/")

    # The KPI is fed by the endpoint-to-be; the team joins.
    sofia.click("#kpis summary:has-text('Add a KPI')")
    kpi_form = sofia.locator("#kpis form.row-form")
    kpi_form.locator("input[name=name]").fill("Live sorting accuracy")
    kpi_form.locator("select[name=direction]").select_option("higher")
    kpi_form.locator("input[name=baseline]").fill("0.7")
    kpi_form.locator("input[name=target]").fill("0.95")
    kpi_form.locator("input[name=threshold]").fill("0.9")
    kpi_form.locator("select[name=source_type]").select_option("endpoint_metric")
    kpi_form.locator("input[name=source_key]").fill("iris-sorter:accuracy")
    kpi_form.locator("button:has-text('Add KPI')").click()
    sofia.wait_for_selector(".kpi:has-text('Live sorting accuracy')")
    for username, role in (("dana", "data_scientist"), ("mel", "ml_engineer")):
        sofia.fill("#members input[name=username]", username)
        sofia.select_option("#members form.row-form select[name=role]", role)
        sofia.click("button:has-text('Add member')")
        sofia.wait_for_selector(f"text={username} joined as")
    shot(sofia, "project-kpis")

    # The gate into Experimentation: Sofia decides it.
    decide_gate(sofia, base, "Experimentation", "Framed with the shop; the KPI is agreed.")
    shot(sofia, "gate-experimentation")

    # -- Dana trains three forests as jobs ---------------------------------------------
    dana = browser_for(browser, base, "dana")
    jobs = {}
    for name, params in (
        ("baseline forest", "max_depth=1\nn_estimators=10"),
        ("noisy-label forest", "label_noise=0.9"),
        ("full forest", "n_estimators=100"),
    ):
        dana.goto(f"{base}/jobs/new/?template=random-forest&project=iris-sorting")
        dana.fill("input[name=name]", name)
        dana.fill("textarea[name=params]", params)
        dana.fill("input[name=experiment_name]", "iris-forests")
        if not jobs:
            shot(dana, "job-submit-template")
        dana.click("button:has-text('Submit job')")
        dana.wait_for_url(f"{base}/jobs/*/")
        job_id = int(dana.url.rstrip("/").rsplit("/", 1)[1])
        jobs[name] = (job_id, run_job_in_background(job_id))
    # The open job page follows the last job live: no "Queued" once it runs.
    dana.wait_for_selector("#job[data-live=open]")
    dana.wait_for_selector("h1 [data-status]:has-text('Succeeded')", timeout=120_000)
    shot(dana, "job-succeeded-live")
    for job_id, thread in jobs.values():
        thread.join(180)

    # Each run's logged model becomes a version of one registered model.
    versions = {}
    for name, (job_id, _) in jobs.items():
        dana.goto(f"{base}/jobs/{job_id}/")
        assert dana.locator("h1 [data-status]").inner_text() == "Succeeded", name
        dana.click("dl.spec a[href^='/runs/']")
        dana.wait_for_selector("#logged-models")
        if not versions:
            dana.wait_for_selector("#metrics .chart .main-svg")
            shot(dana, "run-logged-model")
        form = dana.locator("#logged-models form.register-form")
        form.locator("input[name=name]").fill("iris-classifier")
        form.locator("button:has-text('Register')").click()
        dana.wait_for_selector("text=Registered as iris-classifier version")
        versions[name] = int(dana.url.rstrip("/").rsplit("/", 1)[1])
    assert sorted(versions.values()) == [1, 2, 3]
    assert dana.locator("#job-provenance").is_visible()  # job-trained: its code, command, params
    shot(dana, "model-version-provenance")

    # -- the Production gate, with a model version as evidence -------------------------
    sofia.goto(f"{base}/projects/iris-sorting/")
    gate_url = add_gate(sofia, "Production")
    dana.goto(gate_url)
    dana.click("summary:has-text('Link evidence')")
    dana.select_option("#ev-kind", "run")
    dana.fill("#ev-ref", "0123456789abcdef0123456789abcdef")
    dana.click("button:has-text('Link')")
    dana.wait_for_selector("text=No run '0123456789abcdef0123456789abcdef' in this project.")
    dana.click("summary:has-text('Link evidence')")
    dana.select_option("#ev-kind", "model_version")
    dana.locator("#ev-ref").press_sequentially("iris-classifier/")
    baseline_version = versions["baseline forest"]
    dana.fill("#ev-ref", f"iris-classifier/{baseline_version}")
    dana.fill("#ev-label", "baseline forest, the first to serve")
    dana.click("button:has-text('Link')")
    dana.wait_for_selector("text=Evidence linked.")
    shot(dana, "gate-evidence")
    decide_gate(sofia, base, "Production", "The baseline is good enough to start; canaries will improve it.", gate_url)
    shot(sofia, "gate-production")

    # -- Mel: an endpoint, policies, the champion deployed with the pickers ------------
    mel = browser_for(browser, base, "mel")
    mel.goto(f"{base}/deployments/new/")
    mel.select_option("select[name=project]", "iris-sorting")
    mel.fill("input[name=name]", "Iris sorter")
    mel.click("button:has-text('Create')")
    mel.wait_for_url(f"{base}/deployments/iris-sorter/")
    token = mel.locator(".secret pre").inner_text().strip()
    policies = mel.locator("#policies-form form")
    policies.locator("input[name=min_feedback]").fill("60")
    policies.locator("input[name=min_requests]").fill("10")
    policies.locator("button:has-text('Save policies')").click()
    mel.wait_for_selector("text=Policies saved.")
    deploy = mel.locator("#deploy-form")
    deploy.locator("input[name=model]").press_sequentially("iris-sorting/iris")
    deploy.locator("input[name=model]").fill("iris-sorting/iris-classifier")
    options = mel.locator("#picker-versions option")
    assert options.count() == 3  # the versions picker followed the model typed
    deploy.locator("input[name=version]").fill(str(baseline_version))
    deploy.locator("select[name=reference_mode]").select_option("auto")
    shot(mel, "deploy-pickers")
    deploy.locator("button:has-text('Deploy')").click()
    mel.wait_for_selector("text=Revision 1 is deploying.")
    endpoint = Endpoint.objects.get(slug="iris-sorter")
    wait_serving(base, token)
    mel.wait_for_selector("#champion-status:has-text('Ready')", timeout=30_000)  # live, no reload

    # Traffic from the training distribution: the drift reading must say so.
    assert score(base, "iris-sorter", token, 40) == 40
    wait_labelled(endpoint, 150)
    beat_tick()
    champion = Endpoint.objects.get(pk=endpoint.pk).champion
    reference = deployment_selectors.drift_reference(revision=champion, min_rows=100)
    assert reference["usable"] and reference["rows"] == len(X_TRAIN), reference
    drift = deployment_selectors.drift(revision=champion, psi_threshold=0.2, min_rows=100)
    assert drift and all(not d["drifted"] for d in drift.values()), drift
    mel.wait_for_selector("#champion-card [data-rev-reference]:has-text('training data')")
    mel.wait_for_selector("#chart-drift .scatterlayer .trace", timeout=20_000)
    shot(mel, "dashboard-champion")

    # -- a worse canary, rolled back for accuracy --------------------------------------
    deploy_canary(mel, base, versions["noisy-label forest"])
    wait_ready(base, token, endpoint)
    score(base, "iris-sorter", token, 60, offset=40)
    wait_labelled(endpoint, 60)
    beat_tick()
    mel.wait_for_selector("#timeline .ev-rolled_back.ev-auto", timeout=10_000)
    rolled = mel.locator("#timeline .ev-rolled_back").first.inner_text()
    assert "worse on the KPI" in rolled and "p=" in rolled, rolled
    mel.wait_for_selector("#challenger-card [data-rev-none]:visible")
    shot(mel, "canary-rolled-back")

    # -- a better canary, promoted with its test in the event --------------------------
    deploy_canary(mel, base, versions["full forest"])
    wait_ready(base, token, endpoint)
    score(base, "iris-sorter", token, 60, offset=100)
    wait_labelled(endpoint, 60)
    beat_tick()
    mel.wait_for_selector("#timeline .ev-promoted.ev-auto", timeout=10_000)
    promoted = mel.locator("#timeline .ev-promoted").first.inner_text()
    assert "z-test" in promoted and "p=" in promoted, promoted
    mel.wait_for_selector(f"#champion-card [data-rev-name]:has-text('v{versions['full forest']}')")
    shot(mel, "canary-promoted")
    endpoint.refresh_from_db()
    assert endpoint.champion.model_version_number == versions["full forest"]
    assert endpoint.revisions.get(model_version_number=versions["noisy-label forest"]).status == (
        RevisionStatus.ROLLED_BACK
    )

    # -- the version page knows where it serves; the project KPI moved ----------------
    mel.goto(f"{base}/models/iris-sorting/iris-classifier/versions/{versions['full forest']}/")
    mel.wait_for_selector("#serving td:has-text('Iris sorter')")
    shot(mel, "version-serving")
    kpi = Kpi.objects.get(name="Live sorting accuracy")
    values = list(kpi.values.order_by("pk").values_list("value", flat=True))
    assert len(values) >= 2 and values[-1] > values[0] + 0.1, values
    sofia.goto(f"{base}/projects/iris-sorting/")
    sofia.wait_for_selector(".kpi:has-text('Live sorting accuracy') .kpi-chart .main-svg")
    shot(sofia, "project-kpi-moved")
    for page in (sofia, dana, mel):
        page.close()


def add_gate(page, stage: str) -> str:
    page.click("#gates summary:has-text('Add a gate')")
    page.select_option("#id_to_stage", stage)
    page.click("#gates button:has-text('Add gate')")
    page.wait_for_selector(f"h1:has-text('Gate to {stage}')")
    return page.url


def decide_gate(page, base: str, stage: str, rationale: str, gate_url: str | None = None) -> None:
    if gate_url is None:
        page.goto(f"{base}/projects/iris-sorting/")
        gate_url = add_gate(page, stage)
    page.goto(gate_url)
    page.click("#review button:has-text('Open the review')")
    page.check(".vote-form input[value=go]")
    page.click(".vote-form button")
    page.wait_for_selector("text=Your vote (Go) is recorded.")
    page.check(".decide-form input[value=go]")
    page.fill("#rationale", rationale)
    page.click(".decide-form button")
    page.wait_for_selector("#decision h2:has-text('Decision: Go')")


def deploy_canary(page, base: str, version: int) -> None:
    page.goto(f"{base}/models/iris-sorting/iris-classifier/versions/{version}/")
    form = page.locator("#deploy-version")
    form.locator("select[name=endpoint]").select_option("iris-sorter")
    form.locator("select[name=role]").select_option("canary")
    form.locator("input[name=traffic]").fill("0.5")
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"{base}/deployments/iris-sorter/")
    page.wait_for_selector("text=is deploying.")


def wait_serving(base: str, token: str) -> None:
    """The serving plane answers once the champion is loaded (scoring traffic)."""
    body = {"dataframe_split": {"columns": COLUMNS, "data": [X_TRAIN.iloc[0].tolist()]}}
    for _ in range(300):
        answer = requests.post(
            f"{base}/serve/iris-sorter/invocations", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        if answer.status_code == 200:
            return
        threading.Event().wait(0.2)
    raise AssertionError(f"the endpoint never answered: {answer.status_code} {answer.text}")


def wait_ready(base: str, token: str, endpoint: Endpoint) -> None:
    """Until the challenger is ready, traffic goes to the champion only."""
    for _ in range(300):
        challenger = Endpoint.objects.get(pk=endpoint.pk).challenger
        if challenger is not None and challenger.status == RevisionStatus.READY:
            return
        wait_serving(base, token)
        threading.Event().wait(0.2)
    raise AssertionError("the canary never became ready")
