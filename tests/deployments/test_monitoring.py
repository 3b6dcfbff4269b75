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


def _pairs(hits: int, n: int) -> list[tuple[int, int]]:
    return [(1, 1)] * hits + [(0, 1)] * (n - hits)


def test_noise_is_not_a_better_model_but_a_real_gap_is():
    # The promotion seen on noise: 0.97 vs 0.96 over 330 rows each.
    noise = monitoring.kpi_compare(_pairs(320, 330), _pairs(317, 330), "accuracy")
    assert not noise["better"] and not noise["worse"]
    assert noise["test"] == "two-proportion z-test" and 0.2 < noise["p_better"] < 0.5
    real = monitoring.kpi_compare(_pairs(190, 200), _pairs(160, 200), "accuracy")
    assert real["better"] and real["p_better"] < 0.001 and not real["worse"]
    worse = monitoring.kpi_compare(_pairs(120, 200), _pairs(180, 200), "accuracy")
    assert worse["worse"] and worse["p_worse"] < 0.001 and not worse["better"]
    assert "p=" in monitoring.describe_test(worse, "worse") and "95% confidence" in monitoring.describe_test(
        worse, "worse"
    )


def test_confidence_and_margin_are_honoured_and_regression_uses_welch():
    borderline = monitoring.kpi_compare(_pairs(180, 200), _pairs(168, 200), "accuracy")
    assert 0.01 < borderline["p_better"] < 0.05
    assert borderline["better"]
    assert not monitoring.kpi_compare(_pairs(180, 200), _pairs(168, 200), "accuracy", confidence=0.99)["better"]
    assert not monitoring.kpi_compare(_pairs(180, 200), _pairs(168, 200), "accuracy", margin=0.1)["better"]
    rng = np.random.default_rng(3)
    truth = rng.normal(0, 1, 300)
    close = [(t + e, t) for t, e in zip(truth, rng.normal(0, 0.1, 300), strict=True)]
    far = [(t + e, t) for t, e in zip(truth, rng.normal(0, 1.0, 300), strict=True)]
    result = monitoring.kpi_compare(close, far, "rmse")
    assert result["test"] == "Welch t-test" and result["better"] and result["challenger"] < result["champion"]


def test_a_reference_needs_enough_rows():
    tiny = monitoring.reference_capture({"x": [5.1, 4.9]})
    assert monitoring.reference_rows(tiny) == 2 and not monitoring.reference_usable(tiny)
    assert monitoring.reference_usable(monitoring.reference_capture({"x": list(range(150))}))
    assert not monitoring.reference_usable({})
