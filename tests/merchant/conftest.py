"""Fixtures of the merchant dashboard tests: members of "acme" and "other", and a ledger of requests really
paid on anvil (helpers: tests/support/merchant.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client
from django.utils import timezone

from stablepay.ledger import services
from stablepay.models import Merchant, PaymentRequest, Status
from tests.support.local_chain import LocalChain, create_request
from tests.support.merchant import Ledger, login, make_user


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
