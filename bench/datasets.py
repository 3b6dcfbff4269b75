"""Dataset versions benchmark (issue 20): a version over N archived records of ~1 KB
(manifest only), its profile (time and peak RSS of the profiling process), and the
profile of an uploaded 1M x 20 table.

Runs standalone on a fresh embedded platform (SQLite in a temporary MLP_DATA_DIR,
unless DATABASE_URL is set):

    .venv/bin/python bench/datasets.py [--records 1000000] [--rows 1000000]

Each measurement runs in its own process (peak RSS is per process: ru_maxrss)."""

import argparse
import json
import os
from pathlib import Path
import resource
import subprocess
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_DEBUG", "1")
OWN_DIR = "MLP_DATA_DIR" not in os.environ
if OWN_DIR:
    os.environ["MLP_DATA_DIR"] = tempfile.mkdtemp(prefix="mlp-bench-datasets-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings")
os.environ.setdefault("MLP_LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def archive(records: int) -> None:
    """Appends `records` ~1 KB records to a stream's archive and indexes the segments."""
    import datetime as dt

    import orjson

    from data.archive import Limits, LocalArchiveStore, StreamLog
    from data.models import Segment, Stream
    from projects.models import Project
    from tests.factories import UserFactory, make_project

    project = Project.objects.filter(slug="bench").first() or make_project(owner=UserFactory(), slug="bench")
    stream = Stream.objects.create(project=project, name="sensors", slug="sensors")
    from django.conf import settings

    store = LocalArchiveStore(Path(settings.DATA_ARCHIVE_DIR))

    def index(sealed):
        at = lambda ms: dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)  # noqa: E731
        Segment.objects.create(
            stream=stream,
            first_seq=sealed.first_seq,
            last_seq=sealed.last_seq,
            records=sealed.records,
            bytes=sealed.bytes,
            path=sealed.path,
            sha256=sealed.sha256,
            first_at=at(sealed.first_at_ms),
            last_at=at(sealed.last_at_ms),
            sealed_at=at(sealed.sealed_at_ms),
        )

    log = StreamLog(store, "bench/sensors", limits=Limits(records=100_000, seconds=10**9), on_seal=index)
    padding = "x" * 700
    batch = 5000
    for start in range(0, records, batch):
        rows = [
            (
                orjson.dumps(
                    {
                        "id": i,
                        "site": f"s{i % 37}",
                        "temp": 20 + (i % 100) / 10,
                        "vib": (i * 7 % 1000) / 1000,
                        "ok": i % 11 != 0,
                        **{f"f{k}": (i * k) % 97 for k in range(12)},
                        "note": padding,
                    }
                ),
                f"k{i}",
            )
            for i in range(start, min(start + batch, records))
        ]
        log.append_sync(rows)
    log.seal_if_due(now_ms=int(time.time() * 1000) + 3 * 3600 * 1000)
    log.close()


def cut_version() -> dict:
    from data.datasets import services
    from data.models import Stream

    stream = Stream.objects.get(slug="sensors")
    started = time.perf_counter()
    version, _ = services.version_from_stream(project=stream.project, name="window", stream=stream, user=None)
    return {"seconds": time.perf_counter() - started, "rows": version.rows, "version_id": version.pk}


def profile(version_id: int) -> dict:
    from data.datasets import profile as profiling
    from data.models import DatasetVersion

    version = DatasetVersion.objects.get(pk=version_id)
    started = time.perf_counter()
    result, _ = profiling.profile_version(version)
    return {
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": _peak_mb(),
        "rows": result["rows"],
        "columns": len(result["columns"]),
    }


def upload_table(rows: int) -> dict:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from data.datasets import services
    from data.models import Stream

    project = Stream.objects.get(slug="sensors").project
    rng = np.random.default_rng(0)
    path = Path(tempfile.mkdtemp()) / "table.parquet"
    columns = {f"n{k}": rng.normal(k, 1, rows) for k in range(15)}
    columns.update({f"c{k}": pa.array(rng.integers(0, 50, rows).astype(str)) for k in range(5)})
    pq.write_table(pa.table(columns), path)
    started = time.perf_counter()
    version, _ = services.version_from_upload(project=project, name="table", path=path, filename="t.parquet", user=None)
    path.unlink()
    return {"seconds": time.perf_counter() - started, "rows": version.rows, "version_id": version.pk}


def child(step: str, arg: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--step", step, "--arg", arg],
        capture_output=True,
        text=True,
        env=os.environ,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--step", default="")
    parser.add_argument("--arg", default="")
    args = parser.parse_args()
    if args.step:
        result = {
            "archive": lambda: archive(int(args.arg)) or {},
            "cut": cut_version,
            "profile": lambda: profile(int(args.arg)),
            "upload": lambda: upload_table(int(args.arg)),
        }[args.step]()
        print(json.dumps(result))
        return
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    child("archive", str(args.records))
    print(f"archived {args.records} records of ~1 KB in {time.perf_counter() - started:.1f} s")
    cut = child("cut", "")
    print(f"version over {cut['rows']} archived records (manifest only): {cut['seconds']:.2f} s  (goal <= 5 s)")
    prof = child("profile", str(cut["version_id"]))
    print(f"profile of it: {prof['seconds']:.1f} s, peak RSS {prof['peak_rss_mb']:.0f} MB  (goal <= 30 s, <= 1024 MB)")
    up = child("upload", str(args.rows))
    print(f"upload of a {up['rows']} x 20 Parquet table (converted, hashed): {up['seconds']:.1f} s")
    prof = child("profile", str(up["version_id"]))
    print(f"profile of it: {prof['seconds']:.1f} s, peak RSS {prof['peak_rss_mb']:.0f} MB")
    if OWN_DIR:  # the archive of a full run is about 1 GB
        import shutil

        shutil.rmtree(os.environ["MLP_DATA_DIR"], ignore_errors=True)


if __name__ == "__main__":
    main()
