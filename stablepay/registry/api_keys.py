"""Merchant API keys at rest: only a key's SHA-256 hash is stored (and its first characters, to tell keys
apart); the API's authentication (stablepay/api/authentication.py), key rotation on the merchant dashboard and
the setup file all hash a key here."""

from __future__ import annotations

import hashlib


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
