"""Writing the audit log. Services call `audit_record` inside their transaction, so an
event exists exactly when the change it describes was committed."""

from typing import Any

from django.db import models

from mlplatform.models import AuditEvent, User


def audit_record(
    *,
    actor: User | None,
    action: str,
    target: models.Model | None,
    project_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
    object_type: str = "",
    object_id: str = "",
) -> AuditEvent:
    """`target` is the changed object; for a subject that is no row (a client address
    locked out of signing in), give `object_type` and `object_id` instead."""
    actor_user = actor if actor is not None and actor.is_authenticated else None
    return AuditEvent.objects.create(
        actor=actor_user,
        actor_name=actor_user.username if actor_user else "system",
        action=action,
        object_type=target._meta.label_lower if target is not None else object_type,
        object_id=str(target.pk) if target is not None else object_id[:64],
        object_repr=str(target)[:255] if target is not None else object_id[:255],
        project_id=project_id,
        before=before,
        after=after,
        reason=reason,
    )


def snapshot(instance: models.Model, fields: list[str]) -> dict[str, Any]:
    """The named fields of `instance` as JSON-safe values, for before/after records."""
    values: dict[str, Any] = {}
    for name in fields:
        value = getattr(instance, name)
        if isinstance(value, models.Model):
            value = value.pk
        elif value is not None and not isinstance(value, (str, int, float, bool, list, dict)):
            value = str(value)
        values[name] = value
    return values
