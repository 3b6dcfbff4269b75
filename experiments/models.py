"""Experiments, runs and everything logged to them, shaped after MLflow's entities so
the MLflow-compatible API is a thin adapter (ids, lifecycles and timestamps in ms)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from mlplatform.fields import IdentifierField
from projects.models import Project


class Lifecycle(models.TextChoices):
    ACTIVE = "active", "Active"
    DELETED = "deleted", "Deleted"


class Experiment(models.Model):
    """An MLflow experiment inside a project; its MLflow `experiment_id` is str(pk)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="experiments")
    name = models.CharField(max_length=500)
    lifecycle_stage = models.CharField(max_length=10, choices=Lifecycle.choices, default=Lifecycle.ACTIVE)
    artifact_location = models.CharField(max_length=1000, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    creation_time = models.BigIntegerField()
    last_update_time = models.BigIntegerField()

    class Meta:
        ordering = ["-creation_time", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="experiment_unique_name_per_project"),
            models.CheckConstraint(condition=Q(lifecycle_stage__in=Lifecycle.values), name="experiment_lifecycle"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def experiment_id(self) -> str:
        return str(self.pk)


class ExperimentTag(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "key"], name="experiment_tag_unique_key")]

    def __str__(self) -> str:
        return f"{self.key}={self.value[:50]}"


class RunStatus(models.TextChoices):
    RUNNING = "RUNNING", "Running"
    SCHEDULED = "SCHEDULED", "Scheduled"
    FINISHED = "FINISHED", "Finished"
    FAILED = "FAILED", "Failed"
    KILLED = "KILLED", "Killed"


TERMINAL_RUN_STATUSES = frozenset({RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED})


class Run(models.Model):
    id = IdentifierField(primary_key=True, max_length=32, editable=False)
    # Foreign keys to runs carry no index of their own where a composite index or
    # unique constraint starts with them: a second index is paid on every insert and
    # in every plan (PostgreSQL also adds a varchar_pattern_ops copy for text keys).
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs", db_index=False)
    name = models.CharField(max_length=250, blank=True)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING)
    start_time = models.BigIntegerField()
    end_time = models.BigIntegerField(null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user_name = models.CharField(max_length=250, blank=True, help_text="MLflow's free-text user_id.")
    lifecycle_stage = models.CharField(max_length=10, choices=Lifecycle.choices, default=Lifecycle.ACTIVE)
    deleted_time = models.BigIntegerField(null=True, blank=True)
    parent_run = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children", db_index=False
    )
    artifact_uri = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["-start_time", "id"]
        indexes = [
            models.Index(fields=["experiment", "lifecycle_stage", "-start_time"], name="run_exp_stage_start"),
            models.Index(fields=["parent_run"], name="run_parent"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=RunStatus.values), name="run_status_valid"),
            models.CheckConstraint(condition=Q(lifecycle_stage__in=Lifecycle.values), name="run_lifecycle"),
        ]

    def __str__(self) -> str:
        return self.name or self.id


class Param(models.Model):
    """Immutable once logged (as in MLflow): a second value for the same key is refused."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="params", db_index=False)
    key = IdentifierField(max_length=250)
    # Values may be 6000 characters, past PostgreSQL's b-tree entry size, so the value
    # is not indexed; searches go through the (key, run) index instead.
    value = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="param_unique_key")]
        indexes = [models.Index(fields=["key", "run"], name="param_key_run")]

    def __str__(self) -> str:
        return f"{self.key}={self.value[:50]}"


class RunTag(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tags", db_index=False)
    key = IdentifierField(max_length=250)
    value = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="runtag_unique_key")]
        indexes = [models.Index(fields=["key", "run"], name="runtag_key_run")]

    def __str__(self) -> str:
        return f"{self.key}={self.value[:50]}"


class Metric(models.Model):
    """One metric point. NaN is kept as `is_nan` (value 0) because SQLite cannot store
    NaN; infinities are stored as they are."""

    # No index of its own: the unique index below starts with (run, key, step) and
    # serves histories too. Every extra index is paid on each of 50,000 inserted points.
    # No database constraint either: PostgreSQL checks one with a trigger per inserted
    # row (4 of a 1,000-point batch's 10 ms). Runs are only ever soft-deleted here, the
    # batch's run is read just before, and deleting a run through the ORM (admin) still
    # deletes its points (on_delete runs in Django, constraint or not).
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metrics", db_index=False, db_constraint=False)
    key = IdentifierField(max_length=250)
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)
    step = models.BigIntegerField(default=0)
    timestamp = models.BigIntegerField()
    model_id = models.CharField(max_length=40, blank=True)

    class Meta:
        # MLflow's primary key: logging the very same point twice (the client re-logs
        # a run's metrics against its logged model) keeps one point.
        constraints = [
            models.UniqueConstraint(
                fields=["run", "key", "step", "timestamp", "value", "is_nan"], name="metric_unique_point"
            )
        ]

    def __str__(self) -> str:
        return f"{self.key}@{self.step}={self.value}"


class LatestMetric(models.Model):
    """The latest point per run and key (max step, then timestamp, then value, as MLflow),
    kept by run_log_batch so that searching and sorting never scan the metric points."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="latest_metrics", db_index=False)
    key = IdentifierField(max_length=250)
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)
    step = models.BigIntegerField(default=0)
    timestamp = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="latestmetric_unique_key")]
        indexes = [models.Index(fields=["key", "value"], name="latestmetric_key_value")]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class Dataset(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=500)
    digest = models.CharField(max_length=36)
    source_type = models.CharField(max_length=36)
    source = models.TextField()
    schema = models.TextField(blank=True)
    profile = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name", "digest"], name="dataset_unique_per_experiment")
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.digest}"


