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


def log_inputs(endpoint, revision, values, *, prefix="x", role="champion", at=None):
    now = at or time.time()
    records = [
        {
            "k": "p",
            "e": endpoint.pk,
            "r": revision.pk,
            "rid": f"{prefix}{revision.pk}-{i}",
            "role": role,
            "s": 200,
            "ms": 3.0,
            "n": 1,
            "t": now,
            "payload": json.dumps({"in": {"x": [float(v)]}, "out": [0]}),
        }
        for i, v in enumerate(values)
    ]
    DatabaseSink().write(records, spool=f"inputs-{revision.pk}-{prefix}", offset=len(records))


def test_a_worse_canary_is_rolled_back_for_accuracy_with_its_test_in_the_event(live, user, published):
    endpoint, champion, v2 = live
    canary = ready(endpoint, user, v2, role="canary", traffic=0.5)
    Endpoint.objects.filter(pk=endpoint.pk).update(policy={**endpoint.policy, "min_feedback": 60})
    log(endpoint, champion, n=60, out=1, feedback=1)  # always right
    log(endpoint, canary, n=30, out=1, feedback=1, role="challenger")
    log(endpoint, canary, n=30, out=0, feedback=1, role="challenger", prefix="w")  # half wrong
    endpoint.refresh_from_db()
    assert policies.endpoint_policy_check(endpoint=endpoint) == ["rolled_back"]
    event = EndpointEvent.objects.get(endpoint=endpoint, kind="rolled_back")
    assert "worse on the KPI, live accuracy 0.5000 (n=60) vs champion 1.0000 (n=60)" in event.reason
    assert "two-proportion z-test, one-sided p=" in event.reason
    test = event.data["kpi_test"]
    assert test["test"] == "two-proportion z-test" and test["p_value"] < 0.001 and test["direction"] == "worse"


def test_a_noisy_gap_is_neither_promoted_nor_rolled_back(live, user):
    endpoint, champion, v2 = live
    canary = ready(endpoint, user, v2, role="canary", traffic=0.5)
    Endpoint.objects.filter(pk=endpoint.pk).update(policy={**endpoint.policy, "min_feedback": 100})
    log(endpoint, champion, n=96, out=1, feedback=1)
    log(endpoint, champion, n=4, out=0, feedback=1, prefix="w")
    log(endpoint, canary, n=97, out=1, feedback=1, role="challenger")
    log(endpoint, canary, n=3, out=0, feedback=1, role="challenger", prefix="w")
    endpoint.refresh_from_db()
    assert policies.endpoint_policy_check(endpoint=endpoint) == []
    endpoint.refresh_from_db()
    assert endpoint.challenger == canary and endpoint.champion == champion


def test_the_promotion_event_carries_the_test_and_p_value(live, user):
    endpoint, champion, v2 = live
    canary = ready(endpoint, user, v2, role="canary", traffic=0.5)
    Endpoint.objects.filter(pk=endpoint.pk).update(policy={**endpoint.policy, "min_feedback": 30})
    log(endpoint, champion, n=40, out=0, feedback=1)
    log(endpoint, canary, n=40, out=1, feedback=1, role="challenger")
    endpoint.refresh_from_db()
    assert policies.endpoint_policy_check(endpoint=endpoint) == ["promoted"]
    event = EndpointEvent.objects.get(endpoint=endpoint, kind="promoted")
    assert event.data["kpi_test"]["direction"] == "better" and event.data["kpi_test"]["p_value"] < 0.001
    assert "two-proportion z-test, one-sided p=" in event.reason


def test_a_stale_promote_answers_already_rolled_back(live, user):
    from mlplatform.errors import InvalidState

    endpoint, _, v2 = live
    canary = ready(endpoint, user, v2, role="canary", traffic=0.5)
    services.challenger_rollback(endpoint=endpoint, actor=user, reason="bad")
    with pytest.raises(InvalidState, match=f"Cannot promote revision {canary.number}: it is already rolled back"):
        services.challenger_promote(endpoint=endpoint, actor=user, revision_number=canary.number)


def test_a_two_row_input_example_is_no_reference_and_burn_in_takes_over(project, user, model_dirs, gate_passed):
    """The iris pyfunc version saved a 2-row input example: too small to measure drift
    against, so the revision starts a burn-in window; its first rows become the
    reference, and a later shift raises a drift alert on the champion."""
    from deployments import selectors

    endpoint = services.endpoint_create(project=project, actor=user, name="Drift")[0]
    version = register_version(project=project, user=user, model_dir=model_dirs["pyfunc"])
    Endpoint.objects.filter(pk=endpoint.pk).update(policy={**endpoint.policy, "min_reference_rows": 100})
    endpoint.refresh_from_db()
    champion = ready(endpoint, user, version, trusted=True, burn_in_rows=150)
    assert champion.reference == {} and champion.reference_source == "burn-in: the first 150 live rows"
    assert "no reference yet: burn-in" in selectors.drift_reference(revision=champion)["status"]
    rng = __import__("numpy").random.default_rng(0)
    log_inputs(endpoint, champion, rng.normal(5, 1, 100), at=time.time() - 60)
    assert policies.endpoint_policy_check(endpoint=endpoint) == []
    champion.refresh_from_db()
    assert champion.reference == {}  # 100 of 150 rows: still burning in
    log_inputs(endpoint, champion, rng.normal(5, 1, 60), prefix="y", at=time.time() - 30)
    assert policies.endpoint_policy_check(endpoint=endpoint) == []
    champion.refresh_from_db()
    assert champion.reference["x"]["n"] == 150 and champion.reference_until is not None
    assert EndpointEvent.objects.filter(endpoint=endpoint, kind="reference_captured").exists()
    log_inputs(endpoint, champion, rng.normal(8, 1, 100), prefix="z")
    assert policies.endpoint_policy_check(endpoint=endpoint) == ["drift_alert"]
    alert = EndpointEvent.objects.get(endpoint=endpoint, kind="drift_alert")
    assert alert.automatic and "x (PSI" in alert.reason and "burn-in" in alert.reason
    assert policies.endpoint_policy_check(endpoint=endpoint) == []  # once an hour, not on every check


def test_the_runs_logged_training_data_is_the_reference(project, user, model_dirs, gate_passed):
    from sklearn.datasets import load_iris

    from experiments import services as exp_services
    from experiments.artifacts import get_store, run_root

    version = register_version(project=project, user=user, model_dir=model_dirs["iris"])
    run = version.run
    frame = load_iris(as_frame=True).frame
    get_store().write(run_root(run), "train.csv", [frame.to_csv(index=False).encode()])
    exp_services.run_log_inputs(
        run=run,
        datasets=[
            {
                "dataset": {
                    "name": "iris-train",
                    "digest": "abc123",
                    "source": json.dumps({"uri": "/tmp/x/train.csv"}),
                },
                "tags": [{"key": "mlflow.data.context", "value": "training"}],
            }
        ],
    )
    endpoint = services.endpoint_create(project=project, actor=user, name="Trained")[0]
    revision = ready(endpoint, user, version)
    assert revision.reference_source == "training data 'iris-train' (run dataset input)"
    assert revision.reference["petal length (cm)"]["n"] == 150 and "target" not in revision.reference
