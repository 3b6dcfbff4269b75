"""Endpoints, their revisions, the routing history, and the prediction log.

The routing of an endpoint (champion, challenger, mode, traffic) lives on the Endpoint
row; every change bumps ServingConfig.version, which every serving process polls.
PredictionLog and Feedback are the bulk tables written by the serving processes' log
flushers (deployments.logsink), never row by row on the request path."""

from django.conf import settings
from django.db import models

from projects.models import Project, slug_validator


class RevisionStatus(models.TextChoices):
    DEPLOYING = "deploying", "Deploying"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    RETIRED = "retired", "Retired"
    ROLLED_BACK = "rolled_back", "Rolled back"


REVISION_TRANSITIONS: dict[str, set[str]] = {
    RevisionStatus.DEPLOYING: {RevisionStatus.READY, RevisionStatus.FAILED, RevisionStatus.RETIRED},
    RevisionStatus.READY: {RevisionStatus.RETIRED, RevisionStatus.ROLLED_BACK, RevisionStatus.FAILED},
    RevisionStatus.FAILED: set(),
    RevisionStatus.RETIRED: set(),
    RevisionStatus.ROLLED_BACK: set(),
}
REVISION_TERMINAL = {s for s, nxt in REVISION_TRANSITIONS.items() if not nxt}


class ChallengerMode(models.TextChoices):
    CANARY = "canary", "Canary (a share of live traffic)"
    SHADOW = "shadow", "Shadow (mirrored, answers discarded)"


def default_policy() -> dict:
    return {
        "max_error_rate": 0.05,
        "max_p99_ms": 500.0,
        "max_psi": 0.2,
        "breach_seconds": 60,
        "min_requests": 50,
        "kpi_metric": "accuracy",
        "min_feedback": 100,
        "promote_margin": 0.0,
        "confidence": 0.95,
        "kpi_rollback": True,
        "min_reference_rows": 100,
    }


class Endpoint(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="endpoints")
    name = models.CharField(max_length=120)
    slug = models.CharField(max_length=50, unique=True, validators=[slug_validator], help_text="/serve/<slug>/")
    description = models.TextField(blank=True)
    public = models.BooleanField(default=False, help_text="Serve without a token (like `mlflow models serve`).")
    token_hash = models.CharField(max_length=64, blank=True)
    token_prefix = models.CharField(max_length=16, blank=True)
    champion = models.ForeignKey("Revision", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    challenger = models.ForeignKey("Revision", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    challenger_mode = models.CharField(max_length=10, choices=ChallengerMode.choices, default=ChallengerMode.CANARY)
    traffic = models.FloatField(default=0.0, help_text="Share of live requests the canary answers, 0..1.")
    payload_sample = models.FloatField(default=1.0, help_text="Share of requests logged with inputs and outputs.")
    max_body_bytes = models.PositiveIntegerField(default=5 * 1024 * 1024)
    auto_rollback = models.BooleanField(default=True)
    auto_promote = models.BooleanField(default=True)
    auto_canary = models.BooleanField(default=False)
    fast_path = models.BooleanField(
        default=True,
        help_text="Serve sklearn forests, XGBoost and LightGBM boosters without MLflow's pyfunc wrapper "
        "(checked against the model's own predict at load time).",
    )
    policy = models.JSONField(default=default_policy)
    # When the challenger first crossed a rollback limit, and which; cleared when it
    # is back within limits. The rollback waits `breach_seconds` from here.
    breach_since = models.DateTimeField(null=True, blank=True)
    breach_reason = models.CharField(max_length=300, blank=True)
    kpi_fed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(traffic__gte=0, traffic__lte=1), name="endpoint_traffic_share"),
            models.CheckConstraint(
                condition=models.Q(payload_sample__gte=0, payload_sample__lte=1), name="endpoint_payload_sample_share"
            ),
            models.CheckConstraint(
                condition=~models.Q(champion=models.F("challenger")) | models.Q(challenger__isnull=True),
                name="endpoint_challenger_not_champion",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Revision(models.Model):
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    model_version = models.ForeignKey(
        "registry.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="revisions"
    )
    # Copied at deploy, so the history reads the same after the version is renamed.
    model_name = models.CharField(max_length=200, blank=True)
    model_version_number = models.PositiveIntegerField(null=True, blank=True)
    model_dir = models.CharField(max_length=1000, help_text="Local directory holding the version's MLmodel.")
    trusted = models.BooleanField(default=False, help_text="Pickle-based flavors load only when an owner trusts them.")
    status = models.CharField(max_length=20, choices=RevisionStatus.choices, default=RevisionStatus.DEPLOYING)
    status_reason = models.TextField(blank=True)
    # Which loader serves it (deployments.serving.loader.LOADERS), as the serving
    # processes last reported; empty until one has loaded it.
    loader = models.CharField(max_length=30, blank=True)
    reference = models.JSONField(default=dict, blank=True, help_text="Training reference per feature, for drift.")
    reference_source = models.CharField(
        max_length=200, blank=True, help_text="Where the drift reference came from (training data, sample, burn-in)."
    )
    # Burn-in: the revision's first `burn_in_rows` live rows become its reference; drift
    # is then measured on what came after `reference_until`.
    burn_in_rows = models.PositiveIntegerField(default=0)
    reference_until = models.DateTimeField(null=True, blank=True)
    offline_metric = models.FloatField(null=True, blank=True)
    offline_metric_name = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["endpoint", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "number"], name="revision_number_unique_per_endpoint"),
            models.CheckConstraint(condition=models.Q(status__in=RevisionStatus.values), name="revision_status_valid"),
        ]

    def __str__(self) -> str:
        model = f"{self.model_name} v{self.model_version_number}" if self.model_name else self.model_dir
        return f"{self.endpoint.slug} r{self.number} ({model})"


