"""Read-mostly governance views of tracking data; changes go through the services."""

from django.contrib import admin

from experiments.models import Experiment, LoggedModel, Run


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Experiment)
class ExperimentAdmin(ReadOnlyAdmin):
    list_display = ["name", "project", "lifecycle_stage", "creation_time"]
    list_filter = ["lifecycle_stage"]
    search_fields = ["name", "project__slug"]
    list_select_related = ["project"]


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "experiment", "status", "lifecycle_stage", "user_name", "start_time"]
    list_filter = ["status", "lifecycle_stage"]
    search_fields = ["id", "name", "experiment__name"]
    list_select_related = ["experiment"]


@admin.register(LoggedModel)
class LoggedModelAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "experiment", "status", "source_run"]
    list_filter = ["status"]
    search_fields = ["id", "name"]
    list_select_related = ["experiment", "source_run"]
