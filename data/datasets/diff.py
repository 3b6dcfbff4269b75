"""Two versions side by side: schema changes, row counts and the distribution shift of
each shared column, by the statistics live monitoring uses (deployments.monitoring:
PSI over the base version's decile bins for numbers, Jensen-Shannon and chi-square for
categories). The base's side is its stored profile reference; the other is a uniform
sample read batch by batch, so neither version is loaded whole."""

from typing import Any

import numpy as np

from data.datasets import reader
from data.datasets.profile import SAMPLE_ROWS
from data.models import DatasetVersion, ProfileStatus
from deployments import monitoring
from mlplatform.errors import InvalidState


def sample_columns(version: DatasetVersion, names: list[str], rows: int = SAMPLE_ROWS) -> dict[str, list]:
    """A uniform row sample (fixed seed) of the named columns."""
    rate = min(1.0, rows / max(version.rows, 1))
    rng = np.random.default_rng(20)
    out: dict[str, list] = {name: [] for name in names}
    raw = reader.stored_raw_schema(version)
    for batch in reader.iter_batches(version, raw):
        keep = rng.random(batch.num_rows) < rate
        picked = batch.filter(keep) if rate < 1.0 else batch
        for name in names:
            if name in picked.schema.names:
                out[name].extend(picked.column(name).to_pylist())
    return out


def _fields(version: DatasetVersion) -> dict[str, str]:
    return {f["name"]: f["type"] for f in (version.schema or {}).get("fields", [])}


def version_diff(base: DatasetVersion, other: DatasetVersion) -> dict[str, Any]:
    """Precondition: both versions are readable (not broken) and the base is profiled."""
    if base.profile_status != ProfileStatus.READY or not base.profile:
        raise InvalidState("The base version's profile is not ready yet; diff again once it is.")
    before, after = _fields(base), _fields(other) or {f.name: str(f.type) for f in reader.version_schema(other)}
    reference = base.profile.get("reference") or {}
    shared = [name for name in reference if name in after]
    report = monitoring.drift_report(reference, sample_columns(other, shared))
    return {
        "base": base.digest,
        "other": other.digest,
        "rows": {"base": base.rows, "other": other.rows, "change": other.rows - base.rows},
        "schema": {
            "added": sorted(set(after) - set(before)),
            "removed": sorted(set(before) - set(after)),
            "changed": [
                {"name": n, "base": before[n], "other": after[n]}
                for n in sorted(set(before) & set(after))
                if before[n] != after[n]
            ],
        },
        "columns": report,
        "drifted": sorted(name for name, entry in report.items() if entry.get("drifted")),
    }
