"""stablepay's settings (stablepay/conf.py): one declaration per setting, read from the host's STABLEPAY dict,
the old top-level names, the environment, or the default, in that order; re-read as tests change them; a bad
value stops start-up naming where it came from; old dotted paths still load; every variable README documents
is read somewhere; the host's settings.py imports nothing from stablepay."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from stablepay import conf
from stablepay.compliance import screening
from stablepay.conf import SETTINGS, Rate, app_settings, settings_check
from tests.support.services import REPO_ROOT


def _bare(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing configured: no STABLEPAY entries, no old top-level names, no environment variables."""
    settings.STABLEPAY = {}
    for name in ("STABLEPAY_RATE_LIMITS", "STABLEPAY_LOGIN_FAILURES_PER_IP", "STABLEPAY_SECOND_FACTOR_OPEN_PATHS"):
        if hasattr(settings, name):
            delattr(settings, name)
    for setting in SETTINGS:
        if setting.env:
            monkeypatch.delenv(setting.env, raising=False)


def test_each_setting_falls_back_to_its_declared_default(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _bare(settings, monkeypatch)
    for setting in SETTINGS:
        assert getattr(app_settings, setting.name) == setting.parse(setting.default, setting.name), setting.name
    assert app_settings.WEBHOOK_SECRET_GRACE_HOURS == 24.0
    assert Rate(6000, 60) == app_settings.RATE_LIMIT_PER_MERCHANT
    assert app_settings.SCREENING_BACKEND == "stablepay.compliance.screening.ListBackend"
    assert app_settings.SECRETS_KEYS == () and app_settings.DEMO_MODE is False
    assert settings_check() == []  # the defaults pass their own checks
    conf.validate()


def test_the_host_dict_wins_over_the_old_name_which_wins_over_the_environment(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _bare(settings, monkeypatch)
    monkeypatch.setenv("STABLEPAY_RATE_LIMIT_PER_IP", "3/60")
    assert Rate(3, 60) == app_settings.RATE_LIMIT_PER_IP
    settings.STABLEPAY_RATE_LIMITS = {"PER_IP": "2/60"}
    assert Rate(2, 60) == app_settings.RATE_LIMIT_PER_IP
    settings.STABLEPAY = {"RATE_LIMIT_PER_IP": "off"}
    assert app_settings.RATE_LIMIT_PER_IP is None

    monkeypatch.setenv("STABLEPAY_DEMO", "true")  # a name of its own, as README gives it
    assert app_settings.DEMO_MODE is True
    monkeypatch.setenv("STABLEPAY_SECRETS_KEY", " a, b ,")
    assert app_settings.SECRETS_KEYS == ("a", "b")
    monkeypatch.setenv("STABLEPAY_WALLET_RPC_URLS", '{"8453": ["https://mainnet.base.org"]}')
    assert app_settings.WALLET_RPC_URLS == {"8453": ["https://mainnet.base.org"]}
    settings.STABLEPAY_LOGIN_FAILURES_PER_IP = 7
    assert app_settings.LOGIN_FAILURES_PER_IP == 7


def test_override_settings_is_seen_at_once() -> None:
    before = app_settings.WEBHOOK_SECRET_GRACE_HOURS
    with override_settings(STABLEPAY={"WEBHOOK_SECRET_GRACE_HOURS": 2}):
        assert app_settings.WEBHOOK_SECRET_GRACE_HOURS == 2.0
    assert before == app_settings.WEBHOOK_SECRET_GRACE_HOURS


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("STABLEPAY_RATE_LIMIT_PER_API_IP", "lots", "STABLEPAY_RATE_LIMIT_PER_API_IP='lots'"),
        ("STABLEPAY_TRUSTED_PROXIES", "-1", "STABLEPAY_TRUSTED_PROXIES='-1'"),
        ("STABLEPAY_WEBHOOK_SECRET_GRACE_HOURS", "a day", "STABLEPAY_WEBHOOK_SECRET_GRACE_HOURS='a day'"),
        ("STABLEPAY_LEDGER_RETENTION_YEARS", "7.5", "STABLEPAY_LEDGER_RETENTION_YEARS='7.5'"),
        ("STABLEPAY_WALLET_RPC_URLS", "[1]", "STABLEPAY_WALLET_RPC_URLS='[1]'"),
    ],
)
def test_a_bad_value_stops_start_up_naming_its_source(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        conf.validate()


def test_a_bad_value_in_the_host_dict_is_named_as_such(settings: Any) -> None:
    settings.STABLEPAY = {**settings.STABLEPAY, "SCAN_INTERVAL_SECONDS": "soon"}
    with pytest.raises(ImproperlyConfigured, match=re.escape("STABLEPAY[\"SCAN_INTERVAL_SECONDS\"]='soon'")):
        conf.validate()


@pytest.mark.parametrize(
    ("configured", "loaded"),
    [
        ("stablepay.screening.ListBackend", screening.ListBackend),
        ("stablepay.screening.HttpBackend", screening.HttpBackend),
        ("stablepay.compliance.screening.ListBackend", screening.ListBackend),
    ],
)
def test_a_screening_backend_path_from_before_the_move_still_loads(
    settings: Any, configured: str, loaded: type[screening.ScreeningBackend]
) -> None:
    settings.STABLEPAY = {
        **settings.STABLEPAY,
        "SCREENING_BACKEND": configured,
        "SCREENING_HTTP_URL": "https://screen.example/v1",
    }
    assert type(screening.backend()) is loaded
    assert settings_check() == []
    settings.STABLEPAY = {**settings.STABLEPAY, "SCREENING_HTTP_URL": ""}  # the old HttpBackend path is still one
    assert [e.id for e in settings_check()] == (["stablepay.E113"] if loaded is screening.HttpBackend else [])


def test_the_old_screening_path_loads_from_the_environment_in_a_real_process() -> None:
    code = "from stablepay.compliance import screening; print(type(screening.backend()).__name__)"
    env = {"STABLEPAY_SCREENING_BACKEND": "stablepay.screening.ListBackend"}
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "ListBackend"


def test_every_stablepay_variable_the_readme_documents_is_read() -> None:
    """Each STABLEPAY_* environment variable README names is read by stablepay/conf.py or the host's settings."""
    legacy_settings = {s.legacy[0] for s in SETTINGS if s.legacy}  # settings' names, not variables
    documented = set(re.findall(r"`(STABLEPAY_[A-Z_]+)`", (REPO_ROOT / "README.md").read_text())) - legacy_settings
    read_by_stablepay = {s.env for s in SETTINGS if s.env}
    host = (REPO_ROOT / "shop" / "settings.py").read_text()
    read_by_host = set(re.findall(r'env\.[a-z]+\("(STABLEPAY_[A-Z_]+)"', host))
    assert documented, "README documents no variables?"
    assert documented <= read_by_stablepay | read_by_host, documented - read_by_stablepay - read_by_host


def test_the_host_settings_import_nothing_from_stablepay() -> None:
    tree = ast.parse((REPO_ROOT / "shop" / "settings.py").read_text())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert not [m for m in imported if m and (m == "stablepay" or m.startswith("stablepay."))], imported
