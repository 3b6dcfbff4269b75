"""The automatic side: rollback of a failing challenger, promotion of a better one,
auto-canary of a better registered version, live KPIs; each audited and notified."""

import json
import time

from django.db import OperationalError
import pytest
import requests

from deployments import links, policies, services
from deployments.logsink import DatabaseSink
from deployments.models import Endpoint, EndpointEvent, PredictionLog, RevisionStatus
from mlplatform import events
from mlplatform.models import AuditEvent
from tests.deployments.conftest import register_version, split_body


@pytest.fixture
def gate_passed(monkeypatch):
    monkeypatch.setattr(links, "production_gate_passed", lambda *, project: True)


@pytest.fixture
def published(monkeypatch):
    sent = []
    monkeypatch.setattr(events, "publish", lambda group, event, payload: sent.append((group, event, payload)))
    return sent


def ready(endpoint, user, version, **kwargs):
    revision = services.revision_deploy(
        endpoint=endpoint, actor=user, model_name=f"{endpoint.project.slug}/iris", version=version.version, **kwargs
    )
    services.revision_report_load(revision_id=revision.pk, loaded=True)
    return revision


def log(endpoint, revision, *, n, status=200, out=0, role="champion", feedback=None, prefix="r"):
    records = []
    now = time.time()
    for i in range(n):
        rid = f"{prefix}{revision.pk}-{i}"
        payload = json.dumps({"in": {"x": [1.0]}, "out": [out]})
        records.append(
            {
                "k": "p",
                "e": endpoint.pk,
                "r": revision.pk,
                "rid": rid,
                "role": role,
                "s": status,
                "ms": 3.0,
                "n": 1,
                "t": now,
                "payload": payload,
            }
        )
        if feedback is not None:
            records.append({"k": "f", "e": endpoint.pk, "rid": rid, "actual": [feedback], "t": now})
    DatabaseSink().write(records, spool=f"test-{revision.pk}-{prefix}", offset=len(records))


@pytest.fixture
def live(project, user, model_dirs, gate_passed):
    endpoint = services.endpoint_create(project=project, actor=user, name="Iris")[0]
    v1 = register_version(project=project, user=user, model_dir=model_dirs["iris"], metrics={"accuracy": 0.90})
    v2 = register_version(project=project, user=user, model_dir=model_dirs["iris2"], metrics={"accuracy": 0.80})
    champion = ready(endpoint, user, v1)
    return endpoint, champion, v2


def test_a_challenger_returning_errors_is_rolled_back_with_its_numbers_and_owners_notified(live, user, published):
    endpoint, champion, v2 = live
    canary = ready(endpoint, user, v2, role="canary", traffic=0.5)
    Endpoint.objects.filter(pk=endpoint.pk).update(policy={**endpoint.policy, "breach_seconds": 0, "min_requests": 20})
    log(endpoint, canary, n=20, status=500, role="challenger")
    log(endpoint, canary, n=20, status=200, role="challenger", prefix="ok")
    endpoint.refresh_from_db()
    assert policies.endpoint_policy_check(endpoint=endpoint) == ["rolled_back"]
    endpoint.refresh_from_db()
    canary.refresh_from_db()
    assert endpoint.challenger is None and endpoint.champion == champion
    assert canary.status == RevisionStatus.ROLLED_BACK
    event = EndpointEvent.objects.get(endpoint=endpoint, kind="rolled_back")
    assert event.automatic and "error rate 50.0% > 5.0%" in event.reason and "20 of 40" in event.reason
    assert AuditEvent.objects.filter(action="endpoint.rollback", actor=None, reason=event.reason).exists()
    notified = [g for g, e, _ in published if e == "notification"]
    assert notified == [events.group_name("user", user.pk)]


def test_the_breach_must_hold_for_the_set_time(live, user):
    endpoint, _, v2 = live
    canary = ready(endpoint, user, v2, role="canary", traffic=0.5)
    Endpoint.objects.filter(pk=endpoint.pk).update(
        policy={**endpoint.policy, "breach_seconds": 3600, "min_requests": 5}
    )
    log(endpoint, canary, n=10, status=500, role="challenger")
    endpoint.refresh_from_db()
    assert policies.endpoint_policy_check(endpoint=endpoint) == []
    endpoint.refresh_from_db()
    assert (
        endpoint.challenger == canary and endpoint.breach_since is not None and "error rate" in endpoint.breach_reason
    )


