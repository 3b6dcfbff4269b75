"""Writes of projects and memberships. Callers have already checked the actor's role
(with projects.selectors.project_get) except where a docstring says otherwise."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from mlplatform import events
from mlplatform.audit import audit_record, snapshot
from mlplatform.errors import AlreadyExists, NotFound, ValidationFailed
from mlplatform.models import User
from mlplatform.roles import Role
from projects.models import Membership, Project, slug_validator
from projects.selectors import unscoped_check

PROJECT_FIELDS = ["name", "slug", "description"]


def _validate_slug(slug: str) -> str:
    try:
        slug_validator(slug)
    except DjangoValidationError as exc:
        raise ValidationFailed(f"Slug '{slug}': {exc.messages[0]}") from exc
    return slug


@transaction.atomic
def project_create(
    *, owner: User, name: str, slug: str = "", description: str = "", is_personal: bool = False
) -> Project:
    unscoped_check(user=owner, action="create projects")
    name = name.strip()
    if not name:
        raise ValidationFailed("A project needs a name.")
    slug = _validate_slug(slug or slugify(name)[:50].strip("-"))
    if Project.objects.filter(slug=slug).exists():
        raise AlreadyExists(f"A project with the slug '{slug}' already exists.")
    try:
        with transaction.atomic():
            project = Project.objects.create(
                name=name[:120], slug=slug, description=description, owner=owner, is_personal=is_personal
            )
    except IntegrityError as exc:  # a concurrent create took the slug between check and insert
        raise AlreadyExists(f"A project with the slug '{slug}' already exists.") from exc
    Membership.objects.create(project=project, user=owner, role=Role.OWNER)
    from projects.services.gates import project_lifecycle_state

    project_lifecycle_state(project=project)
    audit_record(
        actor=owner,
        action="project.create",
        target=project,
        project_id=project.pk,
        after=snapshot(project, PROJECT_FIELDS),
    )
    return project


@transaction.atomic
def project_update(*, project: Project, actor: User, **changes: str) -> Project:
    unknown = set(changes) - set(PROJECT_FIELDS)
    if unknown:
        raise ValidationFailed(f"Unknown project fields: {', '.join(sorted(unknown))}.")
    if "name" in changes and not changes["name"].strip():
        raise ValidationFailed("A project needs a name.")
    if "slug" in changes and changes["slug"] != project.slug:
        _validate_slug(changes["slug"])
        if Project.objects.filter(slug=changes["slug"]).exclude(pk=project.pk).exists():
            raise AlreadyExists(f"A project with the slug '{changes['slug']}' already exists.")
    before = snapshot(project, PROJECT_FIELDS)
    for field, value in changes.items():
        setattr(project, field, value.strip() if field != "description" else value)
    project.save(update_fields=[*changes, "updated_at"])
    audit_record(
        actor=actor,
        action="project.update",
        target=project,
        project_id=project.pk,
        before=before,
        after=snapshot(project, PROJECT_FIELDS),
    )
    return project


def personal_project_get_or_create(*, user: User) -> Project:
    """The user's own project, where experiments without a project land."""
    project = Project.objects.filter(owner=user, is_personal=True).first()
    if project is not None:
        return project
    base = slugify(f"{user.username}-personal")[:50].strip("-") or f"user-{user.pk}"
    slug, n = base, 1
    while Project.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base[:45]}-{n}"
    return project_create(owner=user, name=f"{user.username} (personal)", slug=slug, is_personal=True)


def _validate_role(role: str) -> Role:
    if role not in Role.values:
        raise ValidationFailed(f"Unknown role '{role}'. Choose one of: {', '.join(Role.values)}.")
    return Role(role)


@transaction.atomic
def membership_add(*, project: Project, username: str, role: str, actor: User) -> Membership:
    role = _validate_role(role)
    user = User.objects.filter(username=username.strip(), is_active=True).first()
    if user is None:
        raise ValidationFailed(f"There is no user named '{username}'.")
    if Membership.objects.filter(project=project, user=user).exists():
        raise AlreadyExists(f"{user.username} is already a member of {project.slug}.")
    membership = Membership.objects.create(project=project, user=user, role=role)
    audit_record(
        actor=actor,
        action="membership.add",
        target=membership,
        project_id=project.pk,
        after={"user": user.username, "role": role},
    )
    events.access_changed(user_id=user.pk, project_id=project.pk)
    return membership


def _owner_must_remain(project: Project, membership: Membership) -> None:
    others = Membership.objects.filter(project=project, role=Role.OWNER).exclude(pk=membership.pk)
    if membership.role == Role.OWNER and not others.exists():
        raise ValidationFailed("A project keeps at least one owner.")


def _membership_for_update(project: Project, username: str) -> Membership:
    membership = (
        Membership.objects.select_for_update()
        .select_related("user")
        .filter(project=project, user__username=username)
        .first()
    )
    if membership is None:
        raise NotFound(f"{username} is not a member of {project.slug}.")
    return membership


@transaction.atomic
def membership_change_role(*, project: Project, username: str, role: str, actor: User) -> Membership:
    role = _validate_role(role)
    membership = _membership_for_update(project, username)
    if role != Role.OWNER:
        _owner_must_remain(project, membership)
    before = {"role": membership.role}
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        actor=actor,
        action="membership.change_role",
        target=membership,
        project_id=project.pk,
        before=before,
        after={"role": role},
    )
    events.access_changed(user_id=membership.user_id, project_id=project.pk)
    return membership


@transaction.atomic
def membership_remove(*, project: Project, username: str, actor: User) -> None:
    membership = _membership_for_update(project, username)
    _owner_must_remain(project, membership)
    audit_record(
        actor=actor,
        action="membership.remove",
        target=membership,
        project_id=project.pk,
        before={"user": username, "role": membership.role},
    )
    events.access_changed(user_id=membership.user_id, project_id=project.pk)
    membership.delete()
