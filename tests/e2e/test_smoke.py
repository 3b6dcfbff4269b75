"""Browser smoke test: log in, create a project, add a member, see it in the list."""

import pytest

from tests.e2e.conftest import login
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_login_create_project_add_member_and_list(live_asgi, browser, shot_dir):
    owner = UserFactory(username="olivia")
    UserFactory(username="mohammed")
    page = browser.new_page(viewport={"width": 1280, "height": 800})

    login(page, live_asgi, owner.username)
    page.click("text=New project")
    page.fill("input[name=name]", "Turbine anomaly detection")
    page.fill("textarea[name=description]", "Spot failing turbines from vibration data.")
    page.click("button:has-text('Save')")
    page.wait_for_url(f"{live_asgi}/projects/turbine-anomaly-detection/")
    assert page.locator("text=Project 'Turbine anomaly detection' created.").is_visible()

    page.fill("#members input[name=username]", "mohammed")
    page.select_option("#members select[name=role]", "data_scientist")
    page.click("button:has-text('Add member')")
    page.wait_for_selector("text=mohammed joined as Data scientist.")
    assert page.locator("#members td", has_text="mohammed").count() == 1

    page.click("nav >> text=Projects")
    row = page.locator("#project-table tbody tr", has_text="Turbine anomaly detection")
    assert row.locator("td").nth(3).inner_text() == "2"
    page.screenshot(path=str(shot_dir / "projects-list.png"), full_page=True)

    page.goto(f"{live_asgi}/projects/turbine-anomaly-detection/")
    page.screenshot(path=str(shot_dir / "project-detail.png"), full_page=True)
