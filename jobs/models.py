"""Jobs, their status events, log lines and metric samples; sweeps; the image allow-list."""

from django.conf import settings
from django.db import models


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    STARTING = "starting", "Starting"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    TIMED_OUT = "timed_out", "Timed out"


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMED_OUT})
ACTIVE = frozenset({JobStatus.QUEUED, JobStatus.STARTING, JobStatus.RUNNING})

# Back to QUEUED only for a retry after an infrastructure failure (worker lost, engine
# down); a job that ran its user code to an end never runs again by itself.
TRANSITIONS: dict[str, frozenset[str]] = {
    JobStatus.QUEUED: frozenset({JobStatus.STARTING, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.STARTING: frozenset(
        {JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMED_OUT, JobStatus.QUEUED}
    ),
    JobStatus.RUNNING: frozenset(
        {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMED_OUT, JobStatus.QUEUED}
    ),
    **{status: frozenset() for status in TERMINAL},
}


class Executor(models.TextChoices):
    LOCAL = "local", "Local process"
    DOCKER = "docker", "Container (Docker API)"


class Reason(models.TextChoices):
    SUBMITTED = "submitted", "Submitted"
    DISPATCHED = "dispatched", "Picked up by a worker"
    STARTED = "started", "Started"
    EXIT_CODE = "exit_code", "Exited"
    OOM = "oom", "Out of memory"
    TIMEOUT = "timeout", "Timed out"
    CANCELLED = "cancelled", "Cancelled"
    WORKER_LOST = "worker_lost", "Worker lost"
    INFRASTRUCTURE = "infrastructure", "Infrastructure failure"
    RETRY = "retry", "Retried"


class JobImage(models.Model):
    """The admin-managed allow-list of container images jobs may use."""

    name = models.CharField(max_length=255, unique=True, help_text="e.g. localhost/mlp-python:bookworm")
    description = models.CharField(max_length=255, blank=True)
    python = models.CharField(max_length=100, default="python3", help_text="The interpreter inline scripts run with.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Sweep(models.Model):
    """A grid or random search: one parent run, one child job per parameter combination."""

    class Strategy(models.TextChoices):
        GRID = "grid", "Grid"
        RANDOM = "random", "Random"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="sweeps")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=200)
    strategy = models.CharField(max_length=10, choices=Strategy.choices, default=Strategy.GRID)
    space = models.JSONField(help_text="Parameter name -> list of values.")
    metric = models.CharField(max_length=250, help_text="The metric children are ranked by.")
    goal = models.CharField(max_length=8, choices=[("max", "Maximise"), ("min", "Minimise")], default="max")
    max_concurrency = models.PositiveIntegerField(default=2)
    parent_run_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(max_concurrency__gte=1), name="sweep_concurrency_gte_1")
        ]

    def __str__(self) -> str:
        return self.name


class Job(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs")
    name = models.CharField(max_length=200)
    experiment_name = models.CharField(max_length=200, default="Default")
    executor = models.CharField(max_length=10, choices=Executor.choices, default=Executor.LOCAL)
    image = models.ForeignKey(JobImage, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs")
    command = models.JSONField(help_text="Argument list; never a shell string.")
    script = models.TextField(blank=True, help_text="Inline script, written to main.py in the work dir.")
    bundle = models.CharField(max_length=255, blank=True, help_text="Server-chosen path of the uploaded code bundle.")
    bundle_name = models.CharField(max_length=255, blank=True)
    params = models.JSONField(default=dict, blank=True)
    env = models.JSONField(default=dict, blank=True)
    # Values the job needs but nobody may read back: never serialised, masked in logs.
    secret_env = models.JSONField(default=dict, blank=True)
    # Who typed each secret value in (name -> user id; null: unknown). A rerun that
    # changes what runs keeps only the values its runner owns (see job_rerun).
    secret_owners = models.JSONField(default=dict, blank=True)
    cpus = models.FloatField(default=1.0)
    memory_mb = models.PositiveIntegerField(default=1024)
    gpus = models.PositiveIntegerField(default=0)
    timeout_seconds = models.PositiveIntegerField(default=3600)
    network = models.BooleanField(default=False)
    queue = models.CharField(max_length=50, default="jobs")
    max_retries = models.PositiveSmallIntegerField(default=1)
    attempt = models.PositiveSmallIntegerField(default=0)

    status = models.CharField(max_length=12, choices=JobStatus.choices, default=JobStatus.QUEUED)
    reason = models.CharField(max_length=20, choices=Reason.choices, default=Reason.SUBMITTED)
    message = models.CharField(max_length=500, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    progress = models.FloatField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    worker = models.CharField(max_length=255, blank=True)
    pid = models.IntegerField(null=True, blank=True, help_text="Process group of a local job, while it runs.")
    container_id = models.CharField(max_length=128, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    run_id = models.CharField(max_length=64, blank=True)
    token_id = models.BigIntegerField(null=True, blank=True)
    log_lines = models.PositiveIntegerField(default=0)
    sweep = models.ForeignKey(Sweep, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs")
    rerun_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["project", "-created_at"]),
            # The reconciler polls unfinished jobs only.
            models.Index(
                fields=["status", "heartbeat_at"],
                name="job_active_idx",
                condition=models.Q(status__in=["queued", "starting", "running"]),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=JobStatus.values), name="job_status_valid"),
            models.CheckConstraint(condition=models.Q(cpus__gt=0), name="job_cpus_positive"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


class JobEvent(models.Model):
    """One status change and why it happened."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    message = models.CharField(max_length=500, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"job {self.job_id}: {self.from_status or '-'} -> {self.to_status} ({self.reason})"


class JobLogLine(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="lines")
    seq = models.PositiveIntegerField()
    text = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["job", "seq"]
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="joblogline_unique_seq")]

    def __str__(self) -> str:
        return f"job {self.job_id} line {self.seq}"


class JobMetric(models.Model):
    """Metric points of a job (system samples and what the job logs), kept next to the
    job for its live charts; they are also written to the job's run."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="metrics")
    key = models.CharField(max_length=250)
    value = models.FloatField()
    step = models.IntegerField(default=0)
    timestamp = models.DateTimeField()

    class Meta:
        ordering = ["job", "key", "step", "timestamp"]
        indexes = [models.Index(fields=["job", "key", "timestamp"])]

    def __str__(self) -> str:
        return f"job {self.job_id} {self.key}={self.value}"
