"""Secret env values at rest: Fernet-encrypted in the job row, decrypted only where the
job's process environment is built (and where its output is masked). The key is
MLP_SECRETS_KEY when set (a Fernet key), else derived from SECRET_KEY, so rotating
SECRET_KEY without setting MLP_SECRETS_KEY makes stored secrets unreadable."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from mlplatform.errors import InvalidState

PREFIX = "fernet:"


def _fernet() -> Fernet:
    key = getattr(settings, "MLP_SECRETS_KEY", "")
    if not key:
        digest = hashlib.sha256(b"mlp-job-secrets:" + settings.SECRET_KEY.encode()).digest()
        key = base64.urlsafe_b64encode(digest).decode()
    return Fernet(key)


def encrypt_values(values: dict[str, str]) -> dict[str, str]:
    fernet = _fernet()
    return {name: PREFIX + fernet.encrypt(value.encode()).decode() for name, value in values.items()}


def decrypt_values(values: dict[str, str]) -> dict[str, str]:
    """Plain values of an encrypted mapping; a value stored before encryption came in
    (no prefix) is returned as it is."""
    fernet, plain = _fernet(), {}
    for name, value in values.items():
        if not value.startswith(PREFIX):
            plain[name] = value
            continue
        try:
            plain[name] = fernet.decrypt(value[len(PREFIX) :].encode()).decode()
        except InvalidToken as exc:
            raise InvalidState(f"The secret '{name}' cannot be decrypted: the platform's secrets key changed.") from exc
    return plain
