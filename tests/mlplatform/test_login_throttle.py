"""Issue 13, defect 7: wrong passwords in a row lock the account (and a spraying
address) out, on the login form, on basic auth to the REST API and on basic auth to the
MLflow-compatible API; the right password is refused while locked out, works again once
the lockout is over; other accounts from other addresses are unaffected; lockouts are
audited. The counts live in the shared cache: Redis when REDIS_URL is set."""

import base64
import time

from django.test import Client
import pytest
import requests
from rest_framework.test import APIClient

from mlplatform.models import AuditEvent
from tests.factories import UserFactory

PASSWORD = "pw-123456"
ATTACKER = "10.66.0.1"
ELSEWHERE = "10.77.0.2"


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


def login(username: str, password: str, address: str = ATTACKER):
    return Client(REMOTE_ADDR=address).post("/accounts/login/", {"username": username, "password": password})


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def rest(username: str, password: str, address: str = ATTACKER):
    return APIClient().get("/api/v1/projects/", HTTP_AUTHORIZATION=basic(username, password), REMOTE_ADDR=address)


def lockouts(**after) -> list[AuditEvent]:
    events = AuditEvent.objects.filter(action="auth.lockout").order_by("pk")
    return [e for e in events if all(e.after.get(k) == v for k, v in after.items())]


def test_thirty_wrong_passwords_on_the_login_form_lock_the_account(alice):
    answers = [login("alice", f"guess-{i}") for i in range(30)]
    assert [a.status_code for a in answers[:10]] == [200] * 10
    assert "correct username and password" in answers[0].content.decode()
    assert [a.status_code for a in answers[10:]] == [429] * 20
    assert "Too many failed sign-ins" in answers[-1].content.decode()
    assert 0 < int(answers[-1]["Retry-After"]) <= 300

    right = login("alice", PASSWORD)
    assert right.status_code == 429 and "_auth_user_id" not in right.wsgi_request.session
    assert "Too many failed sign-ins" in right.content.decode()
    # The account is locked, from any address; another account from elsewhere is not.
    assert login("alice", PASSWORD, address=ELSEWHERE).status_code == 429
    bob = UserFactory()
    assert login(bob.username, PASSWORD, address=ELSEWHERE).status_code == 302
    (event,) = lockouts(via="login")
    assert (event.object_type, event.object_id, event.actor_name) == ("mlplatform.user", str(alice.pk), "system")
    assert event.after["failures"] == 10 and event.after["account"] == "alice"


def test_thirty_wrong_passwords_on_rest_basic_auth_lock_the_account(alice):
    answers = [rest("alice", f"guess-{i}") for i in range(30)]
    assert [a.status_code for a in answers] == [401] * 10 + [429] * 20
    locked = answers[-1]
    assert int(locked["Retry-After"]) > 0
    assert locked.json()["error"]["code"] == "throttled"
    assert "Too many failed sign-ins" in locked.json()["error"]["message"]
    assert rest("alice", PASSWORD).status_code == 429
    assert rest(UserFactory().username, PASSWORD, address=ELSEWHERE).status_code == 200
    assert len(lockouts(via="basic", account="alice")) == 1


def test_the_mlflow_api_on_the_real_server_locks_out_basic_auth(alice, live_asgi):
    """Through the tracking plane (mlflow_api.lean), which checks basic auth outside
    Django's request cycle."""
    url = f"{live_asgi}/api/2.0/mlflow/experiments/search"
    session = requests.Session()

    def search(username, password):
        return session.post(url, json={"max_results": 1}, headers={"Authorization": basic(username, password)})

    assert search("alice", PASSWORD).status_code == 200  # remembered by the auth cache...
    answers = [search("alice", f"guess-{i}") for i in range(30)]
    assert [a.status_code for a in answers] == [401] * 10 + [429] * 20
    assert answers[-1].json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert int(answers[-1].headers["Retry-After"]) > 0
    assert search("alice", PASSWORD).status_code == 429  # ...which the lockout overrides
    assert len(lockouts(via="basic", account="alice")) == 1


