"""The plotly.js bundle (4.8 MB) served compressed and cached for good.

WhiteNoise serves a file's `.gz` sibling to browsers that accept it, and marks files
matching WHITENOISE_IMMUTABLE_FILE_TEST as cacheable for a year. plotly's own copy in
site-packages has no compressed sibling, so at start-up the app keeps one copy of it,
gzipped beside it, under a URL that carries plotly's version (an upgrade is a new URL,
so a year-long cache is safe)."""

import gzip
import logging
import os
from pathlib import Path
import shutil
import tempfile

import plotly

VERSION = plotly.__version__
SOURCE = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
URL_DIR = f"vendor/plotly-{VERSION}"
JS = f"{URL_DIR}/plotly.min.js"
PLAIN_JS = "vendor/plotly/plotly.min.js"  # plotly's own copy, uncompressed
logger = logging.getLogger(__name__)
prepared = False


def asset_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "assets" / f"plotly-{VERSION}"


def prepare(data_dir: Path) -> Path:
    """The copy and its .gz, written once per plotly version (atomically: several
    processes may start together)."""
    target = asset_dir(data_dir)
    js, packed = target / "plotly.min.js", target / "plotly.min.js.gz"
    if js.is_file() and packed.is_file() and js.stat().st_size == SOURCE.stat().st_size:
        return target
    target.mkdir(parents=True, exist_ok=True)
    _atomic_write(js, lambda out: shutil.copyfileobj(SOURCE.open("rb"), out))
    _atomic_write(packed, lambda out: out.write(gzip.compress(SOURCE.read_bytes(), compresslevel=9, mtime=0)))
    return target


def prepare_or_fall_back(data_dir: Path) -> None:
    """At start-up: a data directory we cannot write to costs compression, not charts."""
    global prepared
    try:
        prepare(data_dir)
        prepared = True
    except OSError:
        logger.warning("cannot write the compressed plotly.js under %s; serving it uncompressed", data_dir)


def url() -> str:
    return JS if prepared else PLAIN_JS


def _atomic_write(path: Path, fill) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            fill(out)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
