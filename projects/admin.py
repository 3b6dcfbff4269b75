from django.contrib import admin

from mlplatform.admin import AuditedAdmin
from projects.models import (
    Gate,
    GateCriterion,
    GateDecision,
    Kpi,
    Lifecycle,
    Membership,
    Project,
    ProjectStage,
    Stage,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "owner", "is_personal", "created_at"]
    search_fields = ["name", "slug"]
    list_select_related = ["owner"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["project", "user", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["project__slug", "user__username"]
    list_select_related = ["project", "user"]


# --- Lifecycles (admins define them here), KPIs and gates -------------------------------


class StageInline(admin.TabularInline):
    model = Stage
    extra = 1
    ordering = ["order"]


@admin.register(Lifecycle)
class LifecycleAdmin(AuditedAdmin):
    list_display = ["name", "description"]
    inlines = [StageInline]


@admin.register(ProjectStage)
class ProjectStageAdmin(admin.ModelAdmin):
    """Read-only: a stage changes through gate decisions, a lifecycle through
    projects.services.project_lifecycle_set."""

    list_display = ["project", "lifecycle", "stage", "changed_at"]
    list_select_related = ["project", "lifecycle", "stage"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(Kpi)
class KpiAdmin(AuditedAdmin):
    list_display = ["name", "project", "direction", "baseline", "target", "threshold", "current_value", "is_draft"]
    list_select_related = ["project"]
    search_fields = ["name", "project__slug"]


class CriterionInline(admin.TabularInline):
    model = GateCriterion
    extra = 0


@admin.register(Gate)
class GateAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "to_stage", "status", "quorum"]
    list_select_related = ["project", "to_stage"]
    list_filter = ["status"]
    inlines = [CriterionInline]
    readonly_fields = ["status"]


@admin.register(GateDecision)
class GateDecisionAdmin(admin.ModelAdmin):
    """Decisions are immutable records: visible to governance, never edited."""

    list_display = ["gate", "verdict", "decided_by", "decided_at", "from_stage", "to_stage"]
    list_select_related = ["gate", "decided_by", "from_stage", "to_stage"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
