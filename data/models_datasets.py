"""Datasets and their immutable, content-addressed versions.

A version is a manifest: the ordered list of parts (an archive segment or an uploaded
file, each named by its sha256, with a row range) plus an optional projection. Its
`digest` is the sha256 of the canonical manifest JSON, so the same data always gets the
same id. Rows are never copied into the database; uploaded files are stored once per
content under DATASETS_DIR (data.datasets.storage)."""

from django.conf import settings
from django.db import models

from projects.models import Project

NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9_.-]{0,98}[a-z0-9])?$"


class Dataset(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="data_dataset_unique_name")]
        ordering = ["project_id", "name"]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.name}" if self.project_id else self.name


class DataFile(models.Model):
    """An uploaded table, converted to Parquet and stored once per content (sha256 of
    the Parquet file). Versions made from uploads point at these."""

    sha256 = models.CharField(max_length=64, unique=True)
    path = models.CharField(max_length=300, help_text="Relative to DATASETS_DIR.")
    rows = models.BigIntegerField()
    bytes = models.BigIntegerField()
    schema = models.JSONField(default=dict, help_text="{fields: [{name, type}], arrow: base64 IPC schema}.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.sha256[:12]


class VersionSource(models.TextChoices):
    UPLOAD = "upload", "Upload"
    STREAM = "stream", "Stream window"
    JOB = "job", "Job output"


class VersionStatus(models.TextChoices):
    READY = "ready", "Ready"
    BROKEN = "broken", "Broken"


class ProfileStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class DatasetVersion(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    digest = models.CharField(max_length=64, help_text="sha256 of the canonical manifest.")
    manifest = models.JSONField()
    source = models.CharField(max_length=10, choices=VersionSource.choices)
    source_detail = models.JSONField(default=dict, blank=True)
    rows = models.BigIntegerField()
    bytes = models.BigIntegerField(default=0)
    schema = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=VersionStatus.choices, default=VersionStatus.READY)
    status_message = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True)
    profile = models.JSONField(null=True, blank=True)
    profile_status = models.CharField(max_length=10, choices=ProfileStatus.choices, default=ProfileStatus.PENDING)
    profile_message = models.CharField(max_length=500, blank=True)
    profiled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "digest"], name="data_version_unique_digest"),
            models.CheckConstraint(condition=models.Q(rows__gte=0), name="data_version_rows"),
        ]
        ordering = ["dataset_id", "-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.dataset}@{self.digest[:12]}" if self.dataset_id else self.digest[:12]

    @property
    def uri(self) -> str:
        return f"mlp-dataset://{self.dataset.project.slug}/{self.dataset.name}@{self.digest}"


class DatasetAlias(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="aliases")
    alias = models.CharField(max_length=100)
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="aliases")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataset", "alias"], name="data_dataset_alias_unique")]

    def __str__(self) -> str:
        return f"{self.dataset_id}@{self.alias}"


class DatasetVersionTag(models.Model):
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.CharField(max_length=5000, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "key"], name="data_version_tag_unique")]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"
