"""Writes of the platform core: users and API tokens."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from mlplatform import tokens
from mlplatform.audit import audit_record
from mlplatform.errors import NotFound, PermissionDenied, ValidationFailed
from mlplatform.models import ApiToken, User


@transaction.atomic
def user_create(
    *, username: str, password: str | None, email: str = "", is_platform_admin: bool = False, actor: User | None = None
) -> User:
    username = username.strip()
    if not username:
        raise ValidationFailed("A username is required.")
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationFailed(f"The username '{username}' is taken.")
    user = User(username=username, email=email, is_platform_admin=is_platform_admin, is_staff=is_platform_admin)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    audit_record(actor=actor, action="user.create", target=user, after={"username": username})
    return user


@transaction.atomic
def api_token_create(
    *,
    user: User,
    name: str,
    project=None,
    expires_in_days: int | None = settings.API_TOKEN_DEFAULT_DAYS,
    expires_at: datetime | None = None,
    actor: User | None = None,
) -> tuple[ApiToken, str]:
    """Returns the token and its secret; the secret is never retrievable again.

    A token scoped to `project` requires that `user` may see that project (the caller
    checks membership: projects depend on this module, not the other way round)."""
    name = name.strip()
    if not name:
        raise ValidationFailed("Give the token a name, so you can recognise it later.")
    if expires_at is None and expires_in_days is not None:
        if expires_in_days <= 0 or expires_in_days > 3650:
            raise ValidationFailed("A token lives between 1 and 3650 days.")
        expires_at = timezone.now() + timedelta(days=expires_in_days)
    raw = tokens.generate()
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        prefix=tokens.display_prefix(raw),
        key_hash=tokens.hash_key(raw),
        project=project,
        expires_at=expires_at,
    )
    audit_record(
        actor=actor or user,
        action="api_token.create",
        target=token,
        project_id=project.pk if project else None,
        after={"name": token.name, "user": user.username, "expires_at": str(expires_at) if expires_at else None},
    )
    return token, raw


@transaction.atomic
def api_token_revoke(*, token_id: int, actor: User) -> ApiToken:
    token = ApiToken.objects.select_for_update().filter(pk=token_id).first()
    if token is None or (token.user_id != actor.pk and not actor.is_admin):
        raise NotFound("No such token.")
    if token.revoked_at is not None:
        return token
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    # Now for this process and cached checks made before; again after commit, for a
    # check that read the row before this transaction committed.
    tokens.revocations_bump()
    transaction.on_commit(tokens.revocations_bump)
    audit_record(actor=actor, action="api_token.revoke", target=token, after={"revoked_at": str(token.revoked_at)})
    return token


def api_token_authenticate(raw: str) -> ApiToken:
    """The live token behind `raw`, or PermissionDenied. Touches last_used_at at most
    once a minute so that a busy client does not write on every request."""
    if not raw.startswith(tokens.PREFIX):
        raise PermissionDenied("Invalid token.")
    token = ApiToken.objects.select_related("user").filter(key_hash=tokens.hash_key(raw)).first()
    now = timezone.now()
    if token is None or token.revoked_at is not None or not token.user.is_active:
        raise PermissionDenied("Invalid or revoked token.")
    if token.expires_at is not None and token.expires_at <= now:
        raise PermissionDenied("This token has expired.")
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
