"""The system checks of the screening settings (stablepay/conf.py): a typo stops start-up
(stablepay.E111 backend, E112 fail-open amount, E113 HTTP backend, E114 retry interval), in-process
and through `manage.py check` with the environment variables a deployment sets."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from django.core.checks import Error
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from stablepay.conf import settings_check
from tests.support.screening import screening_settings
from tests.support.services import REPO_ROOT


def ids(settings: Any, **options: Any) -> list[str]:
    screening_settings(settings, **options)
    errors = settings_check()
    assert all(isinstance(e, Error) for e in errors)
    return [e.id for e in errors]  # type: ignore[misc]


def test_the_defaults_and_good_settings_pass(settings: Any) -> None:
    assert ids(settings) == []
    assert ids(settings, backend="stablepay.compliance.screening.ListBackend", fail_open_below_hkd="0") == []
    assert ids(settings, backend="tests.compliance.backends.ExplodingBackend", fail_open_below_hkd="8000.00") == []
    good_http = {"backend": "stablepay.compliance.screening.HttpBackend", "http_url": "https://screen.example/v1"}
    assert ids(settings, **good_http, http_timeout_seconds=0.5) == []


@pytest.mark.parametrize(
    "backend",
    [
        "stablepay.compliance.screening.NoSuchBackend",  # no such class
        "no_such_module.Backend",  # no such module
        "ListBackend",  # not a dotted path
        "tests.compliance.backends.NotABackend",  # a class, not a ScreeningBackend
        "stablepay.compliance.screening.Verdict",  # another class of the module
        "stablepay.compliance.screening.backend",  # a function
        "stablepay.compliance.screening.DEFAULT_BACKEND",  # a string
        "tests.compliance.broken_module.Backend",  # a module that fails as it is imported
        None,  # not even a string
    ],
)
def test_a_backend_that_is_not_a_screening_backend_is_e111(settings: Any, backend: str | None) -> None:
    assert ids(settings, backend=backend) == ["stablepay.E111"]


@pytest.mark.parametrize("limit", ["abc", "-0.01", "NaN", "Infinity", "-Infinity", ""])
def test_a_fail_open_limit_that_is_not_an_amount_is_e112(settings: Any, limit: str) -> None:
    assert ids(settings, fail_open_below_hkd=limit) == ["stablepay.E112"]


def test_the_http_backend_needs_a_url_and_a_positive_timeout(settings: Any) -> None:
    http = "stablepay.compliance.screening.HttpBackend"
    assert ids(settings, backend=http, http_url="") == ["stablepay.E113"]
    assert ids(settings, backend=http, http_url="http://x", http_timeout_seconds=0) == ["stablepay.E113"]
    assert ids(settings, backend=http, http_url="http://x", http_timeout_seconds=-1.0) == ["stablepay.E113"]
    assert ids(settings, backend=http, http_url="http://x", http_timeout_seconds="soon") == ["stablepay.E113"]
    assert ids(settings, backend=http, http_url="http://x", http_timeout_seconds="nan") == ["stablepay.E113"]
    assert ids(settings, backend=http, http_url="http://x", http_timeout_seconds=float("inf")) == ["stablepay.E113"]
    assert ids(settings, backend=http, http_url="http://x", http_timeout_seconds=None) == ["stablepay.E113"]
    # Several mistakes at once: each is named.
    assert ids(settings, backend=http, http_url="", fail_open_below_hkd="x", http_timeout_seconds=0) == [
        "stablepay.E112",
        "stablepay.E113",
        "stablepay.E113",
    ]


@pytest.mark.parametrize("retry", [0, -5, "soon", "nan", None])
def test_a_retry_interval_that_is_not_positive_seconds_is_e114(settings: Any, retry: Any) -> None:
    assert ids(settings, retry_seconds=retry) == ["stablepay.E114"]


def test_django_check_refuses_to_start_with_a_bad_backend(settings: Any) -> None:
    screening_settings(settings, backend="tests.compliance.backends.NotABackend")
    with pytest.raises(SystemCheckError, match=r"stablepay\.E111"):
        call_command("check")


def test_manage_py_check_reads_the_environment() -> None:
    def check(**env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", "check"],
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )

    http = "stablepay.compliance.screening.HttpBackend"
    bad = check(STABLEPAY_SCREENING_BACKEND=http, STABLEPAY_SCREENING_FAIL_OPEN_BELOW_HKD="lots")
    assert bad.returncode != 0
    assert "stablepay.E112" in bad.stderr and "stablepay.E113" in bad.stderr and "SCREENING_HTTP_URL" in bad.stderr
    good = check(
        STABLEPAY_SCREENING_BACKEND="stablepay.compliance.screening.HttpBackend",
        STABLEPAY_SCREENING_HTTP_URL="https://screen.example/v1",
        STABLEPAY_SCREENING_HTTP_TIMEOUT="2.5",
    )
    assert good.returncode == 0, good.stderr
