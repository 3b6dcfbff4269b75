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
