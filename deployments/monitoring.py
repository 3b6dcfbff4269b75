"""Monitoring math: latency percentiles, per-minute aggregates, drift, live KPIs.

Pure functions over plain data (lists, dicts, DataFrames), so the policies, the
dashboards and the tests share one definition of "p99" or "drifted".

Drift compares live inputs with a reference of at least MIN_REFERENCE_ROWS rows (the
training data, a sample saved at log_model, or the revision's first live requests as a
burn-in window); a smaller one is no reference at all, since a two-row input example
makes every feature look drifted. Numeric features by PSI over the reference's decile bins (0.1 is a shift to
watch, 0.2 a significant one: the default threshold), categorical ones by chi-square
against the reference frequencies and by Jensen-Shannon distance (base 2, in [0, 1])."""

from collections.abc import Iterable, Mapping, Sequence
import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

PSI_THRESHOLD = 0.2
JS_THRESHOLD = 0.1
CHI2_P_VALUE = 0.01
EPSILON = 1e-4
MIN_DRIFT_SAMPLES = 30
MIN_REFERENCE_ROWS = 100
OTHER = "__other__"


# -- latency and traffic --------------------------------------------------------
def percentiles(latencies: Sequence[float]) -> dict[str, float | None]:
    if len(latencies) == 0:
        return {"p50": None, "p95": None, "p99": None}
    p50, p95, p99 = np.percentile(np.asarray(latencies, dtype=float), [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99)}


