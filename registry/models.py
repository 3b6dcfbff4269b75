"""The model registry: registered models in a project, their versions, aliases and the
provenance each version was born with (run, params, code version, dataset digests)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from experiments.models import LoggedModel, Run
from projects.models import Project


class RegisteredModel(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="registered_models")
    name = models.CharField(max_length=256)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    creation_timestamp = models.BigIntegerField()
    last_updated_timestamp = models.BigIntegerField()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="registeredmodel_unique_name")]

    def __str__(self) -> str:
        return self.name


class RegisteredModelTag(models.Model):
    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["registered_model", "key"], name="registeredmodeltag_unique")]

    def __str__(self) -> str:
        return f"{self.key}={self.value[:50]}"


class VersionStatus(models.TextChoices):
    PENDING = "PENDING_REGISTRATION", "Pending registration"
    FAILED = "FAILED_REGISTRATION", "Failed registration"
    READY = "READY", "Ready"


class Stage(models.TextChoices):
    """MLflow's deprecated stages, kept for old clients; aliases replace them."""

    NONE = "None", "None"
    STAGING = "Staging", "Staging"
    PRODUCTION = "Production", "Production"
    ARCHIVED = "Archived", "Archived"


class ModelVersion(models.Model):
    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    source = models.CharField(max_length=1000)
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="model_versions")
    logged_model = models.ForeignKey(
        LoggedModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="model_versions"
    )
    status = models.CharField(max_length=30, choices=VersionStatus.choices, default=VersionStatus.READY)
    status_message = models.TextField(blank=True)
    description = models.TextField(blank=True)
    current_stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.NONE)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    creation_timestamp = models.BigIntegerField()
    last_updated_timestamp = models.BigIntegerField()
    # Provenance, frozen at registration: later changes to the run must not rewrite
    # what a deployed version was trained on.
    code_version = models.CharField(max_length=100, blank=True)
    source_tags = models.JSONField(default=dict, blank=True)
    params = models.JSONField(default=dict, blank=True)
    dataset_digests = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["registered_model", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["registered_model", "version"], name="modelversion_unique_number"),
            models.CheckConstraint(condition=Q(current_stage__in=Stage.values), name="modelversion_stage_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.registered_model.name} v{self.version}"


class ModelVersionTag(models.Model):
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model_version", "key"], name="modelversiontag_unique")]

    def __str__(self) -> str:
        return f"{self.key}={self.value[:50]}"


class ModelAlias(models.Model):
    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    alias = models.CharField(max_length=256)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="aliases")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["registered_model", "alias"], name="modelalias_unique")]

    def __str__(self) -> str:
        return f"{self.alias}"
