from django.contrib import admin

from jobs.models import Job, JobEvent, JobImage, Sweep


@admin.register(JobImage)
class JobImageAdmin(admin.ModelAdmin):
    """The allow-list of container images; only images listed and active may run."""

    list_display = ["name", "python", "is_active", "description", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name"]


class JobEventInline(admin.TabularInline):
    model = JobEvent
    extra = 0
    can_delete = False
    readonly_fields = ["from_status", "to_status", "reason", "message", "actor", "created_at"]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "project", "executor", "status", "reason", "created_by", "created_at"]
    list_filter = ["status", "executor"]
    search_fields = ["name"]
    # Status changes go through the services (compare-and-set, events, audit).
    readonly_fields = [f.name for f in Job._meta.fields]
    exclude = ["secret_env"]
    inlines = [JobEventInline]

    def has_add_permission(self, request):
        return False


@admin.register(Sweep)
class SweepAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "project", "strategy", "metric", "goal", "max_concurrency", "created_at"]
    readonly_fields = ["parent_run_id"]
