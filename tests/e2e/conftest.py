from pathlib import Path
import threading

import pytest

SHOTS = Path(__file__).resolve().parents[2] / "var" / "test-output" / "screenshots"


@pytest.fixture
def shot_dir():
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


def login(page, base_url: str, username: str, password: str = "pw-123456") -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")


def elsewhere(fn, **kwargs):
    """Calls `fn` on a thread of its own, as a Celery worker or beat thread would: the
    test's thread holds Playwright's event loop, where a service cannot publish its
    live events. Returns what `fn` returned; re-raises what it raised."""
    result: list = []
    errors: list[BaseException] = []

    def run():
        try:
            result.append(fn(**kwargs))
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(120)
    if errors:
        raise errors[0]
    return result[0] if result else None
