"""Fixtures for the hostile-input and authorization suites: the ops fixtures (users, exceptions made on
anvil) and a second merchant's objects to attack; and the static files as `collectstatic` writes them for
production, once per session, for the tests that serve pages from gunicorn with the production settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ops.conftest import (  # noqa: F401  (fixtures)
    exceptions,
    four_eyes_at_5_hkd,
    merchant_member,
    ops_no_approve,
    ops_user,
    ops_user2,
    plain_user,
)


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A STATIC_ROOT filled by the README's `collectstatic --noinput`: with DEBUG=false, pages name the hashed
    files listed in its staticfiles.json, and a server without it answers 500 on every page."""
    from tests.support.production import collectstatic

    root = tmp_path_factory.mktemp("staticfiles")
    collectstatic(root)
    return root
