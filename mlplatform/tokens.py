"""API token format and hashing. A token is `mlp_` + 40 url-safe characters; we keep
its SHA-256 only (the secret has enough entropy that a salt adds nothing)."""

import hashlib
import secrets

PREFIX = "mlp_"


def generate() -> str:
    return PREFIX + secrets.token_urlsafe(30)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def display_prefix(raw: str) -> str:
    return raw[: len(PREFIX) + 6]


# Processes that cache a successful token check (the MLflow-compatible API does, for a
# few seconds) compare this count before trusting their cache: a revocation anywhere
# bumps it, so a revoked token stops working on the next request. The shared cache is
# Redis when configured, so this reaches every web process; embedded, one process.
REVOCATIONS_KEY = "mlp:api-token-revocations"


def revocations_count() -> int:
    from django.core.cache import cache

    return int(cache.get(REVOCATIONS_KEY, 0))


def revocations_bump() -> None:
    from django.core.cache import cache

    try:
        cache.incr(REVOCATIONS_KEY)
    except ValueError:  # first revocation since the cache started
        cache.add(REVOCATIONS_KEY, 1, timeout=None)
        cache.incr(REVOCATIONS_KEY)
