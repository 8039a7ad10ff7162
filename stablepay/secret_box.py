"""Secrets at rest: what stablepay must read back in plaintext (webhook signing secrets) is stored
encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`). API keys are not here: they
are stored as SHA-256 only (stablepay/api/authentication.py), since they only need checking.

Keys come from STABLEPAY["SECRETS_KEYS"] (env `STABLEPAY_SECRETS_KEY`: one or more Fernet keys,
comma-separated). The first encrypts; every one decrypts (MultiFernet), so a key is rotated by putting
a new one first, running `manage.py stablepay_rotate_secrets_key` and then dropping the old one.
When unset, one key is derived from SECRET_KEY with HKDF-SHA256: then every process that reads the
database (web, watcher, Celery workers) must share SECRET_KEY, and changing SECRET_KEY needs the old
derived key listed in STABLEPAY_SECRETS_KEY (`stablepay_rotate_secrets_key --print-derived-key`).

`EncryptedTextField` is the model field: Python sees the plaintext, the column holds the Fernet token
(so raw SQL, dumps and backups of the table do not reveal the secret). "" stays "" (no secret set).
"""

from __future__ import annotations

import base64
import functools
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

from stablepay.conf import app_settings

HKDF_SALT = b"stablepay secrets at rest"
HKDF_INFO = b"stablepay fernet key v1"


class SecretDecryptionError(RuntimeError):
    """A stored secret does not decrypt with any configured key."""


def derive_key(secret_key: str) -> bytes:
    """The Fernet key HKDF-SHA256 derives from Django's SECRET_KEY (used when no key is configured)."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=HKDF_SALT, info=HKDF_INFO).derive(secret_key.encode())
    return base64.urlsafe_b64encode(raw)


def configured_keys() -> tuple[str, ...]:
    return app_settings.SECRETS_KEYS


@functools.lru_cache(maxsize=8)
def _box(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        return MultiFernet([Fernet(derive_key(secret_key))])
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "STABLEPAY_SECRETS_KEY: each comma-separated key must be a Fernet key "
            "(32 url-safe base64-encoded bytes, e.g. from Fernet.generate_key())"
        ) from exc


def box() -> MultiFernet:
    return _box(configured_keys(), settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    return box().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    return _decrypt(token, configured_keys(), settings.SECRET_KEY)


@functools.lru_cache(maxsize=4096)
def _decrypt(token: str, keys: tuple[str, ...], secret_key: str) -> str:
    """Cached per token: a merchant row read again (select_related in a batch) costs no second decryption."""
    try:
        return _box(keys, secret_key).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError) as exc:
        raise SecretDecryptionError(
            "a stored secret does not decrypt with any key in STABLEPAY_SECRETS_KEY (or, when unset, the key "
            "derived from SECRET_KEY): was a key dropped or SECRET_KEY changed?"
        ) from exc


def reencrypt(token: str) -> str:
    """The same secret under the first (current) key."""
    try:
        return box().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken as exc:
        raise SecretDecryptionError("a stored secret does not decrypt with any configured key") from exc


def is_encrypted(value: str) -> bool:
    """Whether `value` is a token that decrypts with the configured keys."""
    try:
        decrypt(value)
    except SecretDecryptionError:
        return False
    return True


class EncryptedTextField(models.TextField):
    """A text column holding a Fernet token; the model attribute is the plaintext.

    Lookups other than exact "" are meaningless (each encryption is randomised), so do not filter on it.
    """

    description = "Text encrypted at rest (Fernet)"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)
