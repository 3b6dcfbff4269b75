"""The small test override: fast hashing, test hosts, quiet logs."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production-0123456789")

from mlplatform.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
BROWSER_PATH = os.environ.get("MLP_BROWSER", "/usr/bin/chromium")
# Threads serving live tests must not keep connections open past the test database.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
# The test runner renames the database after connecting; a pool would keep the old name.
DATABASES["default"].get("OPTIONS", {}).pop("pool", None)  # noqa: F405
# Each test session gets its own prediction-log spool: a leftover file of another run
# must not be drained into this run's database.
SERVING_SPOOL_DIR = Path(__import__("tempfile").mkdtemp(prefix="mlp-spool-"))  # noqa: F405
# The test database is gone by the time atexit runs.
SERVING_DRAIN_AT_EXIT = False
# And its own data archive (data streams), so test streams never land in var/archive.
DATA_ARCHIVE_DIR = Path(__import__("tempfile").mkdtemp(prefix="mlp-archive-"))  # noqa: F405
