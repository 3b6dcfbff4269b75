"""Brute-force protection for every password check: the login form, the admin's, and
HTTP basic auth on the REST API and the MLflow-compatible API all sign in through
`password_authenticate`.

Failures are counted per account (the username as typed, whether or not it exists, so
a lockout says nothing about which accounts exist) and per client address, in the
shared cache: Redis when REDIS_URL is set, so every web process sees the same counts;
the embedded default's one process keeps them in memory. After
MLP_LOGIN_FAILURE_LIMIT failures for one account, or MLP_LOGIN_ADDRESS_FAILURE_LIMIT
from one address, within MLP_LOGIN_FAILURE_WINDOW seconds, that account or address is
locked out for MLP_LOGIN_LOCKOUT_SECONDS, twice as long for each further lockout within
a day, up to MLP_LOGIN_LOCKOUT_MAX_SECONDS. While locked out no password is even
checked, so the right one is refused too. Each lockout writes an audit event.

API tokens are not throttled: they carry 240 random bits, which no one guesses, and an
account locked out by someone else's guessing keeps working through its tokens.

django-axes was the first choice; it does not fit here: it needs Django's request in
`authenticate()` and its middleware to answer, while the MLflow tracking plane checks
basic auth outside Django's request cycle (experiments/mlflow_api/lean.py), and the
APIs must answer 429 with Retry-After in two wire formats."""

from dataclasses import dataclass
import hashlib
import logging
import math
import time

from django.conf import settings
from django.contrib.auth import authenticate
from django.core.cache import cache

from mlplatform import tokens
from mlplatform.audit import audit_record
from mlplatform.models import User

logger = logging.getLogger(__name__)

STRIKES_TTL = 24 * 3600


class LockedOut(Exception):  # noqa: N818 - the state it reports, like Django's PermissionDenied
    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        minutes = math.ceil(retry_after / 60)
        wait = f"{retry_after} seconds" if retry_after < 120 else f"{minutes} minutes"
        self.message = (
            f"Too many failed sign-ins for this account or from this address. Try again in {wait}, or use an API token."
        )
        super().__init__(self.message)


@dataclass(frozen=True)
class Limits:
    account: int
    address: int
    window: float
    lockout: float
    lockout_max: float


def limits() -> Limits:
    return Limits(
        account=settings.MLP_LOGIN_FAILURE_LIMIT,
        address=settings.MLP_LOGIN_ADDRESS_FAILURE_LIMIT,
        window=settings.MLP_LOGIN_FAILURE_WINDOW,
        lockout=settings.MLP_LOGIN_LOCKOUT_SECONDS,
        lockout_max=settings.MLP_LOGIN_LOCKOUT_MAX_SECONDS,
    )


def _key(what: str, kind: str, value: str) -> str:
    digest = hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return f"{settings.MLP_LOGIN_THROTTLE_KEY_PREFIX}{what}:{kind}:{digest}"


def _subjects(username: str, address: str | None) -> list[tuple[str, str]]:
    subjects = [("account", username.strip().lower())]
    if address:
        subjects.append(("address", address))
    return subjects


def locked_for(*, username: str, address: str | None) -> int:
    """Seconds until the account and the address may sign in again; 0 when they may now."""
    keys = [_key("until", kind, value) for kind, value in _subjects(username, address)]
    until = max((float(v) for v in cache.get_many(keys).values()), default=0.0)
    remaining = until - time.time()
    return math.ceil(remaining) if remaining > 0 else 0


def _count(key: str, window: float) -> int:
    # add + incr is atomic on Redis (INCR keeps the expiry add set) and on locmem.
    cache.add(key, 0, timeout=math.ceil(window))
    try:
        return cache.incr(key)
    except ValueError:  # expired between the two calls
        cache.add(key, 1, timeout=math.ceil(window))
        return 1


def _lock(*, kind: str, value: str, failures: int, via: str) -> None:
    bounds = limits()
    strikes = _count(_key("strikes", kind, value), STRIKES_TTL)
    duration = min(bounds.lockout * 2 ** (strikes - 1), bounds.lockout_max)
    until = time.time() + duration
    # The value, not the key's expiry, says when it ends: Redis expiries are whole seconds.
    cache.set(_key("until", kind, value), until, timeout=math.ceil(duration) + 1)
    cache.delete(_key("failures", kind, value))
    # The tracking API remembers a good basic-auth check for a few seconds; this makes
    # every process check again, so the lockout holds at once there too.
    tokens.revocations_bump()
    logger.warning("sign-in lockout of %s %s for %.0f s after %d failures (%s)", kind, value, duration, failures, via)
    details = {kind: value, "failures": failures, "seconds": duration, "lockout": strikes, "via": via}
    user = User.objects.filter(username__iexact=value).first() if kind == "account" else None
    if user is not None:
        audit_record(actor=None, action="auth.lockout", target=user, after=details)
    else:
        audit_record(
            actor=None, action="auth.lockout", target=None, object_type=f"auth.{kind}", object_id=value, after=details
        )


def record_failure(*, username: str, address: str | None, via: str) -> None:
    bounds = limits()
    for kind, value in _subjects(username, address):
        limit = bounds.account if kind == "account" else bounds.address
        failures = _count(_key("failures", kind, value), bounds.window)
        # Exactly one of several concurrent failures reaches the limit and locks; a
        # count past it without a lock (a process died in between) locks as well.
        if failures == limit or (failures > limit and not _is_locked(kind, value)):
            _lock(kind=kind, value=value, failures=failures, via=via)


def _is_locked(kind: str, value: str) -> bool:
    return float(cache.get(_key("until", kind, value)) or 0) > time.time()


def record_success(*, username: str) -> None:
    """The account's failures are forgotten; its address's are not, or one valid
    account would let its owner spray guesses at the others."""
    cache.delete(_key("failures", "account", username.strip().lower()))


def password_authenticate(*, request, username: str, password: str, address: str | None, via: str) -> User | None:
    """Django's authenticate() behind the throttle: the user, or None for a wrong
    username or password. Raises LockedOut, without checking the password, while the
    account or the address is locked out."""
    wait = locked_for(username=username, address=address)
    if wait:
        raise LockedOut(wait)
    user = authenticate(request=request, username=username, password=password)
    if user is None:
        record_failure(username=username, address=address, via=via)
        return None
    record_success(username=username)
    return user


def client_address(meta: dict) -> str | None:
    """The peer address the server saw. Behind a reverse proxy, run uvicorn with
    --proxy-headers (and --forwarded-allow-ips) so this is the client's, not the proxy's."""
    return meta.get("REMOTE_ADDR") or None
