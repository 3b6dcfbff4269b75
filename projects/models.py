from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from mlplatform.roles import Role

slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$",
    "Use 1-50 lowercase letters, digits and hyphens, starting and ending with a letter or digit.",
)


class Project(models.Model):
    name = models.CharField(max_length=120)
    slug = models.CharField(max_length=50, unique=True, validators=[slug_validator])
    description = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_projects")
    is_personal = models.BooleanField(default=False, help_text="A user's own project for unsorted experiments.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user_per_project"),
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"


# --- Lifecycles and stages -------------------------------------------------------------

DEFAULT_LIFECYCLE = "Default"
DEFAULT_STAGES = ["Framing", "Experimentation", "Pilot", "Production", "Retired"]


class Lifecycle(models.Model):
    """An ordered list of stages a project moves through, one gate decision at a time.
    Admins define others in the admin; the default is made on first use."""

    name = models.CharField(max_length=80, unique=True)
    description = models.TextField(blank=True)

    def __str__(self) -> str:
        return self.name


class Stage(models.Model):
    lifecycle = models.ForeignKey(Lifecycle, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(max_length=80)
    order = models.PositiveIntegerField()

    class Meta:
        ordering = ["lifecycle", "order"]
        constraints = [
            models.UniqueConstraint(fields=["lifecycle", "order"], name="stage_unique_order"),
            models.UniqueConstraint(fields=["lifecycle", "name"], name="stage_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class ProjectStage(models.Model):
    """Where a project stands in its lifecycle. Kept beside Project so the stage only
    ever changes through a gate decision (projects.services.gate_decide)."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="lifecycle_state")
    lifecycle = models.ForeignKey(Lifecycle, on_delete=models.PROTECT, related_name="+")
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="+")
    changed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.project} at {self.stage}"


# --- KPIs -----------------------------------------------------------------------------


class KpiDirection(models.TextChoices):
    HIGHER = "higher", "Higher is better"
    LOWER = "lower", "Lower is better"


class KpiSource(models.TextChoices):
    MANUAL = "manual", "Manual entry"
    RUN_METRIC = "run_metric", "Run metric"
    ENDPOINT_METRIC = "endpoint_metric", "Endpoint metric"


class Kpi(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="kpis")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    unit = models.CharField(max_length=30, blank=True)
    direction = models.CharField(max_length=10, choices=KpiDirection.choices, default=KpiDirection.HIGHER)
    baseline = models.FloatField(null=True, blank=True)
    target = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True, help_text="The acceptance threshold a gate checks.")
    source_type = models.CharField(max_length=20, choices=KpiSource.choices, default=KpiSource.MANUAL)
    source_key = models.CharField(max_length=200, blank=True, help_text="Run metric key or endpoint metric.")
    is_draft = models.BooleanField(default=False, help_text="Proposed at promotion; not yet agreed.")
    # The latest value is denormalised so lists and gates never scan the history.
    current_value = models.FloatField(null=True, blank=True)
    current_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="kpi_unique_name_per_project"),
            models.CheckConstraint(condition=models.Q(direction__in=KpiDirection.values), name="kpi_direction_valid"),
            models.CheckConstraint(condition=models.Q(source_type__in=KpiSource.values), name="kpi_source_valid"),
        ]

    def __str__(self) -> str:
        return self.name

    def meets(self, value: float | None, bar: float | None) -> bool | None:
        if value is None or bar is None:
            return None
        return value >= bar if self.direction == KpiDirection.HIGHER else value <= bar

    @property
    def status(self) -> str:
        """on_target | acceptable | below | no_data, computed, never claimed."""
        if self.current_value is None:
            return "no_data"
        if self.meets(self.current_value, self.target):
            return "on_target"
        if self.meets(self.current_value, self.threshold):
            return "acceptable"
        return "below" if self.target is not None or self.threshold is not None else "no_target"

    @property
    def progress(self) -> float | None:
        if self.current_value is None or self.baseline is None or self.target is None or self.target == self.baseline:
            return None
        return max(0.0, min(1.0, (self.current_value - self.baseline) / (self.target - self.baseline)))


class KpiValue(models.Model):
    kpi = models.ForeignKey(Kpi, on_delete=models.CASCADE, related_name="values")
    value = models.FloatField()
    source = models.CharField(max_length=200)
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["kpi", "recorded_at"]
        indexes = [models.Index(fields=["kpi", "recorded_at"], name="kpivalue_kpi_time")]

    def __str__(self) -> str:
        return f"{self.kpi} = {self.value}"


# --- Decision gates ---------------------------------------------------------------------


class GateStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_REVIEW = "in_review", "In review"
    DECIDED = "decided", "Decided"


class Verdict(models.TextChoices):
    GO = "go", "Go"
    NO_GO = "no_go", "No-go"
    HOLD = "hold", "Hold"


class Gate(models.Model):
    """The gate into `to_stage`: criteria, approvers, a review, and at most one decision."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="gates")
    to_stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=120)
    status = models.CharField(max_length=20, choices=GateStatus.choices, default=GateStatus.OPEN)
    approver_roles = models.JSONField(default=list, blank=True, help_text="Project roles whose members may vote.")
    approvers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    quorum = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "to_stage__order", "created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=GateStatus.values), name="gate_status_valid"),
            models.CheckConstraint(condition=models.Q(quorum__gte=1), name="gate_quorum_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class CriterionKind(models.TextChoices):
    KPI = "kpi", "KPI threshold"
    CHECK = "check", "Checklist item"


class GateCriterion(models.Model):
    gate = models.ForeignKey(Gate, on_delete=models.CASCADE, related_name="criteria")
    kind = models.CharField(max_length=10, choices=CriterionKind.choices)
    label = models.CharField(max_length=200)
    kpi = models.ForeignKey(Kpi, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    done = models.BooleanField(default=False)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["gate", "position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="check") | models.Q(kpi__isnull=False), name="criterion_kpi_needs_kpi"
            ),
        ]

    def __str__(self) -> str:
        return self.label


class GateEvidence(models.Model):
    """A generic link to evidence in another app (a run, a model version): kind + id,
    so this app needs none of theirs; the review snapshots what it looked like."""

    gate = models.ForeignKey(Gate, on_delete=models.CASCADE, related_name="evidence")
    kind = models.CharField(max_length=40)
    ref_id = models.CharField(max_length=64)
    label = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["gate", "kind", "ref_id"], name="evidence_unique_ref")]

    def __str__(self) -> str:
        return f"{self.kind} {self.ref_id}"


class GateReview(models.Model):
    gate = models.OneToOneField(Gate, on_delete=models.CASCADE, related_name="review")
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    opened_at = models.DateTimeField(auto_now_add=True)
    snapshot = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"Review of {self.gate}"


class GateVote(models.Model):
    review = models.ForeignKey(GateReview, on_delete=models.CASCADE, related_name="votes")
    voter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    comment = models.TextField(blank=True)
    voted_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["review", "voted_at"]
        constraints = [
            models.UniqueConstraint(fields=["review", "voter"], name="gatevote_one_per_voter"),
            models.CheckConstraint(condition=models.Q(verdict__in=Verdict.values), name="gatevote_verdict_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.voter}: {self.verdict}"


class GateDecision(models.Model):
    """Immutable: one per gate (the database refuses a second), never updated."""

    gate = models.OneToOneField(Gate, on_delete=models.PROTECT, related_name="decision")
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    rationale = models.TextField(blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(auto_now_add=True)
    from_stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="+")
    to_stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="+")
    tally = models.JSONField(default=dict)
    snapshot = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(verdict__in=Verdict.values), name="gatedecision_verdict_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.gate}: {self.verdict}"
