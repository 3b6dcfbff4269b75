"""The Django admin is the governance console. Changes made here go through the same
audit log as the services; the audit log itself is read-only for everyone."""

from django.apps import apps
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import OuterRef, Subquery

from mlplatform import events
from mlplatform.audit import audit_record
from mlplatform.forms import AdminLoginForm
from mlplatform.models import ApiToken, AuditEvent, User

# The admin's sign-in goes through the same throttle as the platform's.
admin.site.login_form = AdminLoginForm

# A change of these takes access away (or gives it) everywhere at once.
ACCESS_FIELDS = {"is_active", "is_platform_admin", "is_superuser"}


class AuditedAdmin(admin.ModelAdmin):
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        changed = {name: str(form.cleaned_data.get(name)) for name in form.changed_data if name != "password"}
        audit_record(actor=request.user, action=f"admin.{'change' if change else 'add'}", target=obj, after=changed)

    def delete_model(self, request, obj):
        audit_record(actor=request.user, action="admin.delete", target=obj)
        super().delete_model(request, obj)


@admin.register(User)
class UserAdmin(AuditedAdmin, BaseUserAdmin):
    list_display = ["username", "email", "display_name", "is_platform_admin", "is_active", "last_login"]
    list_filter = ["is_platform_admin", "is_active", "is_superuser"]
    fieldsets = [
        *BaseUserAdmin.fieldsets,
        ("Platform", {"fields": ["display_name", "is_platform_admin"]}),
    ]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and ACCESS_FIELDS & set(form.changed_data):
            events.access_changed(user_id=obj.pk)  # their open sockets check again


@admin.register(ApiToken)
class ApiTokenAdmin(AuditedAdmin):
    list_display = ["name", "user", "prefix", "project", "created_at", "expires_at", "revoked_at", "last_used_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "prefix"]
    list_select_related = ["user", "project"]
    readonly_fields = ["user", "name", "prefix", "key_hash", "project", "created_at", "last_used_at"]
    fields = [*readonly_fields, "expires_at", "revoked_at"]

    def has_add_permission(self, request):
        return False  # a token's secret must be shown to its owner once: create them in the app


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_name", "action", "object_type", "object_repr", "project"]
    list_filter = ["action", "object_type"]
    search_fields = ["actor_name", "action", "object_repr", "object_id"]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        # The event keeps a bare project id (it outlives the project); the name is
        # looked up in the same query, by app label so core imports no app above it.
        queryset = super().get_queryset(request)
        if not apps.is_installed("projects"):
            return queryset
        projects = apps.get_model("projects", "Project").objects.filter(pk=OuterRef("project_id"))
        return queryset.annotate(
            project_name=Subquery(projects.values("name")[:1]), project_slug=Subquery(projects.values("slug")[:1])
        )

    @admin.display(description="project", ordering="project_name")
    def project(self, obj) -> str:
        if obj.project_id is None:
            return "—"
        name = getattr(obj, "project_name", None)
        return f"{name} ({obj.project_slug})" if name else f"deleted project #{obj.project_id}"

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.site_header = "ML Platform governance"
admin.site.site_title = "ML Platform admin"
admin.site.index_title = "Users, roles, tokens and the audit log"
