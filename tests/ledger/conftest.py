"""Fixtures of the ledger tests: a random ledger (tests/support/random_ledgers.py), two ops users, and the
same ledger with decided and pending ops actions and an event outside the export range."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User

from stablepay.models import Event, PaymentRequest
from tests.support.ledger_copies import ops_action
from tests.support.random_ledgers import NOW, World, random_ledger


@pytest.fixture
def ledger(world: World) -> World:
    random_ledger(world, random.Random(8), 30)
    return world


@pytest.fixture
def users(db: None) -> tuple[User, User]:
    return User.objects.create_user("ops-ann"), User.objects.create_user("ops-ben")


@pytest.fixture
def full_ledger(ledger: World, users: tuple[User, User]) -> World:
    ann, ben = users
    requests = list(PaymentRequest.objects.order_by("id")[:3])
    ops_action(
        requests[0], ann, NOW - timedelta(minutes=3), state="done", decided_by=ben, decided_at=NOW, decision_note="ok"
    )
    ops_action(requests[1], ben, NOW - timedelta(minutes=2), state="rejected", decided_by=ann, decided_at=NOW)
    ops_action(requests[2], ann, NOW - timedelta(minutes=1))
    # Outside the range: not exported.
    Event.objects.create(
        payment_request=requests[0], at=datetime(2026, 10, 31, 23, 59, tzinfo=UTC), status="open", actor="x"
    )
    return ledger
