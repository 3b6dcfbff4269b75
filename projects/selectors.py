"""Reads of projects, filtered by what the asking user may see.

A user sees a project when they are a member or a platform admin. A request made with
a project-scoped API token sees that project only (`user.api_token`, set by
mlplatform.authentication)."""

from django.db.models import Count, OuterRef, QuerySet, Subquery

from mlplatform.errors import NotFound, PermissionDenied
from mlplatform.models import User
from mlplatform.roles import Role, role_at_least
from projects.models import Membership, Project


def token_scope(user: User) -> int | None:
    token = getattr(user, "api_token", None)
    return token.project_id if token is not None else None


def project_list(*, user: User) -> QuerySet[Project]:
    """Projects the user may see, each annotated with `member_count` and `my_role`."""
    my_role = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    qs = Project.objects.select_related("owner").annotate(member_count=Count("memberships"), my_role=Subquery(my_role))
    if not user.is_admin:
        qs = qs.filter(memberships__user=user)
    scope = token_scope(user)
    if scope is not None:
        qs = qs.filter(pk=scope)
    return qs.order_by("name")


def project_role(*, user: User, project: Project) -> str | None:
    """The user's effective role; platform admins act as owners everywhere."""
    scope = token_scope(user)
    if scope is not None and scope != project.pk:
        return None
    if user.is_admin:
        return Role.OWNER
    return Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()


def project_get(*, user: User, slug: str, min_role: str = Role.VIEWER) -> Project:
    """The project, if the user may see it; NotFound otherwise, never revealing that it
    exists. PermissionDenied if they see it but lack `min_role`."""
    project = Project.objects.select_related("owner").filter(slug=slug).first()
    return project_check(user=user, project=project, min_role=min_role)


def project_check(*, user: User, project: Project | None, min_role: str = Role.VIEWER) -> Project:
    role = project_role(user=user, project=project) if project is not None else None
    if role is None:
        raise NotFound("Project not found.")
    if not role_at_least(role, min_role):
        raise PermissionDenied(f"This needs the {Role(min_role).label} role in project '{project.slug}'.")
    project.my_role = role
    return project


def project_visible_ids(*, user: User) -> QuerySet:
    return project_list(user=user).values("pk")


def membership_list(*, project: Project) -> QuerySet[Membership]:
    return Membership.objects.filter(project=project).select_related("user").order_by("user__username")
