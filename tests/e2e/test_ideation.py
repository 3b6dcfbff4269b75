"""Two browsers on one board see each other's cards, moves and votes live; the best
card becomes a project with KPIs; its first gate is reviewed and decided."""

import pytest

from ideation import services
from ideation.models import Idea
from tests.e2e.conftest import login
from tests.factories import UserFactory, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _card(page, title):
    return page.locator(".idea-card", has_text=title)


def _lane(page, title):
    return page.locator(".lane", has=page.locator(".lane-title", has_text=title))


def test_two_participants_live_board_promotion_and_gate(live_asgi, browser, shot_dir):
    fran, sam = UserFactory(username="fran"), UserFactory(username="sam")
    project = make_project(owner=fran, slug="plant", name="Plant operations", members={sam: "stakeholder"})
    board = services.board_create(actor=fran, title="Maintenance workshop", project=project, vote_budget=3)
    pages = []
    for user in (fran, sam):
        page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
        login(page, live_asgi, user.username)
        page.goto(f"{live_asgi}/ideation/boards/{board.pk}/")
        page.wait_for_selector("#live-status.badge-ok")
        pages.append(page)
    a, b = pages
    a.wait_for_selector("#presence .avatar:has-text('sam')")

    # Cards added on one page appear on the other.
    first = _lane(a, "Pain points")
    first.locator(".add-card input").fill("Predict pump failures")
    first.locator(".add-card button").click()
    _card(b, "Predict pump failures").wait_for()
    second = _lane(b, "Low-hanging fruit")
    second.locator(".add-card input").fill("Forecast energy use")
    second.locator(".add-card select").select_option("low_hanging_fruit")
    second.locator(".add-card button").click()
    _card(a, "Forecast energy use").wait_for()

    # A drag on one page moves the card on the other.
    _card(b, "Predict pump failures").drag_to(_lane(b, "Shortlist").locator(".lane-cards"))
    _lane(a, "Shortlist").locator(".idea-card", has_text="Predict pump failures").wait_for()

    # Votes count live; the budget runs out with a clear message.
    for _ in range(3):
        _card(b, "Predict pump failures").locator(".vote-up").click()
    a.wait_for_function(
        "() => [...document.querySelectorAll('.idea-card')].some("
        "c => c.textContent.includes('Predict pump failures') && c.querySelector('.votes').textContent === '3')"
    )
    _card(b, "Predict pump failures").locator(".vote-up").click()
    b.wait_for_selector(".toast-error:has-text('used all 3 of your votes')")
    _card(a, "Forecast energy use").locator(".vote-up").click()
    b.wait_for_function(
        "() => [...document.querySelectorAll('.idea-card')].some("
        "c => c.textContent.includes('Forecast energy use') && c.querySelector('.votes').textContent === '1')"
    )

    # Both edit the same card's title: the last write wins, and the other is told.
    _card(b, "Forecast energy use").locator(".edit").click()
    _card(a, "Forecast energy use").locator(".edit").click()
    b.fill("#e-title", "Forecast energy use per shift")
    b.click("#edit-form button[value=save]")
    a.wait_for_selector("#edit-notice:has-text('sam just changed title')")
    a.fill("#e-title", "Forecast energy use per line")
    a.click("#edit-form button[value=save]")
    b.wait_for_selector(".toast-warning:has-text('fran overwrote your change to title')")
    a.wait_for_selector(".toast-warning:has-text('replaced one sam made meanwhile')")
    _card(b, "Forecast energy use per line").wait_for()

    # A refused save keeps the dialog open with what was typed, and says why inside it.
    _card(a, "Forecast energy use per line").locator(".edit").click()
    a.fill("#e-solution", "Gradient boosting on meter data, per line and shift")
    a.fill("#e-owner", "nobody-here")
    a.click("#edit-form button[value=save]")
    a.wait_for_selector("#edit-error:not(:empty)")
    assert a.inner_text("#edit-error") == "Not saved: There is no user named 'nobody-here'."
    assert a.locator("#edit-dialog").get_attribute("open") is not None
    assert a.input_value("#e-solution") == "Gradient boosting on meter data, per line and shift"
    a.screenshot(path=str(shot_dir / "ideation-edit-refused.png"))
    a.fill("#e-owner", "sam")
    a.click("#edit-form button[value=save]")
    a.wait_for_selector("#edit-dialog", state="hidden")
    assert Idea.objects.get(title="Forecast energy use per line").solution.startswith("Gradient boosting")

    # A card deleted behind a participant's back: moving it says so, no error page.
    stale = Idea.objects.create(board=board, lane=board.lanes.first(), title="Soon gone", author=sam)
    b.reload()
    b.wait_for_selector("#live-status.badge-ok")
    Idea.objects.filter(pk=stale.pk).delete()  # no event: as if the deletion had not arrived yet
    _card(b, "Soon gone").drag_to(_lane(b, "Parked").locator(".lane-cards"))
    b.wait_for_selector(".toast-error:has-text('someone deleted it a moment ago')")
    _card(b, "Soon gone").wait_for(state="detached")
    assert b.locator("h1", has_text="Maintenance workshop").is_visible()
    a.screenshot(path=str(shot_dir / "ideation-board.png"), full_page=True)

    # The matrix view places cards by impact and effort and follows edits live.
    a.click(".view-toggle button[data-view=matrix]")
    b.click(".view-toggle button[data-view=matrix]")
    cell = "#matrix .matrix-cell[data-impact='5'][data-effort='2']"
    a.locator(".matrix-chip", has_text="Predict pump failures").drag_to(a.locator(cell))
    b.locator(f"{cell} .matrix-chip", has_text="Predict pump failures").wait_for()
    b.screenshot(path=str(shot_dir / "ideation-matrix.png"), full_page=True)

    # The facilitator promotes the card to a project with a draft KPI.
    a.click(".view-toggle button[data-view=lanes]")
    b.click(".view-toggle button[data-view=lanes]")
    _card(a, "Predict pump failures").locator(".idea-title").click()
    a.wait_for_selector("#promote")
    a.screenshot(path=str(shot_dir / "ideation-idea.png"), full_page=True)
    a.fill("#id_name", "Pump failure prediction")
    a.fill("#id_kpi_name", "Unplanned stops per month")
    a.select_option("#id_kpi_direction", "lower")
    a.fill("#id_kpi_baseline", "12")
    a.fill("#id_kpi_target", "4")
    a.click("#promote button[type=submit]")
    a.wait_for_url(f"{live_asgi}/projects/pump-failure-prediction/")
    assert a.locator("#kpis .kpi", has_text="Unplanned stops per month").is_visible()
    assert a.locator(".origin-note", has_text="Predict pump failures").is_visible()
    _card(b, "Predict pump failures").locator(".project-link").wait_for()

    # Record KPI values, agree the KPI, and add the gate into Experimentation.
    kpi = a.locator("#kpis .kpi", has_text="Unplanned stops per month")
    for value in ("9", "3"):
        kpi.locator("input[name=value]").fill(value)
        kpi.locator("button:has-text('Record')").click()
        a.wait_for_selector(f"text=Recorded {value} for")
    a.click("#kpis .kpi button:has-text('Agree KPI')")
    a.wait_for_selector("text=agreed")
    a.fill("#members input[name=username]", "sam")
    a.select_option("#members form.row-form select[name=role]", "stakeholder")
    a.click("button:has-text('Add member')")
    a.wait_for_selector("text=sam joined as Stakeholder.")
    a.click("#gates summary")
    a.select_option("#id_to_stage", "Experimentation")
    a.fill("#id_quorum", "2")
    a.check("#gates input[name=approver_roles][value=stakeholder]")
    a.click("#gates button:has-text('Add gate')")
    a.wait_for_selector("h1:has-text('Gate to Experimentation')")
    gate_url = a.url
    a.click("#criteria summary")
    a.select_option("#crit-kind", "kpi")
    a.select_option("#crit-kpi", label="Unplanned stops per month")
    a.click("#criteria button:has-text('Add')")
    a.wait_for_selector(".criteria li.met")
    a.click("#review button:has-text('Open the review')")
    a.check(".vote-form input[value=go]")
    a.fill("#vote-comment", "Stops are down to 3 a month.")
    a.click(".vote-form button")
    a.wait_for_selector("text=Your vote (Go) is recorded.")

    # The stakeholder approver votes; deciding is the owner's.
    b.goto(gate_url)
    assert b.locator(".decide-form").count() == 0
    b.check(".vote-form input[value=go]")
    b.click(".vote-form button")
    b.wait_for_selector("text=Your vote (Go) is recorded.")
    a.goto(gate_url)
    a.check(".decide-form input[value=go]")
    a.fill("#rationale", "Both approvers agree; the KPI meets its target.")
    a.click(".decide-form button")
    a.wait_for_selector("#decision h2:has-text('Decision: Go')")
    a.screenshot(path=str(shot_dir / "ideation-gate-review.png"), full_page=True)

    a.goto(f"{live_asgi}/projects/pump-failure-prediction/")
    assert a.locator("#current-stage").inner_text() == "Experimentation"
    a.screenshot(path=str(shot_dir / "ideation-project-dashboard.png"), full_page=True)
