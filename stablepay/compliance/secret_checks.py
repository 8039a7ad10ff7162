"""System checks for the secrets stablepay depends on (see stablepay/secret_box.py).

- stablepay.E101: a STABLEPAY_SECRETS_KEY entry is not a Fernet key (always checked).
- stablepay.E102 (`check --deploy`): DEBUG is off and SECRET_KEY is not set in the environment. The
  settings then fall back to a random per-checkout `.secret_key` file, which is for development only:
  every web, watcher and worker process must share one SECRET_KEY (sessions, and, unless
  STABLEPAY_SECRETS_KEY is set, the key that encrypts webhook secrets at rest).
- stablepay.E103: STABLEPAY_AUDIT_SIGNING_KEY is set but is not an Ed25519 key (always checked).
"""

from __future__ import annotations

import os
from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register

from stablepay.secret_box import configured_keys


@register()
def secrets_keys_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for i, key in enumerate(configured_keys()):
        try:
            Fernet(key)
        except ValueError:
            errors.append(
                Error(
                    f"STABLEPAY_SECRETS_KEY: key {i + 1} is not a Fernet key.",
                    hint="Each comma-separated key is 32 url-safe base64-encoded bytes: "
                    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"',
                    id="stablepay.E101",
                )
            )
    return errors


@register(Tags.security, deploy=True)
def secret_key_from_environment_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.DEBUG or os.environ.get("SECRET_KEY", "").strip():
        return []
    return [
        Error(
            "DEBUG is off but SECRET_KEY is not set in the environment.",
            hint="Set SECRET_KEY (the same value for every web, watcher and worker process); the .secret_key "
            "file it falls back to is for development only.",
            id="stablepay.E102",
        )
    ]


@register()
def audit_signing_key_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    from stablepay.compliance.audit_bundle import BundleError, configured_key_text, parse_signing_key

    text = configured_key_text()
    if not text:
        return []
    try:
        parse_signing_key(text)
    except BundleError as exc:
        return [
            Error(
                f"STABLEPAY_AUDIT_SIGNING_KEY: {exc}.",
                hint="Give a PEM Ed25519 private key or the base64 of a raw 32-byte seed: "
                'python -c "import base64,os; print(base64.b64encode(os.urandom(32)).decode())"',
                id="stablepay.E103",
            )
        ]
    return []
