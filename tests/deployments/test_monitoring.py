"""Monitoring math: percentiles, histograms, aggregates, drift, live KPIs."""

from datetime import UTC, datetime

import numpy as np
import pytest

from deployments import monitoring


def test_psi_is_small_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    reference = monitoring.reference_capture({"x": rng.normal(0, 1, 5000).tolist()})
    same = monitoring.drift_report(reference, {"x": rng.normal(0, 1, 2000).tolist()})
    shifted = monitoring.drift_report(reference, {"x": rng.normal(1.0, 1, 2000).tolist()})
    assert same["x"]["value"] < 0.05 and not same["x"]["drifted"]
    assert shifted["x"]["value"] > monitoring.PSI_THRESHOLD and shifted["x"]["drifted"]


def test_drift_threshold_is_configurable_and_needs_enough_samples():
    rng = np.random.default_rng(1)
    reference = monitoring.reference_capture({"x": rng.normal(0, 1, 5000).tolist()})
    live = {"x": rng.normal(0.3, 1, 2000).tolist()}
    value = monitoring.drift_report(reference, live)["x"]["value"]
    assert monitoring.drift_report(reference, live, psi_threshold=value / 2)["x"]["drifted"]
    assert not monitoring.drift_report(reference, live, psi_threshold=value * 2)["x"]["drifted"]
    assert monitoring.drift_report(reference, {"x": [100.0] * 5})["x"]["value"] is None


def test_categorical_drift_by_jensen_shannon_and_chi_square():
    reference = monitoring.reference_capture({"colour": ["red"] * 500 + ["blue"] * 500})
    assert reference["colour"]["kind"] == "categorical"
    same = monitoring.drift_report(reference, {"colour": ["red"] * 100 + ["blue"] * 100})["colour"]
    new = monitoring.drift_report(reference, {"colour": ["green"] * 150 + ["red"] * 50})["colour"]
    assert same["value"] < 0.01 and not same["drifted"]
    assert new["value"] > 0.5 and new["drifted"] and new["p_value"] < 0.01


def test_percentiles_and_mergeable_histograms_agree_within_a_bucket():
    latencies = np.random.default_rng(2).lognormal(1, 0.6, 10000).tolist()
    exact = monitoring.percentiles(latencies)
    half = len(latencies) // 2
    merged = monitoring.histogram_merge(
        monitoring.histogram_add({}, latencies[:half]), monitoring.histogram_add({}, latencies[half:])
    )
    approx = monitoring.histogram_percentiles(merged)
    for key in ("p50", "p95", "p99"):
        assert exact[key] <= approx[key] <= exact[key] * monitoring.BUCKET_GROWTH * 1.001


def test_minute_aggregates_split_by_revision_and_count_errors():
    t = datetime(2026, 1, 1, 12, 0, 5, tzinfo=UTC)
    records = [
        {"at": t, "revision_id": 1, "role": "champion", "status": 200, "latency_ms": 2.0},
        {"at": t, "revision_id": 1, "role": "champion", "status": 500, "latency_ms": 4.0},
        {"at": t, "revision_id": 2, "role": "challenger", "status": 400, "latency_ms": 1.0},
        {"at": t.replace(minute=1), "revision_id": 1, "role": "champion", "status": 200, "latency_ms": 3.0},
    ]
    rows = {(r["minute"].minute, r["revision_id"]): r for r in monitoring.minute_aggregates(records)}
    assert rows[(0, 1)]["requests"] == 2 and rows[(0, 1)]["errors"] == 1
    assert rows[(0, 2)]["client_errors"] == 1 and rows[(0, 2)]["errors"] == 0
    assert rows[(1, 1)]["p50"] == 3.0


@pytest.mark.parametrize(
    ("metric", "pairs", "value"),
    [
        ("accuracy", [(1, 1), (0, 1), (2, 2), ("a", "a")], 0.75),
        ("error_rate", [(1, 1), (0, 1)], 0.5),
        ("rmse", [(1.0, 2.0), (3.0, 3.0)], np.sqrt(0.5)),
        ("mae", [(1.0, 2.0), (3.0, 5.0)], 1.5),
    ],
)
def test_live_kpis(metric, pairs, value):
    assert monitoring.live_kpi(pairs, metric) == pytest.approx(value)
    assert monitoring.live_kpi([], metric) is None
