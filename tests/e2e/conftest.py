from pathlib import Path

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
