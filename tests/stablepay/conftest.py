"""Fixtures for the stablepay tests that build ledgers straight through the ORM."""

from __future__ import annotations

import pytest

from tests.stablepay.ledgers import World, make_world


@pytest.fixture
def world(db: None) -> World:
    """Three chains, five tokens, three merchants; no requests yet (see ledgers.random_ledger)."""
    return make_world()
