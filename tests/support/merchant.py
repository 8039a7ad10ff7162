"""Helpers of the merchant dashboard tests (tests/merchant, and the registry, webhook and security tests that
sign in to the dashboard): members of a merchant signed in, the paid ledger tests/merchant/conftest.py builds
on anvil, and the fiat rule written independently of the code."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client

from stablepay.models import Merchant, PaymentRequest, Status
from tests.support.auth import login_as

PASSWORD = "correct-horse-battery-staple"


def make_user(username: str, *merchants: Merchant) -> AbstractBaseUser:
    user = get_user_model().objects.create_user(username, password=PASSWORD)
    for merchant in merchants:
        merchant.members.add(user)
    return user


def login(user: AbstractBaseUser, *, enforce_csrf_checks: bool = False) -> Client:
    client = Client(enforce_csrf_checks=enforce_csrf_checks)
    login_as(client, user)
    return client


@dataclass
class Ledger:
    """Requests of "acme" paid on chain, by name; `open` was never paid."""

    requests: dict[str, PaymentRequest]

    def __getitem__(self, name: str) -> PaymentRequest:
        request = self.requests[name]
        request.refresh_from_db()
        return request

    def paid(self) -> list[PaymentRequest]:
        return [r for r in (self[name] for name in self.requests) if r.status == Status.PAID]


def expected_fiat(request: PaymentRequest) -> Decimal:
    """The fiat rule, written independently: price x received / due, rounded half up to the cent."""
    exact = Fraction(request.amount) * int(request.amount_paid_base_units) / int(request.amount_due_base_units)
    cents = int(exact * 100 + Fraction(1, 2))  # floor(x + 1/2) for x >= 0
    return Decimal(cents) / 100
