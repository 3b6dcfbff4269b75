"""The automatic side of deployments, run periodically for every endpoint:

- rollback: a challenger whose error rate, p99 latency or input drift stays past the
  endpoint's limits for `breach_seconds` is taken out of traffic; so is one that is
  worse than the champion on the live KPI beyond chance (at once: the test already
  asks for evidence);
- promotion: a challenger that beats the champion on the live KPI (ground truth from
  /feedback) beyond chance (a two-proportion z-test or Welch's t-test at the policy's
  `confidence`), each with at least `min_feedback` labelled predictions, becomes
  champion; the test and its p-value are in the event;
- drift: measured only against a reference of at least `min_reference_rows` rows
  (burn-in references are frozen here once their rows are in); a drifting champion
  raises a `drift_alert` event (owners notified), at most once an hour;
- auto-canary (per-endpoint switch): a newer registered version of the champion's model
  whose offline metric beats the champion's starts as a canary;
- live KPIs: project KPIs sourced from this endpoint get its live value.

Every action goes through deployments.services (audited, on the timeline, and owners
are notified) with the numbers that triggered it as its reason."""

from datetime import timedelta
import logging

from django.conf import settings
from django.utils import timezone

from deployments import links, monitoring, selectors, services
from deployments.models import Endpoint, RevisionStatus

logger = logging.getLogger(__name__)
DEFAULT_WINDOW = 60


def endpoint_policy_check(*, endpoint: Endpoint) -> list[str]:
    """Apply the endpoint's policies once; returns the actions taken."""
    actions: list[str] = []
    for revision in (endpoint.champion, endpoint.challenger):
        if revision is not None and revision.burn_in_rows and not revision.reference:
            services.revision_burn_in_capture(revision=revision)
    endpoint.refresh_from_db()
    if endpoint.champion_id and _champion_drift_alert(endpoint):
        actions.append("drift_alert")
    if endpoint.challenger_id and endpoint.auto_rollback and _rollback_if_worse(endpoint):
        actions.append("rolled_back")
    endpoint.refresh_from_db()
    if endpoint.challenger_id and endpoint.auto_rollback and _rollback_if_breached(endpoint):
        actions.append("rolled_back")
    endpoint.refresh_from_db()
    if endpoint.challenger_id and endpoint.auto_promote and _promote_if_better(endpoint):
        actions.append("promoted")
    endpoint.refresh_from_db()
    if endpoint.auto_canary and not endpoint.challenger_id and _auto_canary(endpoint):
        actions.append("canary_started")
    _feed_kpis(endpoint)
    return actions


def _breach(endpoint: Endpoint) -> str:
    policy = endpoint.policy
    challenger = endpoint.challenger
    window = max(int(policy.get("breach_seconds", DEFAULT_WINDOW)), DEFAULT_WINDOW)
    since = max(timezone.now() - timedelta(seconds=window), challenger.created_at)
    stats = selectors.window_stats(endpoint=endpoint, revision_id=challenger.pk, since=since)
    reasons = []
    if stats["requests"] >= policy.get("min_requests", 50):
        if stats["error_rate"] > policy.get("max_error_rate", 0.05):
            reasons.append(
                f"error rate {stats['error_rate']:.1%} > {policy['max_error_rate']:.1%} "
                f"({stats['errors']} of {stats['requests']} requests)"
            )
        if stats["p99"] is not None and stats["p99"] > policy.get("max_p99_ms", 500):
            reasons.append(f"p99 latency {stats['p99']:.0f} ms > {policy['max_p99_ms']:.0f} ms")
    drifted = _drifted(endpoint, challenger, since)
    if drifted:
        reasons.append(f"input drift over PSI {policy.get('max_psi', 0.2)}: {', '.join(drifted)}")
    return "; ".join(reasons)


def _drifted(endpoint: Endpoint, revision, since) -> list[str]:
    """Features past the PSI limit; none without a big enough reference."""
    policy = endpoint.policy
    drift = selectors.drift(
        revision=revision,
        since=since,
        psi_threshold=policy.get("max_psi", 0.2),
        min_rows=int(policy.get("min_reference_rows", monitoring.MIN_REFERENCE_ROWS)),
    )
    return [f"{name} (PSI {d['value']:.2f})" for name, d in drift.items() if d.get("drifted") and d["metric"] == "psi"]


DRIFT_ALERT_EVERY = timedelta(hours=1)


def _champion_drift_alert(endpoint: Endpoint) -> bool:
    champion = endpoint.champion
    now = timezone.now()
    recent = endpoint.events.filter(kind="drift_alert", revision=champion, created_at__gte=now - DRIFT_ALERT_EVERY)
    if recent.exists():
        return False
    drifted = _drifted(endpoint, champion, now - timedelta(minutes=30))
    if not drifted:
        return False
    services.drift_alert(
        endpoint=endpoint,
        revision=champion,
        reason=(
            f"Champion revision {champion.number}: input drift over PSI {endpoint.policy.get('max_psi', 0.2)} "
            f"against its reference ({champion.reference_source}): {', '.join(drifted)}."
        ),
    )
    return True