@pytest.fixture
def clock(monkeypatch):
    """The throttle's clock, moved by hand: lockouts of a minute or two end when the test
    says so, however slow this machine is (the cache keys' own expiries stay real)."""
    from types import SimpleNamespace

    from mlplatform import login_throttle

    now = [time.time()]
    monkeypatch.setattr(login_throttle, "time", SimpleNamespace(time=lambda: now[0]))
    return now


def test_the_lockout_ends_and_the_right_password_works_again(alice, settings, clock):
    settings.MLP_LOGIN_LOCKOUT_SECONDS = 60
    for i in range(10):
        assert rest("alice", f"guess-{i}").status_code == 401
    assert rest("alice", PASSWORD).status_code == 429
    assert login("alice", PASSWORD).status_code == 429
    clock[0] += 59
    assert rest("alice", PASSWORD).status_code == 429
    clock[0] += 2
    assert rest("alice", PASSWORD).status_code == 200
    assert login("alice", PASSWORD).status_code == 302


def test_each_further_lockout_lasts_twice_as_long(alice, settings, clock):
    settings.MLP_LOGIN_LOCKOUT_SECONDS = 60
    for _round in range(2):
        for i in range(10):
            assert rest("alice", f"guess-{i}").status_code == 401
        assert rest("alice", PASSWORD).status_code == 429
        clock[0] += 61
    assert rest("alice", PASSWORD).status_code == 429  # the second lasts 120 s
    clock[0] += 60
    assert rest("alice", PASSWORD).status_code == 200
    assert [e.after["seconds"] for e in lockouts(account="alice")] == [60, 120]


def test_a_success_forgets_the_accounts_failures(alice):
    for _round in range(3):
        for i in range(9):
            assert rest("alice", f"guess-{i}", address=f"10.1.0.{i}").status_code == 401
        assert rest("alice", PASSWORD).status_code == 200
    assert lockouts() == []


def test_an_address_spraying_many_accounts_is_locked_out(db, settings):
    settings.MLP_LOGIN_ADDRESS_FAILURE_LIMIT = 5
    victims = [UserFactory() for _ in range(6)]
    for victim in victims[:5]:
        assert login(victim.username, "Summer2026!").status_code == 200
    # Even an account that never failed, with its right password, from that address:
    assert login(victims[5].username, PASSWORD).status_code == 429
    assert rest(victims[5].username, PASSWORD).status_code == 429
    assert login(victims[5].username, PASSWORD, address=ELSEWHERE).status_code == 302
    (event,) = lockouts(address=ATTACKER)
    assert (event.object_type, event.object_id) == ("auth.address", ATTACKER)


def test_unknown_accounts_lock_out_alike_so_a_lockout_tells_nothing(db):
    answers = [rest("nobody-here", f"guess-{i}") for i in range(11)]
    assert [a.status_code for a in answers] == [401] * 10 + [429]
    (event,) = lockouts(account="nobody-here")
    assert event.object_type == "auth.account"


def test_a_locked_out_account_keeps_working_with_its_api_token(alice, token_for):
    raw = token_for(alice)
    for i in range(10):
        rest("alice", f"guess-{i}")
    assert rest("alice", PASSWORD).status_code == 429
    bearer = APIClient().get("/api/v1/projects/", HTTP_AUTHORIZATION=f"Bearer {raw}", REMOTE_ADDR=ATTACKER)
    assert bearer.status_code == 200
    assert rest("alice", raw).status_code == 200  # a token as the basic password


def test_the_admin_sign_in_is_throttled_too(db):
    admin = UserFactory(is_staff=True, is_superuser=True)
    client = Client(REMOTE_ADDR=ATTACKER)
    for i in range(10):
        client.post("/admin/login/", {"username": admin.username, "password": f"guess-{i}"})
    response = client.post("/admin/login/", {"username": admin.username, "password": PASSWORD})
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session
