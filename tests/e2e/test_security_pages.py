"""Browser checks of issue 13's pages: the login form's lockout, and the rerun form
saying which secrets a rerun of changed code did not keep."""

import pytest

from jobs import services as job_services
from jobs.models import Job
from mlplatform.roles import Role
from tests.e2e.conftest import login
from tests.factories import UserFactory, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_login_form_says_when_an_account_is_locked_out(live_asgi, browser, shot_dir, settings):
    settings.MLP_LOGIN_FAILURE_LIMIT = 3
    UserFactory(username="lena")
    page = browser.new_page(viewport={"width": 1280, "height": 700})
    for attempt in range(4):
        page.goto(f"{live_asgi}/accounts/login/")
        page.fill("input[name=username]", "lena")
        page.fill("input[name=password]", f"wrong-{attempt}")
        page.click("button[type=submit]")
        page.wait_for_selector(".form-errors")
    page.goto(f"{live_asgi}/accounts/login/")
    page.fill("input[name=username]", "lena")
    page.fill("input[name=password]", "pw-123456")
    page.click("button[type=submit]")
    error = page.locator(".form-errors")
    error.wait_for()
    assert "Too many failed sign-ins" in error.inner_text() and "Try again in" in error.inner_text()
    assert page.url.endswith("/accounts/login/")
    page.screenshot(path=str(shot_dir / "login-locked-out.png"), full_page=True)


def test_the_rerun_form_warns_which_secrets_changed_code_did_not_keep(live_asgi, browser, shot_dir, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    project = make_project(owner=alice, members={bob: Role.DATA_SCIENTIST})
    job = job_services.job_submit(
        project=project, user=alice, script="print('train')", secret_env={"API_KEY": "s3cr3t"}, dispatch=False
    )
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    login(page, live_asgi, "bob")
    page.goto(f"{live_asgi}/jobs/new/?rerun={job.pk}")
    assert "Secrets of job" in page.locator(".job-form").inner_text()
    page.screenshot(path=str(shot_dir / "job-rerun-form.png"), full_page=True)
    page.fill("textarea[name=script]", "import os\nprint(os.environ.get('API_KEY'))")
    page.click("button:has-text('Submit job')")
    page.wait_for_selector("text=Secrets not kept")
    page.screenshot(path=str(shot_dir / "job-rerun-secrets-not-kept.png"), full_page=True)
    rerun = Job.objects.get(rerun_of=job)
    assert rerun.secret_env == {} and rerun.created_by == bob
