"""A stream's broker password and scoring token at rest: Fernet-encrypted with the
platform's one secrets key, the same as job secrets (jobs.secrets)."""

from jobs import secrets as job_secrets


def encrypt(value: str) -> str:
    return job_secrets.encrypt_values({"v": value})["v"] if value else ""


def decrypt(value: str) -> str:
    return job_secrets.decrypt_values({"v": value})["v"] if value else ""
