"""Workshop boards: lanes of idea cards, comments, dot votes and who is on the board.

Who may do what on a board is decided in one place, ideation.selectors.board_access."""

from django.conf import settings
from django.db import models

from projects.models import Project


class Board(models.Model):
    """A workshop. Inside a project (its members take part by role) or at organisation
    level before any project exists (only invited participants take part)."""

    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="boards")
    title = models.CharField(max_length=160)
    description = models.TextField(blank=True)
    facilitator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    vote_budget = models.PositiveIntegerField(default=5)
    votes_hidden = models.BooleanField(default=False, help_text="Tallies hidden until the facilitator reveals them.")
    locked = models.BooleanField(default=False)
    timer_ends_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(vote_budget__lte=99), name="board_vote_budget_max_99"),
        ]

    def __str__(self) -> str:
        return self.title


class ParticipantRole(models.TextChoices):
    FACILITATOR = "facilitator", "Facilitator"
    PARTICIPANT = "participant", "Participant"
    OBSERVER = "observer", "Observer"


class Participant(models.Model):
    """An invitation to a board. Organisation-level boards are visible only to these
    (and platform admins); on project boards it can add co-facilitators."""

    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="board_invitations")
    role = models.CharField(max_length=20, choices=ParticipantRole.choices, default=ParticipantRole.PARTICIPANT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["board", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["board", "user"], name="participant_unique_user_per_board"),
            models.CheckConstraint(condition=models.Q(role__in=ParticipantRole.values), name="participant_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.board}"


class Lane(models.Model):
    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="lanes")
    title = models.CharField(max_length=80)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["board", "position", "pk"]

    def __str__(self) -> str:
        return self.title


class IdeaKind(models.TextChoices):
    PAIN_POINT = "pain_point", "Pain point"
    LOW_HANGING_FRUIT = "low_hanging_fruit", "Low-hanging fruit"


class IdeaStatus(models.TextChoices):
    NEW = "new", "New"
    SHORTLISTED = "shortlisted", "Shortlisted"
    PROMOTED = "promoted", "Promoted"
    PARKED = "parked", "Parked"


class Idea(models.Model):
    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="ideas")
    lane = models.ForeignKey(Lane, on_delete=models.PROTECT, related_name="ideas")
    position = models.PositiveIntegerField(default=0)
    title = models.CharField(max_length=200)
    problem = models.TextField(blank=True)
    solution = models.TextField(blank=True, help_text="The proposed data-driven solution.")
    data_available = models.TextField(blank=True)
    benefit = models.TextField(blank=True, help_text="Expected benefit.")
    kind = models.CharField(max_length=20, choices=IdeaKind.choices, default=IdeaKind.PAIN_POINT)
    impact = models.PositiveSmallIntegerField(default=3)
    effort = models.PositiveSmallIntegerField(default=3)
    tags = models.JSONField(default=list, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=20, choices=IdeaStatus.choices, default=IdeaStatus.NEW)
    project = models.OneToOneField(
        Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="origin_idea"
    )
    # Per edited field: {"v": version, "by": username}, for last-write-wins with notice.
    field_versions = models.JSONField(default=dict, blank=True)
    vote_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["board", "lane", "position", "pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(impact__gte=1, impact__lte=5), name="idea_impact_1_5"),
            models.CheckConstraint(condition=models.Q(effort__gte=1, effort__lte=5), name="idea_effort_1_5"),
            models.CheckConstraint(condition=models.Q(kind__in=IdeaKind.values), name="idea_kind_valid"),
            models.CheckConstraint(condition=models.Q(status__in=IdeaStatus.values), name="idea_status_valid"),
        ]
        indexes = [models.Index(fields=["board", "lane", "position"], name="idea_board_lane_pos")]

    def __str__(self) -> str:
        return self.title


class Comment(models.Model):
    idea = models.ForeignKey(Idea, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    body = models.TextField(help_text="Markdown; rendered sanitised.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["idea", "created_at", "pk"]

    def __str__(self) -> str:
        return f"Comment by {self.author} on {self.idea}"


class VoteAllowance(models.Model):
    """A participant's dot-vote budget on a board. `used <= budget` is a database
    constraint, and votes take a dot with a conditional UPDATE, so the count is exact
    under any number of concurrent clicks (PostgreSQL and SQLite alike)."""

    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="allowances")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    budget = models.PositiveIntegerField()
    used = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["board", "user"], name="allowance_unique_user_per_board"),
            models.CheckConstraint(
                condition=models.Q(used__lte=models.F("budget")), name="allowance_used_within_budget"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.used}/{self.budget} on {self.board}"


class Vote(models.Model):
    """One dot. A participant may put several dots on one idea."""

    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="votes")
    idea = models.ForeignKey(Idea, on_delete=models.CASCADE, related_name="votes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["board", "user"], name="vote_board_user")]

    def __str__(self) -> str:
        return f"{self.user} → {self.idea}"


class Presence(models.Model):
    """Who is on a board now: one row per open websocket, shared by every web process."""

    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="presence")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    channel_name = models.CharField(max_length=200, unique=True)
    joined_at = models.DateTimeField(auto_now_add=True)
    # Browsers ping every 30 s; a row not seen for PRESENCE_TTL is a connection whose
    # process died without a disconnect, and no longer counts.
    last_seen = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user} on {self.board}"