class DatasetInput(models.Model):
    """A dataset used by a run; `tags` are MLflow's input tags (e.g. mlflow.data.context)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="dataset_inputs", db_index=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="inputs")
    tags = models.JSONField(default=dict, blank=True)
    context = models.CharField(max_length=500, blank=True, help_text="The mlflow.data.context tag, for search.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "dataset"], name="datasetinput_unique")]

    def __str__(self) -> str:
        return f"{self.run_id} <- {self.dataset_id}"


class LoggedModelStatus(models.TextChoices):
    PENDING = "LOGGED_MODEL_PENDING", "Pending"
    READY = "LOGGED_MODEL_READY", "Ready"
    FAILED = "LOGGED_MODEL_UPLOAD_FAILED", "Upload failed"


class LoggedModel(models.Model):
    """An MLflow 3 logged model: id `m-<32 hex>`, artifacts under its own root."""

    id = models.CharField(primary_key=True, max_length=34, editable=False)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="logged_models")
    name = models.CharField(max_length=500)
    source_run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=30, choices=LoggedModelStatus.choices, default=LoggedModelStatus.PENDING)
    status_message = models.TextField(blank=True)
    model_type = models.CharField(max_length=100, blank=True)
    artifact_location = models.CharField(max_length=1000, blank=True)
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    creation_timestamp = models.BigIntegerField()
    last_updated_timestamp = models.BigIntegerField()
    lifecycle_stage = models.CharField(max_length=10, choices=Lifecycle.choices, default=Lifecycle.ACTIVE)

    class Meta:
        ordering = ["-creation_timestamp"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class LoggedModelParam(models.Model):
    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="params")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "key"], name="loggedmodelparam_unique_key")]

    def __str__(self) -> str:
        return f"{self.key}={self.value[:50]}"


class LoggedModelTag(models.Model):
    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "key"], name="loggedmodeltag_unique_key")]

    def __str__(self) -> str:
        return f"{self.key}={self.value[:50]}"


class LoggedModelMetric(models.Model):
    """A metric point logged against a logged model, with the dataset it was computed on
    (MLflow's logged_model_metrics): what logged-model search filters and sorts on. The
    point itself is also in Metric, with its model_id, for the run's history."""

    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="metrics")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=250)
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)
    step = models.BigIntegerField(default=0)
    timestamp = models.BigIntegerField()
    dataset_name = models.CharField(max_length=500, blank=True)
    dataset_digest = models.CharField(max_length=36, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model", "key", "step", "timestamp", "run", "dataset_name", "dataset_digest"],
                name="loggedmodelmetric_unique_point",
            )
        ]
        indexes = [models.Index(fields=["key", "value"], name="loggedmodelmetric_key_value")]

    def __str__(self) -> str:
        return f"{self.model_id} {self.key}@{self.step}={self.value}"


class RunModelLink(models.Model):
    """A run's model outputs (and inputs): MLflow 3's runs/outputs and model_inputs."""

    class Direction(models.TextChoices):
        OUTPUT = "output", "Output"
        INPUT = "input", "Input"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="model_links")
    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="run_links")
    direction = models.CharField(max_length=6, choices=Direction.choices, default=Direction.OUTPUT)
    step = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "model", "direction"], name="runmodellink_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id} {self.direction} {self.model_id}"
