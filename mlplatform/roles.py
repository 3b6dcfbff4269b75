"""Project roles, ordered: each role may do everything the ones below it may."""

from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    STAKEHOLDER = "stakeholder", "Stakeholder"
    DATA_SCIENTIST = "data_scientist", "Data scientist"
    ML_ENGINEER = "ml_engineer", "ML engineer"
    OWNER = "owner", "Owner"


RANK = {
    Role.VIEWER: 10,
    Role.STAKEHOLDER: 20,
    Role.DATA_SCIENTIST: 30,
    Role.ML_ENGINEER: 40,
    Role.OWNER: 50,
}


def role_at_least(role: str | None, minimum: str) -> bool:
    return role is not None and RANK[Role(role)] >= RANK[Role(minimum)]
