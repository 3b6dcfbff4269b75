"""Writes of the projects app: projects and members, KPIs, lifecycles and gates.
Import from here (`from projects import services`); the modules split it by topic."""

from projects.services.gates import (
    gate_create,
    gate_criterion_add,
    gate_criterion_set_done,
    gate_decide,
    gate_evidence_add,
    gate_review_open,
    gate_vote,
    lifecycle_default,
    project_lifecycle_set,
    project_lifecycle_state,
)
from projects.services.kpis import kpi_create, kpi_feed_run_metric, kpi_record_value, kpi_update
from projects.services.projects import (
    PROJECT_FIELDS,
    membership_add,
    membership_change_role,
    membership_remove,
    personal_project_get_or_create,
    project_create,
    project_update,
)

__all__ = [
    "PROJECT_FIELDS",
    "gate_create",
    "gate_criterion_add",
    "gate_criterion_set_done",
    "gate_decide",
    "gate_evidence_add",
    "gate_review_open",
    "gate_vote",
    "kpi_create",
    "kpi_feed_run_metric",
    "kpi_record_value",
    "kpi_update",
    "lifecycle_default",
    "membership_add",
    "membership_change_role",
    "membership_remove",
    "personal_project_get_or_create",
    "project_create",
    "project_lifecycle_set",
    "project_lifecycle_state",
    "project_update",
]
