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

from data.datasets import reader, storage
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
            picked = column.filter(pa.array(keep))
            self.samples.append(picked.cast(pa.float64()) if self.kind == "numeric" else picked)

    def _add_distinct(self, valid: pa.Array) -> None:
        """The distinct values so far, kept as one Arrow array (the union is computed in
        C++); past DISTINCT_CAP the count is given up as "many"."""
        if self.distinct_overflow:
            return
        found = pc.unique(valid)
        if self.distinct is not None:
            try:
                found = pc.unique(pa.concat_arrays([self.distinct.cast(found.type), found]))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # types that do not mix
                self.distinct, self.distinct_overflow = None, True
                return
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
    """(profile, schema record) of the version, streaming over its batches. A version
    whose schema is not known yet (archive segments) is profiled in the same single
    pass that learns its schema."""
    known = storage.schema_from_json(version.schema)
    if known is None and not version.manifest.get("filter"):
        return _profile_learning_schema(version)
    raw = known or reader.stored_raw_schema(version)
    schema = reader.version_schema(version, raw)
    columns = [_Column(field) for field in schema]
    sampler = _Sampler(version.rows)
    rows = batches = 0
    for batch in reader.iter_batches(version, raw):
        keep = sampler.keep(batch.num_rows)
        for index, column in enumerate(columns):
            column.add(batch.column(index), keep)
        rows += batch.num_rows
        batches += 1
    return _assemble(columns, rows, batches), reader.schema_record(raw, version.manifest.get("columns"))


class _Sampler:
    """A uniform Bernoulli row sample of about SAMPLE_ROWS rows, with a fixed seed."""

    def __init__(self, rows: int) -> None:
        self.rate = min(1.0, SAMPLE_ROWS / max(rows, 1))
        self.rng = np.random.default_rng(20)

    def keep(self, n: int) -> np.ndarray:
        return self.rng.random(n) < self.rate if self.rate < 1.0 else np.ones(n, dtype=bool)


def _profile_learning_schema(version: DatasetVersion) -> tuple[dict[str, Any], dict]:
    wanted = version.manifest.get("columns")
    columns: dict[str, _Column] = {}
    schemas: list[pa.Schema] = []
    sampler = _Sampler(version.rows)
    rows = batches = 0
    for part in version.manifest["parts"]:
        for batch in reader.part_batches(part):
            schemas.append(batch.schema)
            keep = sampler.keep(batch.num_rows)
            for field in batch.schema:
                if wanted and field.name not in wanted:
                    continue
                column = _column_for(columns, field)
                column.add(batch.column(field.name), keep)
            rows += batch.num_rows
            batches += 1
    raw = pa.unify_schemas(schemas, promote_options="permissive")
    order = wanted or raw.names
    ordered = []
    for name in order:
        column = columns.get(name) or _Column(raw.field(name))
        column.type = raw.field(name).type
        column.nulls += rows - column.count - column.nulls  # rows whose records lack the key
        ordered.append(column)
    return _assemble(ordered, rows, batches), reader.schema_record(raw, wanted)


def _column_for(columns: dict[str, "_Column"], field: pa.Field) -> "_Column":
    """The accumulator of a column, whose type may firm up (all-null first) or change
    kind between segments (then only counts are kept)."""
    column = columns.get(field.name)
    kind = _kind(field.type)
    if column is None:
        column = columns[field.name] = _Column(field)
    elif column.kind != kind and not pa.types.is_null(field.type):
        if column.count == 0:
            fresh = _Column(field)
            fresh.nulls = column.nulls
            column = columns[field.name] = fresh
        elif {column.kind, kind} != {"numeric"}:
            column.kind, column.samples = "other", []
            column.distinct, column.distinct_overflow = None, True
    return column


def _assemble(columns: list["_Column"], rows: int, batches: int) -> dict[str, Any]:
    results = [c.result() for c in columns]
    sampled = {c.name: c.sample for c in columns if c.samples and c.kind != "other"}
    return {
        "rows": rows,
        "columns": results,
        "sample_rows": int(max((len(v) for v in sampled.values()), default=0)),
        "batches": batches,
        "reference": monitoring.reference_capture(sampled),
    }
