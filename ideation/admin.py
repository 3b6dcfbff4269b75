from django.contrib import admin

from ideation.models import Board, Comment, Idea, Lane, Participant


class LaneInline(admin.TabularInline):
    model = Lane
    extra = 0


class ParticipantInline(admin.TabularInline):
    model = Participant
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Board)
class BoardAdmin(admin.ModelAdmin):
    list_display = ["title", "project", "facilitator", "vote_budget", "locked", "created_at"]
    list_select_related = ["project", "facilitator"]
    search_fields = ["title", "project__slug"]
    inlines = [LaneInline, ParticipantInline]


@admin.register(Idea)
class IdeaAdmin(admin.ModelAdmin):
    list_display = ["title", "board", "kind", "status", "impact", "effort", "vote_count", "project"]
    list_select_related = ["board", "project"]
    list_filter = ["kind", "status"]
    search_fields = ["title"]
    # Vote counts follow the votes table; editing them here would break the budget.
    readonly_fields = ["vote_count", "field_versions"]


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ["idea", "author", "created_at"]
    list_select_related = ["idea", "author"]
