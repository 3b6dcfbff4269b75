"""One settings module, driven by the environment (see DESIGN.md, "Settings").

Embedded default: no DATABASE_URL -> SQLite under MLP_DATA_DIR; no REDIS_URL -> Celery
on the in-process memory:// broker and the in-memory channel layer.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG")
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Production mode (DJANGO_DEBUG off) refuses to "
            "start without it; set DJANGO_DEBUG=1 for a local, insecure run."
        )
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"

DATA_DIR = Path(os.environ.get("MLP_DATA_DIR", BASE_DIR / "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

ALLOWED_HOSTS = env_list("MLP_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("MLP_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "mlplatform",
    "projects",
    "ideation",
    "experiments",
    "registry",
    "jobs",
    "deployments",
    "data",
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "mlplatform.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mlplatform.urls"
ASGI_APPLICATION = "mlplatform.asgi.application"
AUTH_USER_MODEL = "mlplatform.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "frontend.context_processors.navigation",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    _postgresql = DATABASES["default"]["ENGINE"].endswith("postgresql")
    if _postgresql:
        # Django turns psycopg's prepared statements off (prepare_threshold None) unless
        # asked. The ORM's own queries bind on the client and are never prepared either
        # way; the fixed SQL of the tracking hot path (mlplatform.fixedsql) binds on the
        # server and, prepared on its fifth use, skips parsing and planning from then on.
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)
    if _postgresql and env_bool("MLP_DB_POOL", True):
        # Under ASGI every request runs its sync code in a fresh thread, so a persistent
        # per-thread connection is never reused: each request would pay a new PostgreSQL
        # connection. A process-wide pool hands out open connections instead.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": int(os.environ.get("MLP_DB_POOL_SIZE", "10")),
        }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "db.sqlite3",
            "OPTIONS": {
                # IMMEDIATE makes a writer take the lock at BEGIN, so two writers queue
                # on the timeout instead of failing with "database is locked" mid-way.
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            # Tests use a file too, as the embedded platform does: SQLite's in-memory
            # shared-cache database fails a writer at once when another connection
            # reads the table, where a file in WAL mode lets it wait (timeout above).
            "TEST": {"NAME": str(DATA_DIR / "test-db.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 reads with a 5 s socket timeout by default, the same 5 s the
            # layer's blocking BRPOP waits: an idle websocket then dies with 1011 every
            # 5 s. A read timeout above the BRPOP wait keeps quiet sockets alive.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}], "prefix": "mlp"},
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "mlplatform.channel_layer.ThreadSafeInMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
if not REDIS_URL:
    # The memory:// transport polls (once a second by default): a submitted job would
    # wait half a second on average before a worker even sees it. Redis pushes instead.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"polling_interval": 0.1}
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULE: dict = {
    # The database is the jobs' source of truth: re-send lost messages, recover jobs
    # whose worker died (see jobs/services/reconcile.py).
    "jobs-reconcile": {
        "task": "jobs.tasks.jobs_reconcile_task",
        "schedule": float(os.environ.get("MLP_JOB_RECONCILE_INTERVAL", "15")),
        "options": {"queue": "default"},
    },
    # Multipart artifact uploads a client abandoned (experiments/multipart.py).
    "artifacts-abandoned-uploads": {
        "task": "experiments.abandoned_uploads_sweep_task",
        "schedule": 3600.0,
        "options": {"queue": "default"},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# `celery beat` processes elect one sender through a lease in Redis (mlplatform/beat.py):
# a second beat never doubles periodic work. The embedded beat thread keeps Celery's own.
CELERY_BEAT_SCHEDULER = "mlplatform.beat:LeaderScheduler"
EMBEDDED = not (DATABASE_URL and REDIS_URL)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
_PLOTLY = __import__("plotly")
STATICFILES_DIRS = [
    ("vendor/plotly", Path(_PLOTLY.__file__).parent / "package_data"),
    # plotly.js copied with a .gz beside it at start-up (frontend.assets), under a
    # versioned URL, so it is sent compressed and cached for a year.
    (f"vendor/plotly-{_PLOTLY.__version__}", DATA_DIR / "assets" / f"plotly-{_PLOTLY.__version__}"),
]
WHITENOISE_IMMUTABLE_FILE_TEST = r"^/static/vendor/plotly-[0-9][0-9A-Za-z.]*/"
# Finders let the app serve its assets without a collectstatic step (make run, tests);
# the compose image runs collectstatic and serves from STATIC_ROOT.
WHITENOISE_USE_FINDERS = True

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG and env_bool("MLP_HTTPS"):
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

DATA_UPLOAD_MAX_MEMORY_SIZE = 20 * 1024 * 1024

# Sign-in throttling (mlplatform/login_throttle.py): failures per account and per client
# address within the window, then a lockout that doubles with each repeat up to the max.
MLP_LOGIN_FAILURE_LIMIT = int(os.environ.get("MLP_LOGIN_FAILURE_LIMIT", 10))
MLP_LOGIN_ADDRESS_FAILURE_LIMIT = int(os.environ.get("MLP_LOGIN_ADDRESS_FAILURE_LIMIT", 50))
MLP_LOGIN_FAILURE_WINDOW = float(os.environ.get("MLP_LOGIN_FAILURE_WINDOW", 15 * 60))
MLP_LOGIN_LOCKOUT_SECONDS = float(os.environ.get("MLP_LOGIN_LOCKOUT_SECONDS", 5 * 60))
MLP_LOGIN_LOCKOUT_MAX_SECONDS = float(os.environ.get("MLP_LOGIN_LOCKOUT_MAX_SECONDS", 60 * 60))
MLP_LOGIN_THROTTLE_KEY_PREFIX = "mlp:login:"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "mlplatform.authentication.BearerTokenAuthentication",
        "mlplatform.authentication.TokenOrPasswordBasicAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "mlplatform.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "mlplatform.api.exceptions.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "mlplatform.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "ML Platform API",
    "DESCRIPTION": (
        "From workshop idea to a model serving live traffic. The scoring protocols of deployed endpoints "
        "(MLflow's `/invocations`, the Open Inference Protocol `/v2/...`, `/feedback`) are documented "
        "in the [serving API](/api/v1/serving/docs/) ([schema](/api/v1/serving/schema/))."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Several apps name a choice field "kind" or "role"; give each choice set its own name.
    "ENUM_NAME_OVERRIDES": {
        "ProjectRoleEnum": "mlplatform.roles.Role",
        "IdeaKindEnum": "ideation.models.IdeaKind",
        "ParticipantRoleEnum": "ideation.models.ParticipantRole",
        "CriterionKindEnum": "projects.models.CriterionKind",
        "KpiDirectionEnum": "projects.models.KpiDirection",
    },
}

API_TOKEN_DEFAULT_DAYS = 90

# Jobs (see jobs/): where they run, what they may use.
MLP_JOB_EXECUTOR = os.environ.get("MLP_JOB_EXECUTOR", "local")
MLP_JOB_DEFAULT_IMAGE = os.environ.get("MLP_JOB_DEFAULT_IMAGE", "localhost/mlp-python:bookworm-mlflow")
MLP_JOB_ALLOW_NETWORK = env_bool("MLP_JOB_ALLOW_NETWORK")
MLP_JOB_QUEUES = env_list("MLP_JOB_QUEUES", "jobs")
MLP_JOB_BUNDLE_MAX_BYTES = int(os.environ.get("MLP_JOB_BUNDLE_MAX_BYTES", 20 * 1024 * 1024))
MLP_JOB_PIDS_LIMIT = int(os.environ.get("MLP_JOB_PIDS_LIMIT", 256))
# Local jobs run confined by bubblewrap (jobs/executors/sandbox.py) as this uid; "off"
# (or no working bwrap) refuses non-admins' local jobs and runs admins' unconfined.
MLP_JOB_SANDBOX = os.environ.get("MLP_JOB_SANDBOX", "auto")
MLP_JOB_SANDBOX_UID = int(os.environ.get("MLP_JOB_SANDBOX_UID", 65532))
MLP_JOB_HEARTBEAT_TIMEOUT = int(os.environ.get("MLP_JOB_HEARTBEAT_TIMEOUT", 60))
MLP_JOB_REDISPATCH_AFTER = int(os.environ.get("MLP_JOB_REDISPATCH_AFTER", 60))
# The URL jobs' MLflow clients reach the tracking API at (container jobs through a relay).
MLP_PUBLIC_URL = os.environ.get("MLP_PUBLIC_URL", "http://127.0.0.1:8000")
# Fernet key for jobs' secret env values at rest; derived from SECRET_KEY when empty.
MLP_SECRETS_KEY = os.environ.get("MLP_SECRETS_KEY", "")
# Model serving (deployments.serving): every serving process polls the routing version
# this often, appends each prediction to a spool file here before answering, and
# batches concurrent requests up to this many rows.
SERVING_SPOOL_DIR = Path(os.environ.get("MLP_SERVING_SPOOL_DIR", DATA_DIR / "serving-spool"))
SERVING_POLL_INTERVAL = float(os.environ.get("MLP_SERVING_POLL_INTERVAL", "0.5"))
SERVING_MAX_BATCH_ROWS = int(os.environ.get("MLP_SERVING_MAX_BATCH_ROWS", "1024"))
SERVING_MAX_WAIT_MS = float(os.environ.get("MLP_SERVING_MAX_WAIT_MS", "0"))
# "0" turns every endpoint's fast path off (deployments.serving.loader): all models
# then load through their flavor's own predict or mlflow.pyfunc.
SERVING_FAST_PATH = os.environ.get("MLP_SERVING_FAST_PATH", "1") != "0"
SERVING_DRAIN_AT_EXIT = True
# `make run` (embedded): a periodic burst of demo traffic to the demo endpoint.
# How often a project KPI fed by an endpoint gets the champion's live value (seconds).
DEPLOYMENT_KPI_FEED_INTERVAL = float(os.environ.get("MLP_DEPLOYMENT_KPI_FEED_INTERVAL", "60"))
DEMO_TRAFFIC_URL = os.environ.get("MLP_DEMO_TRAFFIC_URL", "http://127.0.0.1:8000" if EMBEDDED else "")
CELERY_BEAT_SCHEDULE["deployments-demo-traffic"] = {"task": "deployments.demo_traffic_task", "schedule": 3.0}
CELERY_BEAT_SCHEDULE["deployments-policies"] = {
    "task": "deployments.endpoints_policy_check_task",
    "schedule": float(os.environ.get("MLP_DEPLOYMENT_POLICY_INTERVAL", "10")),
}

# Data streams (data): the archive root, the HTTP ingest body limit, and when an open
# segment is sealed (records, bytes or seconds, whichever comes first).
DATA_ARCHIVE_DIR = Path(os.environ.get("MLP_ARCHIVE_DIR", DATA_DIR / "archive"))
INGEST_MAX_BODY_BYTES = int(os.environ.get("MLP_INGEST_MAX_BODY_BYTES", str(16 * 1024 * 1024)))
INGEST_SEAL_RECORDS = int(os.environ.get("MLP_INGEST_SEAL_RECORDS", "100000"))
INGEST_SEAL_BYTES = int(os.environ.get("MLP_INGEST_SEAL_BYTES", str(64 * 1024 * 1024)))
INGEST_SEAL_SECONDS = float(os.environ.get("MLP_INGEST_SEAL_SECONDS", "300"))
INGEST_DEDUP_WINDOW = int(os.environ.get("MLP_INGEST_DEDUP_WINDOW", "100000"))
INGEST_POLL_INTERVAL = float(os.environ.get("MLP_INGEST_POLL_INTERVAL", "1.0"))
CELERY_BEAT_SCHEDULE["data-segments-compact"] = {
    "task": "data.segments_compact_task",
    "schedule": float(os.environ.get("MLP_ARCHIVE_COMPACT_INTERVAL", "60")),
}
CELERY_BEAT_SCHEDULE["data-demo-feed"] = {"task": "data.demo_feed_task", "schedule": 2.0}
CELERY_BEAT_SCHEDULE["data-live-scoring"] = {"task": "data.streams_score_task", "schedule": 2.0}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("MLP_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # A line per periodic task every few seconds buries what a person needs to see.
        "celery.app.trace": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.beat": {"level": "WARNING"},
    },
}

# Dataset versions (data.datasets): where uploaded tables are stored (content-addressed
# Parquet), the largest upload accepted, and the row-group size files are written with.
DATASETS_DIR = Path(os.environ.get("MLP_DATASETS_DIR", DATA_DIR / "datasets"))
DATASET_UPLOAD_MAX_BYTES = int(os.environ.get("MLP_DATASET_UPLOAD_MAX_BYTES", str(2 * 1024**3)))
DATASET_ROW_GROUP_ROWS = int(os.environ.get("MLP_DATASET_ROW_GROUP_ROWS", "65536"))
# Uploaded files no version names any more (data/datasets/gc.py).
CELERY_BEAT_SCHEDULE["data-dataset-files-sweep"] = {
    "task": "data.dataset_files_sweep_task",
    "schedule": 3600.0,
    "options": {"queue": "default"},
}
