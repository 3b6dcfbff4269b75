"""A version's profile, computed in one pass over its record batches with bounded
memory: counts, nulls and top categories exactly; distinct counts exactly up to
DISTINCT_CAP; quantiles, histograms and the drift reference from a uniform row sample
of at most SAMPLE_ROWS (a fixed seed: profiling twice gives the same profile).

The drift reference is deployments.monitoring's own (`reference_capture`), so a
version can stand in for a model's training data with the statistics monitoring uses."""

from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data.datasets import reader
from data.models import DatasetVersion
from deployments import monitoring

SAMPLE_ROWS = 100_000
DISTINCT_CAP = 100_000
TOP_CATEGORIES = 20
CATEGORY_CAP = 50_000
HISTOGRAM_BINS = 30
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def _kind(field_type: pa.DataType) -> str:
    if pa.types.is_boolean(field_type):
        return "boolean"
    if pa.types.is_integer(field_type) or pa.types.is_floating(field_type) or pa.types.is_decimal(field_type):
        return "numeric"
    if pa.types.is_string(field_type) or pa.types.is_large_string(field_type) or pa.types.is_dictionary(field_type):
        return "categorical"
    if pa.types.is_temporal(field_type):
        return "temporal"
    return "other"


class _Column:
    def __init__(self, field: pa.Field) -> None:
        self.name, self.type, self.kind = field.name, field.type, _kind(field.type)
        self.count = self.nulls = 0
        self.distinct: pa.Array | None = None
        self.distinct_overflow = self.kind == "other"
        self.total = self.total_sq = 0.0
        self.low: Any = None
        self.high: Any = None
        self.categories: Counter = Counter()
        self.categories_exact = True
        self.samples: list[pa.Array] = []

    def add(self, column: pa.Array, keep: np.ndarray | None) -> None:
        if pa.types.is_dictionary(column.type):  # batches may carry different dictionaries
            column = column.cast(column.type.value_type)
        self.nulls += column.null_count
        valid = pc.drop_null(column)
        self.count += len(valid)
        if not len(valid):
            return
        self._add_distinct(valid)
        if self.kind == "numeric":
            self._add_numeric(valid)
        elif self.kind in ("categorical", "boolean"):
            self._add_categories(valid)
        elif self.kind == "temporal":
            bounds = pc.min_max(valid)
            self.low = _min(self.low, bounds["min"].as_py())
            self.high = _max(self.high, bounds["max"].as_py())
        if keep is not None and self.kind in ("numeric", "categorical", "boolean"):
            self.samples.append(column.filter(pa.array(keep)))

    def _add_distinct(self, valid: pa.Array) -> None:
        """The distinct values so far, kept as one Arrow array (the union is computed in
        C++); past DISTINCT_CAP the count is given up as "many"."""
        if self.distinct_overflow:
            return
        found = pc.unique(valid)
        if self.distinct is not None:
            found = pc.unique(pa.concat_arrays([self.distinct, found.cast(self.distinct.type)]))
        self.distinct = found
        if len(found) > DISTINCT_CAP:
            self.distinct, self.distinct_overflow = None, True

    @property
    def sample(self) -> list:
        return pa.concat_arrays(self.samples).to_pylist() if self.samples else []

    def _add_numeric(self, valid: pa.Array) -> None:
        values = valid.cast(pa.float64())
        self.total += pc.sum(values).as_py() or 0.0
        self.total_sq += pc.sum(pc.multiply(values, values)).as_py() or 0.0
        bounds = pc.min_max(values)
        self.low = _min(self.low, bounds["min"].as_py())
        self.high = _max(self.high, bounds["max"].as_py())

    def _add_categories(self, valid: pa.Array) -> None:
        counts = pc.value_counts(valid.cast(pa.string()) if self.kind == "boolean" else valid)
        for item in counts.to_pylist():
            self.categories[str(item["values"])] += item["counts"]
        if len(self.categories) > CATEGORY_CAP:
            self.categories = Counter(dict(self.categories.most_common(CATEGORY_CAP // 2)))
            self.categories_exact = False

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": str(self.type),
            "kind": self.kind,
            "count": self.count,
            "nulls": self.nulls,
            "distinct": None if self.distinct_overflow else len(self.distinct) if self.distinct is not None else 0,
        }
        if self.kind == "numeric" and self.count:
            out.update(self._numeric_result())
        elif self.kind in ("categorical", "boolean") and self.count:
            top = self.categories.most_common(TOP_CATEGORIES)
            out["top"] = [{"value": v, "count": c} for v, c in top]
            out["top_exact"] = self.categories_exact
        elif self.kind == "temporal" and self.count:
            out.update(min=str(self.low), max=str(self.high))
        return out

    def _numeric_result(self) -> dict[str, Any]:
        mean = self.total / self.count
        variance = max(self.total_sq / self.count - mean * mean, 0.0)
        out: dict[str, Any] = {"min": self.low, "max": self.high, "mean": mean, "std": variance**0.5}
        merged = pc.drop_null(pa.concat_arrays(self.samples)) if self.samples else pa.array([], pa.float64())
        sample = merged.cast(pa.float64()).to_numpy(zero_copy_only=False)
        if len(sample):
            out["quantiles"] = {
                str(q): float(x) for q, x in zip(QUANTILES, np.quantile(sample, QUANTILES), strict=True)
            }
            counts, edges = np.histogram(sample, bins=HISTOGRAM_BINS)
            out["histogram"] = {"edges": edges.tolist(), "counts": counts.tolist()}
        return out


def _min(a, b):
    return b if a is None else (a if b is None else min(a, b))


def _max(a, b):
    return b if a is None else (a if b is None else max(a, b))


def profile_version(version: DatasetVersion) -> tuple[dict[str, Any], dict]:
    """(profile, schema record) of the version, streaming over its batches."""
    raw = reader.stored_raw_schema(version)
    schema = reader.version_schema(version, raw)
    columns = [_Column(field) for field in schema]
    rate = min(1.0, SAMPLE_ROWS / max(version.rows, 1))
    rng = np.random.default_rng(20)
    rows = batches = 0
    for batch in reader.iter_batches(version, raw):
        keep = rng.random(batch.num_rows) < rate if rate < 1.0 else np.ones(batch.num_rows, dtype=bool)
        for index, column in enumerate(columns):
            column.add(batch.column(index), keep)
        rows += batch.num_rows
        batches += 1
    results = [c.result() for c in columns]
    sampled = {c.name: c.sample for c in columns if c.samples}
    profile = {
        "rows": rows,
        "columns": results,
        "sample_rows": int(max((len(v) for v in sampled.values()), default=0)),
        "batches": batches,
        "reference": monitoring.reference_capture(sampled),
    }
    return profile, reader.schema_record(raw, version.manifest.get("columns"))
