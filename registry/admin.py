"""Read-mostly governance views of the registry; changes go through the services."""

from django.contrib import admin

from experiments.admin import ReadOnlyAdmin
from registry.models import ModelVersion, RegisteredModel


@admin.register(RegisteredModel)
class RegisteredModelAdmin(ReadOnlyAdmin):
    list_display = ["name", "project", "last_updated_timestamp"]
    search_fields = ["name", "project__slug"]
    list_select_related = ["project"]


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ["registered_model", "version", "status", "current_stage", "run", "code_version"]
    list_filter = ["status", "current_stage"]
    search_fields = ["registered_model__name", "run__id", "code_version"]
    list_select_related = ["registered_model", "run"]
