"""API permissions: every endpoint acts for the authenticated merchant only."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from stablepay.models import Merchant


class IsMerchant(BasePermission):
    message = "a merchant API key is required"

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, Merchant)
