"""API key authentication: `Authorization: Bearer <key>`; keys are stored as SHA-256 hashes only.

The key -> merchant lookup is cached per process for a few seconds (stablepay.registry.refdata).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from stablepay.models import Merchant
from stablepay.registry import refdata
from stablepay.registry.api_keys import hash_api_key


@dataclass(frozen=True)
class MerchantPrincipal:
    """The authenticated caller: a merchant, not a Django user."""

    merchant: Merchant
    is_authenticated: bool = True

    @property
    def pk(self) -> int:
        return self.merchant.pk


class MerchantApiKeyAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[MerchantPrincipal, Merchant] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        if scheme != self.keyword or not key.strip():
            raise AuthenticationFailed("Authorization must be 'Bearer <api key>'")
        merchant = refdata.merchant_by_api_key_hash(hash_api_key(key.strip()))
        if merchant is None:
            raise AuthenticationFailed("invalid API key")
        return MerchantPrincipal(merchant), merchant

    def authenticate_header(self, request: Any) -> str:
        return f'{self.keyword} realm="api"'


class MerchantApiKeyScheme(OpenApiAuthenticationExtension):
    """Describes the API key as an HTTP bearer scheme in the OpenAPI document."""

    target_class = MerchantApiKeyAuthentication
    name = "merchantApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "The merchant's API key."}