class EndpointEvent(models.Model):
    """The endpoint's history, as its timeline shows it: deploys, traffic changes,
    promotions, rollbacks, manual or automatic, each with its reason."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="events")
    revision = models.ForeignKey(Revision, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    kind = models.CharField(max_length=40)
    automatic = models.BooleanField(default=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.endpoint.slug}: {self.kind}"

    @property
    def label(self) -> str:
        return self.kind.replace("_", " ")


class ServingConfig(models.Model):
    """One row: the routing version every serving process polls (cheap, indexed)."""

    version = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"serving config v{self.version}"


class PredictionLog(models.Model):
    # No FK constraints: the flusher bulk-inserts tens of thousands of rows a minute,
    # and log rows outlive revisions being cleaned up.
    endpoint_id = models.BigIntegerField()
    revision_id = models.BigIntegerField(null=True)
    request_id = models.CharField(max_length=64)
    role = models.CharField(max_length=12)
    status = models.PositiveSmallIntegerField()
    latency_ms = models.FloatField()
    n_rows = models.PositiveIntegerField(default=0)
    # `{"in": {feature: [values]}, "out": [...]}` as JSON text, stored as the serving
    # process wrote it (decoded only when drift or KPIs read it); empty when sampled out.
    payload = models.TextField(blank=True)
    error = models.TextField(blank=True)
    at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["endpoint_id", "at"], name="predlog_endpoint_at"),
            models.Index(fields=["revision_id", "at"], name="predlog_revision_at"),
            models.Index(fields=["endpoint_id", "request_id"], name="predlog_endpoint_request"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} -> {self.status}"


class Feedback(models.Model):
    """Ground truth for a request, sent to /serve/<endpoint>/feedback."""

    endpoint_id = models.BigIntegerField()
    request_id = models.CharField(max_length=64)
    actual = models.JSONField()
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["endpoint_id", "request_id"], name="feedback_endpoint_request")]

    def __str__(self) -> str:
        return f"feedback for {self.request_id}"


class SpoolCursor(models.Model):
    """How far a serving process's spool file has been stored; moved in the same
    transaction as the rows it covers."""

    name = models.CharField(max_length=100, unique=True)
    offset = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name}@{self.offset}"


class DroppedRecords(models.Model):
    endpoint_id = models.BigIntegerField(null=True)
    count = models.PositiveIntegerField()
    reason = models.CharField(max_length=200)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.count} dropped: {self.reason}"


class ServingProcess(models.Model):
    """A serving process's heartbeat and counters, for the dashboard."""

    name = models.CharField(max_length=100, unique=True)
    host = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    config_version = models.CharField(max_length=64, blank=True)
    requests = models.BigIntegerField(default=0)
    client_errors = models.BigIntegerField(default=0)
    server_errors = models.BigIntegerField(default=0)
    logged = models.BigIntegerField(default=0)
    dropped = models.BigIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.name


class MinuteStat(models.Model):
    """Per-minute traffic of one revision in one role, merged across serving processes.

    Latencies are kept as a sparse log-bucket histogram (monitoring.latency_bucket),
    which sums exactly across processes; percentiles read from it are within one
    bucket (5%) of the exact value."""

    endpoint_id = models.BigIntegerField()
    revision_id = models.BigIntegerField(default=0, help_text="0: no revision answered (e.g. none ready).")
    role = models.CharField(max_length=12)
    minute = models.DateTimeField()
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    client_errors = models.PositiveIntegerField(default=0)
    latency_sum_ms = models.FloatField(default=0.0)
    histogram = models.JSONField(default=dict)

    class Meta:
        ordering = ["minute"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint_id", "revision_id", "role", "minute"], name="minutestat_unique")
        ]
        indexes = [models.Index(fields=["endpoint_id", "minute"], name="minutestat_endpoint_minute")]

    def __str__(self) -> str:
        return f"{self.endpoint_id}/{self.revision_id} {self.role} {self.minute:%H:%M}"
