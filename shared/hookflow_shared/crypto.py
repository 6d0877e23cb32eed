"""Secrets at rest.

- Basic-auth passwords are only needed to check a password, so only a slow hash is kept
  (scrypt, a fresh salt per password). The gateway checks a presented credential once against
  the hash and then remembers it for a while, so a high-volume caller does not pay the hash on
  every request.
- Signing secrets must stay usable (the gateway computes HMACs with them), so they are
  encrypted at rest with Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`) under
  HOOKFLOW_SECRET_KEY. Several comma-separated keys may be given: the first encrypts, all
  decrypt, so keys can be rotated.
"""

import base64
import hashlib
import hmac
import os
import secrets

import structlog
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from hookflow_shared.errors import StartupError
from hookflow_shared.settings import CommonSettings

log = structlog.get_logger("hookflow")

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_PREFIX = "fernet:"


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    n, r, p = _SCRYPT["n"], _SCRYPT["r"], _SCRYPT["p"]
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: bytes, stored: str) -> bool:
    """Constant-time check of a password against a stored hash (slow on purpose)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password, salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def new_key() -> str:
    """A new HOOKFLOW_SECRET_KEY."""
    return Fernet.generate_key().decode()


def new_signing_secret(prefix: str = "") -> str:
    """A random signing secret: `whsec_` + base64 of 24 bytes for Standard Webhooks, 32
    URL-safe characters otherwise."""
    if prefix == "whsec_":
        return prefix + base64.b64encode(secrets.token_bytes(24)).decode()
    return prefix + secrets.token_urlsafe(24)


class SecretBox:
    """Encrypts and decrypts signing secrets with the configured key(s)."""

    def __init__(self, keys: str) -> None:
        try:
            self._fernet = MultiFernet(
                [Fernet(key.strip()) for key in keys.split(",") if key.strip()]
            )
        except (ValueError, TypeError) as error:
            raise ValueError(
                "HOOKFLOW_SECRET_KEY must be one or more comma-separated Fernet keys "
                "(32 url-safe base64-encoded bytes; `hookflow secret-key` makes one)"
            ) from error

    def encrypt(self, secret: str) -> str:
        return _PREFIX + self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, stored: str) -> str:
        if not stored.startswith(_PREFIX):
            raise ValueError("not an encrypted secret")
        try:
            return self._fernet.decrypt(stored.removeprefix(_PREFIX).encode()).decode()
        except InvalidToken as error:
            raise ValueError(
                "a stored secret does not decrypt with HOOKFLOW_SECRET_KEY (was the key changed "
                "without keeping the old one after a comma?)"
            ) from error


def secret_box(settings: CommonSettings, *, without: str) -> SecretBox | None:
    """The box for signing secrets, from HOOKFLOW_SECRET_KEY; without a key, None and a
    warning saying what cannot be done (`without`)."""
    if settings.secret_key is None:
        log.warning(f"HOOKFLOW_SECRET_KEY is not set: {without}")
        return None
    try:
        return SecretBox(settings.secret_key.get_secret_value())
    except ValueError as error:
        raise StartupError(str(error)) from error
