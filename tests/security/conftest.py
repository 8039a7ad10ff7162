"""Fixtures of the hostile-input and authorization suites alone: the static files as `collectstatic` writes
them for production, once per session, for the tests that serve pages from gunicorn with the production
settings. (The ops users, the exceptions made on anvil and the storefront they attack are shared fixtures,
in tests/conftest.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A STATIC_ROOT filled by the README's `collectstatic --noinput`: with DEBUG=false, pages name the hashed
    files listed in its staticfiles.json, and a server without it answers 500 on every page."""
    from tests.support.production import collectstatic

    root = tmp_path_factory.mktemp("staticfiles")
    collectstatic(root)
    return root
