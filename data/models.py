"""Streams, their ingest tokens, the quarantine and the archive's segment index.

The records themselves live in the archive (data.archive), not in the database: a
Segment row indexes one append-only file, named by its first sequence number. The
counters on Stream are refreshed by the ingest processes once a second (data.stats),
never per request."""

from django.conf import settings
from django.db import models

from projects.models import Project, slug_validator


class SourceKind(models.TextChoices):
    HTTP = "http", "HTTP"
    MQTT = "mqtt", "MQTT"


class StreamStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"


class Stream(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="streams")
    name = models.CharField(max_length=120)
    slug = models.CharField(max_length=50, validators=[slug_validator])
    description = models.TextField(blank=True)
    source = models.CharField(max_length=10, choices=SourceKind.choices, default=SourceKind.HTTP)
    status = models.CharField(max_length=10, choices=StreamStatus.choices, default=StreamStatus.ACTIVE)
    schema = models.JSONField(null=True, blank=True, help_text="JSON Schema; inferred from the first records if empty.")
    schema_inferred = models.BooleanField(default=False)
    retention_days = models.PositiveIntegerField(default=0, help_text="0 keeps the archive forever.")
    # MQTT: broker URL (mqtt:// or mqtts://), topic patterns, credentials (password encrypted).
    mqtt_url = models.CharField(max_length=300, blank=True)
    mqtt_topics = models.JSONField(default=list, blank=True)
    mqtt_username = models.CharField(max_length=200, blank=True)
    mqtt_password = models.TextField(blank=True, help_text="Fernet-encrypted (jobs.secrets).")
    # Live scoring: records are sent to this endpoint; predictions go to `<slug>-predictions`.
    score_endpoint = models.CharField(max_length=50, blank=True)
    score_token = models.TextField(blank=True, help_text="Fernet-encrypted endpoint token.")
    # Refreshed by the ingest processes (data.stats), for the list page.
    records_total = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(default=0)
    duplicates_total = models.BigIntegerField(default=0)
    quarantined_total = models.BigIntegerField(default=0)
    last_record_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "slug"], name="data_stream_unique_slug")]
        ordering = ["project_id", "name"]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.slug}" if self.project_id else self.slug

    @property
    def ingest_path(self) -> str:
        return f"/ingest/{self.project.slug}/{self.slug}"


class IngestToken(models.Model):
    """A token that may write to one stream only; kept as its SHA-256."""

    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=120)
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"


class QuarantineStatus(models.TextChoices):
    HELD = "held", "Held"
    RELEASED = "released", "Released"


class QuarantinedRecord(models.Model):
    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="quarantine")
    payload = models.JSONField(null=True)
    raw = models.TextField(blank=True, help_text="The record as received when it was not JSON at all.")
    reason = models.TextField()
    received_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=QuarantineStatus.choices, default=QuarantineStatus.HELD)
    released_at = models.DateTimeField(null=True, blank=True)
    released_seq = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["stream", "status", "-id"], name="data_quarantine_held")]

    def __str__(self) -> str:
        return f"quarantined #{self.pk} of {self.stream_id}"


class Segment(models.Model):
    """One archive file: records first_seq..last_seq of a stream, in order, no gaps.
    `sha256` is of the sealed JSON Lines file and never changes; `parquet_*` is set
    once the segment is compacted."""

    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="segments")
    first_seq = models.BigIntegerField()
    last_seq = models.BigIntegerField()
    records = models.IntegerField()
    bytes = models.BigIntegerField()
    path = models.CharField(max_length=500, help_text="Relative to the archive root.")
    sha256 = models.CharField(max_length=64)
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    sealed_at = models.DateTimeField()
    parquet_path = models.CharField(max_length=500, blank=True)
    parquet_sha256 = models.CharField(max_length=64, blank=True)
    parquet_bytes = models.BigIntegerField(null=True, blank=True)
    compacted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["stream", "first_seq"], name="data_segment_unique_first_seq"),
            models.CheckConstraint(condition=models.Q(last_seq__gte=models.F("first_seq")), name="data_segment_range"),
        ]
        ordering = ["stream_id", "first_seq"]

    def __str__(self) -> str:
        return f"{self.stream_id}:{self.first_seq}"

    @property
    def segment_id(self) -> str:
        return f"{self.first_seq:020d}"


# Dataset versions and lineage live in their own module (issue 20).
from data.models_datasets import (  # noqa: E402,F401
    DataFile,
    Dataset,
    DatasetAlias,
    DatasetVersion,
    DatasetVersionTag,
    ProfileStatus,
    VersionSource,
    VersionStatus,
)
