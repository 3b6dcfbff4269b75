"""Browser: submit a script from the UI, watch its log and metrics arrive live, cancel
a second job, see both in the live list. Screenshots for review."""

import threading

import pytest

from jobs import runner
from jobs.models import Job
from tests.e2e.conftest import login
from tests.factories import UserFactory, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TRAIN = """import time, mlflow
for epoch in range(1, 6):
    print(f"epoch {epoch}: loss {1 / epoch:.3f}", flush=True)
    mlflow.log_metric("loss", 1 / epoch, step=epoch)
    mlflow.log_metric("progress", epoch / 5)
    time.sleep(0.6)
print("training done")
"""


def run_in_background(job_id: int) -> threading.Thread:
    # The page queued the job; a worker thread stands in for Celery here (the
    # reliability tests drive real workers).
    thread = threading.Thread(target=runner.job_execute, kwargs={"job_id": job_id, "worker": "e2e"}, daemon=True)
    thread.start()
    return thread


def submit_from_ui(page, base: str, script: str, name: str) -> int:
    page.goto(f"{base}/jobs/new/")
    page.fill("input[name=name]", name)
    page.fill("textarea[name=script]", script)
    page.click("button:has-text('Submit job')")
    page.wait_for_url(f"{base}/jobs/*/")
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def test_submit_watch_live_log_cancel_and_list(live_asgi, browser, shot_dir, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.MLP_PUBLIC_URL = live_asgi  # where the jobs' MLflow clients log
    user = UserFactory(username="dana")
    make_project(owner=user, name="Churn model", slug="churn")
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    login(page, live_asgi, user.username)

    page.click("nav >> text=Jobs")
    assert page.locator("text=No jobs yet").is_visible()
    page.goto(f"{live_asgi}/jobs/new/")
    page.screenshot(path=str(shot_dir / "jobs-submit.png"), full_page=True)

    job_id = submit_from_ui(page, live_asgi, TRAIN, "train churn")
    page.wait_for_selector("text=Waiting for the first line")
    worker = run_in_background(job_id)
    page.wait_for_selector("#job-log:has-text('epoch 3')", timeout=30000)
    page.wait_for_selector("#chart-metrics", timeout=20000)
    page.screenshot(path=str(shot_dir / "jobs-detail-live.png"), full_page=True)
    page.wait_for_selector("[data-status]:has-text('Succeeded')", timeout=20000)
    worker.join(10)
    assert "training done" in page.inner_text("#job-log")
    assert page.locator("[data-progress-label]").inner_text() == "100%"
    page.screenshot(path=str(shot_dir / "jobs-detail-finished.png"), full_page=True)

    second = submit_from_ui(page, live_asgi, "import time\nprint('waiting', flush=True)\ntime.sleep(300)\n", "sleeper")
    worker = run_in_background(second)
    page.wait_for_selector("#job-log:has-text('waiting')", timeout=30000)
    page.click("button:has-text('Cancel')")
    # The 5 s bound is asserted in tests/jobs (executor level); pages only must follow.
    page.wait_for_selector("[data-status]:has-text('Cancelled')", timeout=20000)
    assert f"cancelled by {user.username}" in page.inner_text("[data-message]")
    worker.join(10)

    page.goto(f"{live_asgi}/jobs/")
    rows = page.locator("#job-table tbody tr")
    assert rows.count() == 2
    assert page.locator(f'tr[data-job="{job_id}"] [data-status]').inner_text() == "Succeeded"
    assert Job.objects.get(pk=second).status == "cancelled"
    page.screenshot(path=str(shot_dir / "jobs-list.png"), full_page=True)


def test_sweep_page_ranks_children_and_plots_metric_against_each_param(
    live_asgi, browser, shot_dir, settings, tmp_path
):
    from jobs import services

    settings.DATA_DIR = tmp_path

    settings.MLP_PUBLIC_URL = live_asgi  # where the jobs' MLflow clients log
    user = UserFactory(username="sam")
    project = make_project(owner=user, name="Pumps", slug="pumps")
    sweep = services.sweep_submit(
        project=project,
        user=user,
        name="depth x lr",
        space={"depth": [2, 4], "lr": [0.1, 0.01]},
        metric="accuracy",
        max_concurrency=4,
        job={
            "script": "import sys, mlflow\na = dict(zip(sys.argv[1::2], sys.argv[2::2]))\n"
            "mlflow.log_metric('accuracy', int(a['--depth']) / 10 + float(a['--lr']))\n"
        },
    )
    for child in Job.objects.filter(sweep=sweep).order_by("pk"):
        run_in_background(child.pk).join(30)  # off the thread that holds Playwright's loop
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    login(page, live_asgi, user.username)
    page.goto(f"{live_asgi}/jobs/sweeps/{sweep.pk}/")
    first = page.locator("#sweep-table tbody tr").first
    # The best child (depth 4, lr 0.1) leads; column order follows the stored space.
    assert {first.locator("td").nth(2).inner_text(), first.locator("td").nth(3).inner_text()} == {"4", "0.1"}
    page.wait_for_selector("#chart-param-1 .main-svg")
    page.screenshot(path=str(shot_dir / "jobs-sweep.png"), full_page=True)


def test_upload_a_bundle_and_run_it_in_a_container(live_asgi, browser, shot_dir, settings, tmp_path):
    import zipfile

    from jobs.models import JobImage
    from tests.jobs.engine import IMAGE, require_engine

    require_engine()
    JobImage.objects.get_or_create(name=IMAGE)
    settings.DATA_DIR = tmp_path / "data"
    settings.MLP_PUBLIC_URL = live_asgi  # where the jobs' MLflow clients log
    bundle = tmp_path / "iris.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr(
            "main.py",
            "import mlflow\nfrom sklearn.datasets import load_iris\nfrom sklearn.tree import DecisionTreeClassifier\n"
            "X, y = load_iris(return_X_y=True)\nscore = DecisionTreeClassifier(max_depth=3).fit(X, y).score(X, y)\n"
            "print(f'train accuracy {score:.3f}', flush=True)\nmlflow.log_metric('accuracy', score)\n",
        )
    user = UserFactory(username="erin")
    make_project(owner=user, name="Iris", slug="iris")
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    login(page, live_asgi, user.username)
    page.goto(f"{live_asgi}/jobs/new/")
    page.fill("input[name=name]", "iris in a container")
    page.fill("textarea[name=script]", "")
    page.set_input_files("input[name=bundle]", str(bundle))
    page.select_option("select[name=executor]", "docker")
    page.fill("input[name=command]", '["python3", "main.py"]')
    page.click("button:has-text('Submit job')")
    page.wait_for_url(f"{live_asgi}/jobs/*/")
    job_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    worker = run_in_background(job_id)
    page.wait_for_selector("#job-log:has-text('train accuracy')", timeout=60000)
    page.wait_for_selector("[data-status]:has-text('Succeeded')", timeout=60000)
    worker.join(30)
    job = Job.objects.get(pk=job_id)
    assert job.executor == "docker" and job.container_id and job.bundle_name == "iris.zip"
    page.screenshot(path=str(shot_dir / "jobs-detail-docker.png"), full_page=True)