def _kpi_test(endpoint: Endpoint) -> dict | None:
    """The challenger against the champion on the live KPI, over the requests both
    answered since the challenger started; None below `min_feedback` per arm."""
    policy = endpoint.policy
    challenger, champion = endpoint.challenger, endpoint.champion
    if champion is None or challenger.status != RevisionStatus.READY:
        return None
    metric, needed = policy.get("kpi_metric", "accuracy"), policy.get("min_feedback", 100)
    since = challenger.created_at
    theirs = selectors.live_pairs(endpoint=endpoint, revision_id=challenger.pk, since=since)
    ours = selectors.live_pairs(endpoint=endpoint, revision_id=champion.pk, since=since)
    if min(len(theirs), len(ours)) < needed:
        return None
    return monitoring.kpi_compare(
        theirs,
        ours,
        metric,
        confidence=float(policy.get("confidence", monitoring.DEFAULT_CONFIDENCE)),
        margin=float(policy.get("promote_margin", 0.0)),
    )


def _kpi_summary(result: dict) -> str:
    return (
        f"live {result['metric']} {result['challenger']:.4f} (n={result['n_challenger']}) "
        f"vs champion {result['champion']:.4f} (n={result['n_champion']})"
    )


def _test_data(result: dict, which: str) -> dict:
    p = result["p_better"] if which == "better" else result["p_worse"]
    keys = ("metric", "challenger", "champion", "n_challenger", "n_champion", "confidence", "test", "statistic")
    return {"kpi_test": {**{k: result[k] for k in keys}, "p_value": p, "direction": which}}


def _rollback_if_worse(endpoint: Endpoint) -> bool:
    if not endpoint.policy.get("kpi_rollback", True):
        return False
    result = _kpi_test(endpoint)
    if result is None or not result["worse"]:
        return False
    revision = endpoint.challenger
    services.challenger_rollback(
        endpoint=endpoint,
        actor=None,
        automatic=True,
        reason=(
            f"Automatic rollback of revision {revision.number}: worse on the KPI, {_kpi_summary(result)}; "
            f"{monitoring.describe_test(result, 'worse')}."
        ),
        data=_test_data(result, "worse"),
    )
    Endpoint.objects.filter(pk=endpoint.pk).update(breach_since=None, breach_reason="")
    return True


def _rollback_if_breached(endpoint: Endpoint) -> bool:
    reason = _breach(endpoint)
    now = timezone.now()
    if not reason:
        if endpoint.breach_since is not None:
            Endpoint.objects.filter(pk=endpoint.pk).update(breach_since=None, breach_reason="")
        return False
    if endpoint.breach_since is None:
        Endpoint.objects.filter(pk=endpoint.pk).update(breach_since=now, breach_reason=reason[:300])
        endpoint.breach_since = now
    held = (now - endpoint.breach_since).total_seconds()
    if held < endpoint.policy.get("breach_seconds", DEFAULT_WINDOW):
        return False
    revision = endpoint.challenger
    services.challenger_rollback(
        endpoint=endpoint,
        actor=None,
        automatic=True,
        reason=f"Automatic rollback of revision {revision.number}: {reason}, for {held:.0f} s.",
    )
    Endpoint.objects.filter(pk=endpoint.pk).update(breach_since=None, breach_reason="")
    return True


def _promote_if_better(endpoint: Endpoint) -> bool:
    result = _kpi_test(endpoint)
    if result is None or not result["better"]:
        return False
    services.challenger_promote(
        endpoint=endpoint,
        actor=None,
        automatic=True,
        reason=(
            f"Automatic promotion of revision {endpoint.challenger.number}: {_kpi_summary(result)}; "
            f"{monitoring.describe_test(result, 'better')}."
        ),
        data=_test_data(result, "better"),
    )
    return True


def _auto_canary(endpoint: Endpoint) -> bool:
    champion = endpoint.champion
    key = endpoint.policy.get("offline_metric")
    if champion is None or not key or champion.model_version_number is None:
        return False
    try:
        candidates = links.newer_versions(
            model_name=champion.model_name, project_id=endpoint.project_id, after_version=champion.model_version_number
        )
    except Exception:
        logger.exception("auto-canary: listing versions for %s failed", endpoint.slug)
        return False
    higher = endpoint.policy.get("offline_higher_is_better", True)
    tried = set(endpoint.revisions.values_list("model_version_number", flat=True))
    for info in reversed(candidates):
        value, base = info.metrics.get(key), champion.offline_metric
        if info.version in tried or value is None or base is None:
            continue
        if (value > base) if higher else (value < base):
            services.revision_deploy(
                endpoint=endpoint,
                actor=None,
                model_name=info.model_name,
                version=info.version,
                role="canary",
                traffic=endpoint.policy.get("canary_traffic", 0.1),
                automatic=True,
                version_info=info,
                reason=f"Automatic canary: v{info.version} {key} {value:.4f} beats the champion's {base:.4f}.",
            )
            return True
    return False


def _feed_kpis(endpoint: Endpoint) -> None:
    now = timezone.now()
    interval = timedelta(seconds=settings.DEPLOYMENT_KPI_FEED_INTERVAL)
    if endpoint.champion_id is None or (endpoint.kpi_fed_at and now - endpoint.kpi_fed_at < interval):
        return
    fed = False
    for kpi, metric in links.kpis_fed_by(project_id=endpoint.project_id, endpoint_slug=endpoint.slug):
        if metric not in monitoring.KPI_METRICS:
            continue
        result = selectors.live_kpi(
            endpoint=endpoint, revision_id=endpoint.champion_id, metric=metric, since=now - timedelta(hours=1)
        )
        if result["value"] is not None:
            links.kpi_record(kpi=kpi, value=result["value"], source=f"endpoint:{endpoint.slug}")
            fed = True
    if fed:
        Endpoint.objects.filter(pk=endpoint.pk).update(kpi_fed_at=now)
