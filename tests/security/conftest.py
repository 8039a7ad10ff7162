"""Fixtures for the hostile-input and authorization suites: the ops fixtures (users, exceptions made on
anvil) and a second merchant's objects to attack."""

from __future__ import annotations

from tests.ops.conftest import (  # noqa: F401  (fixtures)
    exceptions,
    four_eyes_at_5_hkd,
    merchant_member,
    ops_no_approve,
    ops_user,
    ops_user2,
    plain_user,
)
