from django.db.models import QuerySet

from mlplatform.models import ApiToken, AuditEvent, User


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).select_related("project")


def audit_event_list(*, project_id: int | None = None) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.all()
    return qs.filter(project_id=project_id) if project_id is not None else qs
