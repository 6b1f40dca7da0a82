"""Slack tokens at rest: sealed with PHASEGATE_SECRET_KEY when it is set, kept as given otherwise.

A sealed value is `enc:v1:` + a Fernet token (AES-128-CBC + HMAC-SHA256, from `cryptography`) under a key derived
from the secret with HKDF-SHA256. Reading accepts both forms, so rows stored before the key was set stay readable
(and are sealed the next time they are saved: a reinstall or a token refresh).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from bot.config import ConfigError

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

PREFIX = "enc:v1:"
MIN_SECRET = 32  # characters; `python -c "import secrets; print(secrets.token_urlsafe(32))"` gives 43


def _fernet(secret: str) -> Fernet:
    """Imported here: without a key (one workspace, or tokens stored as given) `cryptography` is never loaded."""
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"phasegate slack tokens v1").derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


class TokenCipher:
    def __init__(self, secret: str | None = None) -> None:
        self._fernet = _fernet(secret) if secret else None

    @property
    def sealing(self) -> bool:
        return self._fernet is not None

    def seal(self, token: str) -> str:
        """What to store for `token`: sealed with the key, or `token` itself without one."""
        if self._fernet is None or not token:
            return token
        return PREFIX + self._fernet.encrypt(token.encode()).decode()

    def open(self, stored: str) -> str:
        """The token a stored value holds (a plain value is returned as it is)."""
        if not stored.startswith(PREFIX):
            return stored
        if self._fernet is None:
            raise ConfigError(
                "The Slack tokens in the database are encrypted, but PHASEGATE_SECRET_KEY is not set: set it to "
                "the key they were stored with."
            )
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(stored.removeprefix(PREFIX).encode()).decode()
        except InvalidToken:
            raise ConfigError(
                "A Slack token in the database does not decrypt with this PHASEGATE_SECRET_KEY: set the key it was "
                "stored with (or have that workspace add Phasegate again)."
            ) from None