def test_a_challenger_that_beats_the_champion_on_the_live_kpi_is_promoted(live, user):
    endpoint, champion, v2 = live
    canary = ready(endpoint, user, v2, role="canary", traffic=0.5)
    Endpoint.objects.filter(pk=endpoint.pk).update(policy={**endpoint.policy, "min_feedback": 30})
    log(endpoint, champion, n=40, out=0, feedback=1)  # always wrong
    log(endpoint, canary, n=40, out=1, feedback=1, role="challenger")  # always right
    endpoint.refresh_from_db()
    assert policies.endpoint_policy_check(endpoint=endpoint) == ["promoted"]
    endpoint.refresh_from_db()
    assert endpoint.champion == canary
    event = EndpointEvent.objects.get(endpoint=endpoint, kind="promoted")
    assert event.automatic and "accuracy 1.0000 (n=40) vs champion 0.0000 (n=40)" in event.reason


def test_not_promoted_without_enough_ground_truth(live, user):
    endpoint, champion, v2 = live
    canary = ready(endpoint, user, v2, role="canary", traffic=0.5)
    log(endpoint, champion, n=10, out=0, feedback=1)
    log(endpoint, canary, n=10, out=1, feedback=1, role="challenger")
    endpoint.refresh_from_db()
    assert policies.endpoint_policy_check(endpoint=endpoint) == []


def test_auto_canary_starts_a_newer_version_with_a_better_offline_metric(project, user, model_dirs, gate_passed):
    endpoint = services.endpoint_create(project=project, actor=user, name="Iris")[0]
    services.endpoint_update(
        endpoint=endpoint, actor=user, auto_canary=True, policy={"offline_metric": "accuracy", "canary_traffic": 0.25}
    )
    v1 = register_version(project=project, user=user, model_dir=model_dirs["iris"], metrics={"accuracy": 0.90})
    ready(endpoint, user, v1)
    register_version(project=project, user=user, model_dir=model_dirs["iris2"], metrics={"accuracy": 0.85})
    endpoint.refresh_from_db()
    assert policies.endpoint_policy_check(endpoint=endpoint) == []
    v3 = register_version(project=project, user=user, model_dir=model_dirs["iris2"], metrics={"accuracy": 0.97})
    assert policies.endpoint_policy_check(endpoint=endpoint) == ["canary_started"]
    endpoint.refresh_from_db()
    assert endpoint.challenger.model_version == v3 and endpoint.traffic == 0.25
    event = EndpointEvent.objects.get(endpoint=endpoint, kind="deployed", automatic=True)
    assert "0.9700 beats the champion's 0.9000" in event.reason


def logged_failures(endpoint) -> int:
    try:
        return PredictionLog.objects.filter(endpoint_id=endpoint.pk, status=500).count()
    except OperationalError:  # SQLite's shared in-memory test database: the drainer is writing
        return 0


@pytest.mark.slow
def test_a_failing_canary_served_for_real_is_rolled_back_by_the_policy_task(
    live_asgi, project, user, model_dirs, gate_passed
):
    """End to end: the main ASGI app serves /serve/, logs to the database, and the
    periodic task rolls the failing canary back."""
    from deployments.tasks import endpoints_policy_check_task

    endpoint, token = services.endpoint_create(project=project, actor=user, name="Live")
    v1 = register_version(project=project, user=user, model_dir=model_dirs["iris"])
    broken = register_version(project=project, user=user, model_dir=model_dirs["broken"])
    services.revision_deploy(endpoint=endpoint, actor=user, model_name=f"{project.slug}/iris", version=v1.version)
    services.revision_deploy(
        endpoint=endpoint,
        actor=user,
        model_name=f"{project.slug}/iris",
        version=broken.version,
        role="canary",
        traffic=0.5,
        trusted=True,
    )
    Endpoint.objects.filter(pk=endpoint.pk).update(policy={**endpoint.policy, "breach_seconds": 0, "min_requests": 10})
    url = f"{live_asgi}/serve/{endpoint.slug}/invocations"
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 30
    while Endpoint.objects.get(pk=endpoint.pk).challenger.status != RevisionStatus.READY:
        assert time.monotonic() < deadline, "the canary never became ready"
        requests.post(url, json=split_body(), headers=headers)
        time.sleep(0.1)
    codes = [requests.post(url, json=split_body(), headers=headers).status_code for _ in range(40)]
    assert set(codes) == {200}  # the champion answers for the failing canary
    while logged_failures(endpoint) < 10:
        assert time.monotonic() < deadline, "the canary's failures never reached the log"
        time.sleep(0.1)
    endpoints_policy_check_task()
    endpoint.refresh_from_db()
    assert endpoint.challenger is None
    assert EndpointEvent.objects.filter(endpoint=endpoint, kind="rolled_back", automatic=True).exists()