def minute_aggregates(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per (minute, revision, role): requests, server errors, client errors, latency
    percentiles. Records carry `at` (datetime), `revision_id`, `role`, `status`,
    `latency_ms`."""
    frame = pd.DataFrame(list(records), columns=["at", "revision_id", "role", "status", "latency_ms"])
    if frame.empty:
        return []
    frame["minute"] = pd.to_datetime(frame["at"], utc=True).dt.floor("min")
    frame["revision_id"] = frame["revision_id"].astype("Int64")
    out = []
    for (minute, revision_id, role), group in frame.groupby(["minute", "revision_id", "role"], dropna=False):
        status = group["status"]
        out.append(
            {
                "minute": minute.to_pydatetime(),
                "revision_id": None if pd.isna(revision_id) else int(revision_id),
                "role": role,
                "requests": len(group),
                "errors": int((status >= 500).sum()),
                "client_errors": int(((status >= 400) & (status < 500)).sum()),
                **percentiles(group["latency_ms"].to_numpy()),
            }
        )
    return out


def error_rate(requests: int, errors: int) -> float:
    return errors / requests if requests else 0.0


# -- drift ----------------------------------------------------------------------
def _is_numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values if v is not None)


def reference_capture(columns: Mapping[str, Sequence[Any]], *, bins: int = 10) -> dict[str, dict[str, Any]]:
    """A compact reference per feature: decile edges and shares for numeric features,
    value shares (top 50, the rest as one bucket) for categorical ones."""
    reference = {}
    for name, values in columns.items():
        clean = [v for v in values if v is not None]
        if not clean:
            continue
        if _is_numeric(clean):
            array = np.asarray(clean, dtype=float)
            edges = np.unique(np.quantile(array, np.linspace(0, 1, bins + 1))[1:-1]).tolist()
            reference[name] = {
                "kind": "numeric",
                "edges": edges,
                "shares": _numeric_shares(array, edges),
                "n": len(clean),
            }
        else:
            counts = pd.Series([str(v) for v in clean]).value_counts()
            top = counts.head(50)
            shares = (top / len(clean)).to_dict()
            if len(counts) > 50:
                shares[OTHER] = float(counts.iloc[50:].sum() / len(clean))
            reference[name] = {"kind": "categorical", "shares": shares, "n": len(clean)}
    return reference


def reference_rows(reference: Mapping[str, Mapping[str, Any]]) -> int:
    """Rows behind a reference: the smallest per-feature count (0 for none)."""
    return min((int(ref.get("n", 0)) for ref in reference.values()), default=0)


def reference_usable(reference: Mapping[str, Mapping[str, Any]], min_rows: int = MIN_REFERENCE_ROWS) -> bool:
    return bool(reference) and reference_rows(reference) >= min_rows


def _numeric_shares(values: np.ndarray, edges: list[float]) -> list[float]:
    # Bins are (-inf, e0], (e0, e1], ..., (e_last, inf): live values outside the
    # training range still land somewhere.
    index = np.searchsorted(np.asarray(edges), values, side="left")
    counts = np.bincount(index, minlength=len(edges) + 1)
    return (counts / max(len(values), 1)).tolist()


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    e = np.clip(np.asarray(expected, dtype=float), EPSILON, None)
    a = np.clip(np.asarray(actual, dtype=float), EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_drift(reference: Mapping[str, Any], values: Sequence[float]) -> float:
    array = np.asarray([v for v in values if v is not None], dtype=float)
    return psi(reference["shares"], _numeric_shares(array, reference["edges"]))


def categorical_drift(reference: Mapping[str, Any], values: Sequence[Any]) -> dict[str, float]:
    expected_shares: dict[str, float] = dict(reference["shares"])
    known = set(expected_shares)
    live = pd.Series([str(v) if str(v) in known else OTHER for v in values if v is not None]).value_counts()
    categories = sorted(known | set(live.index))
    expected = np.array([expected_shares.get(c, 0.0) for c in categories]) + EPSILON
    expected /= expected.sum()
    observed = np.array([live.get(c, 0) for c in categories], dtype=float)
    n = observed.sum()
    chi2, p_value = stats.chisquare(observed, expected * n) if n else (0.0, 1.0)
    js = distance.jensenshannon(expected, observed / n if n else expected, base=2)
    return {"chi2": float(chi2), "p_value": float(p_value), "js": float(0.0 if math.isnan(js) else js)}


def drift_report(
    reference: Mapping[str, Mapping[str, Any]],
    live: Mapping[str, Sequence[Any]],
    *,
    psi_threshold: float = PSI_THRESHOLD,
    js_threshold: float = JS_THRESHOLD,
    min_samples: int = MIN_DRIFT_SAMPLES,
) -> dict[str, dict[str, Any]]:
    """Per feature: the statistic, its threshold, whether it drifted, and the sample size."""
    report = {}
    for name, ref in reference.items():
        values = [v for v in live.get(name, []) if v is not None]
        entry: dict[str, Any] = {"kind": ref["kind"], "n": len(values)}
        if len(values) < min_samples:
            entry.update(metric="psi" if ref["kind"] == "numeric" else "js", value=None, drifted=False)
        elif ref["kind"] == "numeric":
            value = numeric_drift(ref, values)
            entry.update(metric="psi", value=value, threshold=psi_threshold, drifted=value > psi_threshold)
        else:
            result = categorical_drift(ref, values)
            entry.update(
                metric="js", value=result["js"], threshold=js_threshold, chi2=result["chi2"], p_value=result["p_value"]
            )
            entry["drifted"] = result["js"] > js_threshold or result["p_value"] < CHI2_P_VALUE
        report[name] = entry
    return report


# -- comparing two revisions on the live KPI -------------------------------------------
DEFAULT_CONFIDENCE = 0.95


def kpi_compare(
    challenger: Sequence[tuple[Any, Any]],
    champion: Sequence[tuple[Any, Any]],
    metric: str,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    margin: float = 0.0,
) -> dict[str, Any]:
    """Is the challenger better (or worse) than the champion on `metric`, beyond chance?

    accuracy / error_rate: a two-proportion z-test on hits; rmse / mae: Welch's t-test
    on the per-row squared / absolute errors. One-sided p-values both ways; `better`
    and `worse` hold only at the given confidence (and past `margin`)."""
    alpha = 1 - confidence
    a, b = live_kpi(challenger, metric), live_kpi(champion, metric)
    out: dict[str, Any] = {"metric": metric, "challenger": a, "champion": b, "n_challenger": len(challenger)}
    out.update(n_champion=len(champion), confidence=confidence, better=False, worse=False)
    if a is None or b is None:
        return {**out, "test": "none", "p_better": None, "p_worse": None}
    if metric in {"accuracy", "error_rate"}:
        hits_a = sum(1 for p, t in challenger if _same(p, t))
        hits_b = sum(1 for p, t in champion if _same(p, t))
        z = _two_proportion_z(hits_a, len(challenger), hits_b, len(champion))
        # z > 0: the challenger hits more often; for error_rate that is also "better".
        test = "two-proportion z-test"
    else:
        errors_a, errors_b = _row_errors(challenger, metric), _row_errors(champion, metric)
        t = stats.ttest_ind(errors_b, errors_a, equal_var=False).statistic
        z = 0.0 if math.isnan(t) else float(t)  # z > 0: the challenger's errors are smaller
        test = "Welch t-test"
    p_better, p_worse = float(stats.norm.sf(z)), float(stats.norm.cdf(z))
    gap = (a - b) if higher_is_better(metric) else (b - a)
    out.update(test=test, statistic=z, p_better=p_better, p_worse=p_worse)
    out["better"] = p_better < alpha and gap > margin
    out["worse"] = p_worse < alpha and gap < 0
    return out


def _two_proportion_z(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float:
    pooled = (hits_a + hits_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    diff = hits_a / n_a - hits_b / n_b
    if se == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / se


def _row_errors(pairs: Sequence[tuple[Any, Any]], metric: str) -> np.ndarray:
    diff = np.asarray([float(p) - float(t) for p, t in pairs])
    return diff**2 if metric == "rmse" else np.abs(diff)


def describe_test(result: Mapping[str, Any], which: str) -> str:
    p = result["p_better"] if which == "better" else result["p_worse"]
    return f"{result['test']}, one-sided p={p:.4g} at {result['confidence']:.0%} confidence"


# -- live KPI from ground truth ----------------------------------------------------
KPI_METRICS = {"accuracy": True, "error_rate": False, "rmse": False, "mae": False}


def higher_is_better(metric: str) -> bool:
    return KPI_METRICS.get(metric, True)


def live_kpi(pairs: Sequence[tuple[Any, Any]], metric: str) -> float | None:
    """`metric` over (prediction, actual) pairs; None without pairs."""
    if not pairs:
        return None
    if metric in {"accuracy", "error_rate"}:
        hits = sum(1 for predicted, actual in pairs if _same(predicted, actual))
        accuracy = hits / len(pairs)
        return accuracy if metric == "accuracy" else 1 - accuracy
    predicted = np.asarray([p for p, _ in pairs], dtype=float)
    actual = np.asarray([a for _, a in pairs], dtype=float)
    if metric == "rmse":
        return float(np.sqrt(np.mean((predicted - actual) ** 2)))
    if metric == "mae":
        return float(np.mean(np.abs(predicted - actual)))
    raise ValueError(f"unknown KPI metric {metric!r}; use one of {sorted(KPI_METRICS)}")


def _same(predicted: Any, actual: Any) -> bool:
    if isinstance(predicted, (int, float)) and isinstance(actual, (int, float)):
        return float(predicted) == float(actual)
    return str(predicted) == str(actual)


# -- mergeable latency histograms ---------------------------------------------------
BUCKET_BASE_MS = 0.05
BUCKET_GROWTH = 1.05
_LOG_GROWTH = math.log(BUCKET_GROWTH)


def latency_bucket(ms: float) -> int:
    """Bucket i holds latencies in (base * g^(i-1), base * g^i]; 5% wide."""
    if ms <= BUCKET_BASE_MS:
        return 0
    return math.ceil(math.log(ms / BUCKET_BASE_MS) / _LOG_GROWTH - 1e-9)


def bucket_upper_ms(index: int) -> float:
    return BUCKET_BASE_MS * BUCKET_GROWTH**index


def histogram_add(histogram: dict[str, int], latencies: Iterable[float]) -> dict[str, int]:
    for ms in latencies:
        key = str(latency_bucket(ms))
        histogram[key] = histogram.get(key, 0) + 1
    return histogram


def histogram_merge(*histograms: Mapping[str, int]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for histogram in histograms:
        for key, count in histogram.items():
            merged[key] = merged.get(key, 0) + count
    return merged


def histogram_percentiles(histogram: Mapping[str, int]) -> dict[str, float | None]:
    total = sum(histogram.values())
    if not total:
        return {"p50": None, "p95": None, "p99": None}
    ordered = sorted((int(k), v) for k, v in histogram.items())
    out: dict[str, float | None] = {}
    for label, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
        rank, seen = q * total, 0
        for index, count in ordered:
            seen += count
            if seen >= rank:
                out[label] = bucket_upper_ms(index)
                break
    return out
