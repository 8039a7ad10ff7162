"""Merchant dashboard fixtures: members of "acme" and "other", and a ledger of requests really paid on anvil."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client
from django.utils import timezone

from stablepay.ledger import services
from stablepay.models import Merchant, PaymentRequest, Status
from tests.conftest import LocalChain, create_request
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


@pytest.fixture
def other_merchant(local_chain: LocalChain) -> Merchant:
    return Merchant.objects.get(slug="other")


@pytest.fixture
def member(merchant: Merchant) -> AbstractBaseUser:
    return make_user("alice", merchant)


@pytest.fixture
def outsider(other_merchant: Merchant) -> AbstractBaseUser:
    """A member of "other" only."""
    return make_user("bob", other_merchant)


@pytest.fixture
def member_client(member: AbstractBaseUser) -> Client:
    return login(member)


@pytest.fixture
def outsider_client(outsider: AbstractBaseUser) -> Client:
    return login(outsider)


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


# (name, amount, currency, token, how much to pay: "due" or base units)
PLAN: list[tuple[str, str, str, str, str | int]] = [
    ("hkd_hkdx", "10.00", "HKD", "HKDX", "due"),
    ("mop_hkdx", "103.00", "MOP", "HKDX", "due"),
    ("mop_hkdx_odd", "10.00", "MOP", "HKDX", "due"),  # due rounds up: 9.708738 HKDX
    ("hkd_usdc", "78.00", "HKD", "USDC", "due"),
    ("mop_usdc", "25.50", "MOP", "USDC", "due"),
    ("hkd_hkdx_short", "20.00", "HKD", "HKDX", 19_950_000),  # 0.25 % short: within the 0.5 % tolerance
]


@pytest.fixture
def ledger(local_chain: LocalChain, merchant: Merchant) -> Ledger:
    """Five requests paid in full, one paid short within tolerance, one underpaid then accepted, one open.

    Every payment is a real ERC-20 transfer on anvil, recorded and reconciled by the watcher.
    """
    requests: dict[str, PaymentRequest] = {}
    for name, amount, currency, token, pay in PLAN:
        request = create_request(merchant, amount=amount, currency=currency, token=token, order_reference=name)
        units = int(request.amount_due_base_units) if pay == "due" else int(pay)
        local_chain.pay(request.pay_to, units, symbol=token)
        requests[name] = request
    accepted = create_request(merchant, amount="30.00", currency="HKD", token="HKDX", order_reference="accepted")
    local_chain.pay(accepted.pay_to, 12_345_678, symbol="HKDX")
    requests["accepted"] = accepted
    local_chain.settle()
    accepted.refresh_from_db()
    assert accepted.status == Status.OPEN and int(accepted.amount_paid_base_units) == 12_345_678
    services.payment_requests_expire(now=timezone.now() + timedelta(minutes=16))  # expired with too little
    accepted.refresh_from_db()
    assert (accepted.status, accepted.exception) == (Status.NEEDS_REVIEW, "underpaid")
    services.payment_request_resolve(
        request_id=accepted.pk, action="accept", note="customer topped up by bank", actor="test"
    )
    requests["open"] = create_request(merchant, amount="55.00", currency="HKD", token="HKDX", order_reference="open")
    ledger = Ledger(requests)
    assert sorted(r.order_reference for r in ledger.paid()) == sorted([*(p[0] for p in PLAN), "accepted"])
    return ledger


def expected_fiat(request: PaymentRequest) -> Decimal:
    """The fiat rule, written independently: price x received / due, rounded half up to the cent."""
    exact = Fraction(request.amount) * int(request.amount_paid_base_units) / int(request.amount_due_base_units)
    cents = int(exact * 100 + Fraction(1, 2))  # floor(x + 1/2) for x >= 0
    return Decimal(cents) / 100
