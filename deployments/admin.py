"""Endpoints and revisions in the governance console: read-mostly. Deploys, traffic,
promotions and rollbacks go through deployments.services (audited, published live,
checked against the gate); here governance looks, and may only reword a description."""

from django.contrib import admin

from deployments.models import Endpoint, EndpointEvent, Revision
from mlplatform.admin import AuditedAdmin


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class RevisionInline(ReadOnlyInline):
    model = Revision
    fields = ["number", "model_name", "model_version_number", "status", "trusted", "loader", "created_at"]
    readonly_fields = fields


@admin.register(Endpoint)
class EndpointAdmin(AuditedAdmin):
    list_display = ["name", "slug", "project", "champion", "challenger", "challenger_mode", "traffic", "public"]
    list_select_related = ["project", "champion__endpoint", "challenger__endpoint"]
    list_filter = ["challenger_mode", "public", "auto_rollback", "auto_promote"]
    search_fields = ["name", "slug", "project__name", "project__slug"]
    # The token's hash and prefix stay out of the console.
    exclude = ["token_hash"]
    inlines = [RevisionInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name not in ("description", "token_hash")]

    def has_add_permission(self, request):
        return False  # an endpoint is made in the app: it needs a token shown once

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Revision)
class RevisionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "endpoint", "project", "status", "model_name", "model_version_number", "created_at"]
    list_select_related = ["endpoint__project"]
    list_filter = ["status", "trusted"]
    search_fields = ["endpoint__slug", "endpoint__project__name", "model_name"]
    exclude = ["reference"]  # per-feature histograms: large, and shown on the endpoint page

    @admin.display(description="project", ordering="endpoint__project__name")
    def project(self, obj) -> str:
        return obj.endpoint.project.name

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "reference"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(EndpointEvent)
class EndpointEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "endpoint", "kind", "revision", "automatic", "actor", "reason"]
    list_select_related = ["endpoint", "revision__endpoint", "actor"]
    list_filter = ["kind", "automatic"]
    search_fields = ["endpoint__slug", "kind", "reason"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
