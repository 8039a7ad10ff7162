"""Every stablepay setting in one place: its name, its default, where it is read from, and its check.

Read a setting through the accessor, never through `django.conf.settings`:

    from stablepay.conf import app_settings
    app_settings.WEBHOOK_SECRET_GRACE_HOURS  # 24.0 unless configured

Where a value comes from, first match wins:

1. the host's `settings.STABLEPAY["<NAME>"]`: what a host's settings.py chooses to set (and what tests
   override with `settings.STABLEPAY = {**settings.STABLEPAY, ...}` or `override_settings`);
2. for the settings that had one before this module, the old top-level setting, still honoured:
   `STABLEPAY_RATE_LIMITS["PER_MERCHANT" | "PER_IP" | "PER_API_IP" | "TRUSTED_PROXIES" | "REDIS_URL" |
   "REDIS_TIMEOUT_SECONDS" | "REDIS_RETRY_SECONDS" | "KEY_PREFIX"]`, `STABLEPAY_LOGIN_FAILURES_PER_IP`,
   `STABLEPAY_SECOND_FACTOR_OPEN_PATHS`;
3. the environment variable the table names (`STABLEPAY_<NAME>` for most; the exceptions keep the names
   README and CONTRACT.md give them: STABLEPAY_DEMO, STABLEPAY_SCAN_INTERVAL, STABLEPAY_RPC_TIMEOUT,
   STABLEPAY_FOUR_EYES_ABOVE_HKD, STABLEPAY_SECRETS_KEY, STABLEPAY_SCREENING_HTTP_TIMEOUT). The environment
   is read here, by the app, so a deployment configures stablepay with environment variables alone and a
   host's settings.py maps none of them (it sets only what it overrides);
4. the default declared below.

Values are looked up on every access, with no cache, so `override_settings`, the pytest-django `settings`
fixture and a monkeypatched environment take effect at once (a lookup is a dict access and a small parse).

Checks, each setting's in one place (`SETTINGS` below):
- a setting that has a system check id keeps it and its message: stablepay.E101 (SECRETS_KEYS),
  E103 (AUDIT_SIGNING_KEY), E111 (SCREENING_BACKEND), E112 (SCREENING_FAIL_OPEN_BELOW_HKD), E113
  (SCREENING_HTTP_URL, SCREENING_HTTP_TIMEOUT_SECONDS), E114 (SCREENING_RETRY_SECONDS), E121
  (ACCEPT_FOUR_EYES_ABOVE_HKD), E122 (FOUR_EYES_REFUND_ABOVE_HKD); `settings_check` is registered with
  Django's check framework. stablepay.E102 (`check --deploy`: SECRET_KEY not in the environment) is here too.
- every other setting is parsed when the app starts (`validate`, called from `AppConfig.ready`): a value of
  the wrong shape raises ImproperlyConfigured naming where it came from (`STABLEPAY_RATE_LIMIT_PER_IP='x'`),
  so it stops every process, the web server, the watcher and Celery included, before it serves anything.

Moved dotted paths: a path a deployment configured before the modules moved into sub-packages is mapped to
its new place when read (`MOVED_MODULES`: `stablepay.screening.ListBackend` is
`stablepay.compliance.screening.ListBackend`).

This module imports nothing else from stablepay (every layer may import it); the few checks that need a
class or parser of the code using the setting name it by dotted path.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar, overload

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

T = TypeVar("T")

TRUE_STRINGS = ("true", "on", "ok", "y", "yes", "1")  # as django-environ reads a boolean
# Modules that moved; a configured dotted path under the old name is read as the new one.
MOVED_MODULES = {"stablepay.screening": "stablepay.compliance.screening"}
DEFAULT_SCREENING_BACKEND = "stablepay.compliance.screening.ListBackend"
# What the checks need from the code that uses the settings, named by path: this module imports nothing else
# from stablepay, so every layer may import it.
SCREENING_BACKEND_BASE = "stablepay.compliance.screening.ScreeningBackend"
HTTP_SCREENING_BACKEND = "stablepay.compliance.screening.HttpBackend"
AUDIT_KEY_PARSER = "stablepay.compliance.audit_bundle.parse_signing_key"
ALLOWED_HOSTS_PARSER = "stablepay.webhooks.target.parse_allowed_hosts"

_MISSING = object()
_RATE = re.compile(r"\s*([0-9]+)\s*/\s*([0-9]+)\s*")


# --- Value shapes ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """At most `count` hits per `seconds` (a rate limit; see stablepay/ratelimit.py)."""

    count: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds}"


def parse_rate(value: str, *, variable: str) -> Rate | None:
    """'N/S' (N hits per S seconds, both positive integers) or 'off' (None); anything else raises
    ImproperlyConfigured naming `variable`, so a bad setting stops the server at start-up."""
    if value.strip().lower() == "off":
        return None
    match = _RATE.fullmatch(value)
    if match is None or int(match[1]) < 1 or int(match[2]) < 1:
        raise ImproperlyConfigured(
            f"{variable}={value!r}: expected 'N/S' (N payment-request creations per S seconds, "
            f"both positive integers, e.g. '600/60') or 'off'"
        )
    return Rate(int(match[1]), int(match[2]))


def parse_trusted_proxies(value: str, *, variable: str) -> int:
    """How many proxies append to X-Forwarded-For in front of the app (0: ignore the header)."""
    if not value.strip().isdigit():
        raise ImproperlyConfigured(f"{variable}={value!r}: expected a whole number of trusted proxies (0 or more)")
    return int(value)


def moved_path(path: str) -> str:
    """A dotted path under a module's old name, written with its new one (other paths unchanged)."""
    for old, new in MOVED_MODULES.items():
        if path.startswith(old + "."):
            return new + path[len(old) :]
    return path


def _bool(value: Any, source: str) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in TRUE_STRINGS
    return bool(value)


def _number(value: Any, source: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"{source}={value!r}: expected a number") from None


def _whole(value: Any, source: str) -> int:
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise ImproperlyConfigured(f"{source}={value!r}: expected a whole number") from None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ImproperlyConfigured(f"{source}={value!r}: expected a whole number")


def _text(value: Any, source: str) -> str:
    return "" if value is None else str(value)


def _as_given(value: Any, source: str) -> Any:
    """Left as configured: the setting's system check judges it, and its readers read it leniently."""
    return value


def _items(value: Any, source: str) -> tuple[str, ...]:
    """A list, or a comma-separated string (the environment's form); blanks dropped."""
    items = value.split(",") if isinstance(value, str) else list(value or ())
    return tuple(str(item).strip() for item in items if str(item).strip())


def _json_object(value: Any, source: str) -> dict[Any, Any]:
    parsed = value
    if isinstance(value, str):
        try:
            parsed = json.loads(value) if value.strip() else {}
        except ValueError:
            parsed = None
    if not isinstance(parsed, Mapping):
        raise ImproperlyConfigured(f"{source}={value!r}: expected a JSON object")
    return dict(parsed)


def _rate(value: Any, source: str) -> Rate | None:
    if value is None or isinstance(value, Rate):  # already parsed (a host or a test may give a Rate)
        return value
    return parse_rate(str(value), variable=source)


def _proxies(value: Any, source: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return parse_trusted_proxies(str(value), variable=source)


def _allowed_hosts(value: Any, source: str) -> Any:
    """The webhook allow-list, parsed (a bad entry raises ImproperlyConfigured naming the variable)."""
    return import_string(ALLOWED_HOSTS_PARSER)(value)


def _screening_backend(value: Any, source: str) -> Any:
    return moved_path(value) if isinstance(value, str) else value  # not a string: stablepay.E111 says so


# --- The checks with ids (messages as they were before this module) ---------------------------------------


def _amount(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def _positive_seconds(value: Any) -> bool:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(seconds) and seconds > 0


def _four_eyes_check(variable: str, check_id: str) -> Callable[[Any], list[CheckMessage]]:
    def check(value: Any) -> list[CheckMessage]:
        if _amount(value) is not None:
            return []
        return [
            Error(
                f"{variable} {value!r} is not an amount in HKD >= 0",
                hint='A decimal string such as "1000.00".',
                id=check_id,
            )
        ]

    return check


def _secrets_keys_check(value: Any) -> list[CheckMessage]:
    from cryptography.fernet import Fernet

    errors: list[CheckMessage] = []
    for i, key in enumerate(_items(value, "")):
        try:
            Fernet(key)
        except ValueError:
            errors.append(
                Error(
                    f"STABLEPAY_SECRETS_KEY: key {i + 1} is not a Fernet key.",
                    hint="Each comma-separated key is 32 url-safe base64-encoded bytes: "
                    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"',
                    id="stablepay.E101",
                )
            )
    return errors


def _audit_signing_key_check(value: Any) -> list[CheckMessage]:
    text = _text(value, "").strip()
    if not text:
        return []
    try:
        import_string(AUDIT_KEY_PARSER)(text)
    except ValueError as exc:  # the parser's BundleError
        return [
            Error(
                f"STABLEPAY_AUDIT_SIGNING_KEY: {exc}.",
                hint="Give a PEM Ed25519 private key or the base64 of a raw 32-byte seed: "
                'python -c "import base64,os; print(base64.b64encode(os.urandom(32)).decode())"',
                id="stablepay.E103",
            )
        ]
    return []


def _screening_backend_class(name: Any) -> tuple[Any, str | None]:
    """(the class named, or None; why it cannot be used, or None)."""
    base = import_string(SCREENING_BACKEND_BASE)
    try:
        backend = import_string(name)
    except Exception as exc:  # ImportError, or a module that fails as it is imported, or a name that is no path
        return None, f"STABLEPAY_SCREENING_BACKEND {name!r} cannot be imported: {exc}"
    if not (isinstance(backend, type) and issubclass(backend, base)):
        return None, f"STABLEPAY_SCREENING_BACKEND {name!r} is not a ScreeningBackend subclass"
    return backend, None


def _screening_backend_check(value: Any) -> list[CheckMessage]:
    _, problem = _screening_backend_class(value)
    return [Error(problem, id="stablepay.E111")] if problem else []


def _fail_open_check(value: Any) -> list[CheckMessage]:
    limit = str(value)
    try:
        valid = Decimal(limit).is_finite() and Decimal(limit) >= 0
    except InvalidOperation:
        valid = False
    if valid:
        return []
    return [Error(f"STABLEPAY_SCREENING_FAIL_OPEN_BELOW_HKD {limit!r} is not an amount >= 0", id="stablepay.E112")]


def _screening_url_check(value: Any) -> list[CheckMessage]:
    backend, _ = _screening_backend_class(app_settings.SCREENING_BACKEND)
    if isinstance(backend, type) and issubclass(backend, import_string(HTTP_SCREENING_BACKEND)) and not value:
        return [Error("the HTTP screening backend needs STABLEPAY_SCREENING_HTTP_URL", id="stablepay.E113")]
    return []


def _positive_seconds_check(variable: str, check_id: str) -> Callable[[Any], list[CheckMessage]]:
    def check(value: Any) -> list[CheckMessage]:
        if _positive_seconds(value):
            return []
        return [Error(f"{variable} {value!r} must be a number of seconds more than 0", id=check_id)]

    return check


# --- The settings ---------------------------------------------------------------------------------------


class Setting(Generic[T]):
    """One setting: its default, how a configured value is read (`parse`), its environment variable, the
    old top-level setting that may still hold it, and its system check (None: `parse` at start-up is it)."""

    def __init__(
        self,
        default: Any,
        parse: Callable[[Any, str], T],
        *,
        env: str | None = "",
        legacy: tuple[str, str | None] | None = None,
        check: Callable[[Any], list[CheckMessage]] | None = None,
    ) -> None:
        self.default = default
        self.parse = parse
        self.env = env  # "": STABLEPAY_<NAME>; None: no environment variable
        self.legacy = legacy  # (top-level setting, key in it, or None for the setting itself)
        self.check = check
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        if self.env == "":
            self.env = f"STABLEPAY_{name}"

    @overload
    def __get__(self, instance: None, owner: type) -> Setting[T]: ...
    @overload
    def __get__(self, instance: object, owner: type) -> T: ...
    def __get__(self, instance: object | None, owner: type) -> Setting[T] | T:
        if instance is None:
            return self
        value, source = self.raw()
        return self.parse(value, source)

    def raw(self) -> tuple[Any, str]:
        """(the configured value as given, where it came from), following the order in the module docstring."""
        options = getattr(settings, "STABLEPAY", None) or {}
        if not isinstance(options, Mapping):
            raise ImproperlyConfigured(f"settings.STABLEPAY must be a dict, not {type(options).__name__}")
        if self.name in options:
            return options[self.name], f'STABLEPAY["{self.name}"]'
        if self.legacy is not None:
            top, key = self.legacy
            found = getattr(settings, top, _MISSING)
            if key is not None and isinstance(found, Mapping):
                found = found.get(key, _MISSING)
                top = f'{top}["{key}"]'
            elif key is not None:
                found = _MISSING
            if found is not _MISSING:
                return found, top
        if self.env and self.env in os.environ:
            return os.environ[self.env], self.env
        return self.default, f'STABLEPAY["{self.name}"]'


_LIMITS = "STABLEPAY_RATE_LIMITS"


class AppSettings:
    """stablepay's settings; read them as attributes of `app_settings`."""

    # Demo mode: a "simulate wallet payment" button that pays from a well-known anvil dev account, and the
    # published demo second factor.
    DEMO_MODE = Setting(False, _bool, env="STABLEPAY_DEMO")
    # Seconds between the plain watcher's fallback passes (`stablepay_scan`).
    SCAN_INTERVAL_SECONDS = Setting(1.0, _number, env="STABLEPAY_SCAN_INTERVAL")
    # Seconds a JSON-RPC call may take.
    RPC_TIMEOUT_SECONDS = Setting(10.0, _number, env="STABLEPAY_RPC_TIMEOUT")
    # Four-eyes: a refund of more than this (HKD-equivalent) needs a second ops user's approval.
    FOUR_EYES_REFUND_ABOVE_HKD = Setting(
        "1000.00",
        _text,
        env="STABLEPAY_FOUR_EYES_ABOVE_HKD",
        check=_four_eyes_check("STABLEPAY_FOUR_EYES_ABOVE_HKD", "stablepay.E122"),
    )
    # Four-eyes: accepting an underpaid or wrong-token payment short by this much (HKD) or more needs a
    # second ops user.
    ACCEPT_FOUR_EYES_ABOVE_HKD = Setting(
        "1000.00", _as_given, check=_four_eyes_check("STABLEPAY_ACCEPT_FOUR_EYES_ABOVE_HKD", "stablepay.E121")
    )
    # Tokens, FX rates and the API key map are cached per process for this long (0: off); registry/refdata.py.
    REFERENCE_CACHE_SECONDS = Setting(5.0, _number)
    # Each token's contract checks run at most this often; registry/token_health.py.
    TOKEN_CHECK_SECONDS = Setting(30.0, _number)
    # Used for checkout_url where no HTTP request is at hand (webhooks, the watcher).
    BASE_URL = Setting("http://127.0.0.1:8000", _text)
    # Fernet keys for webhook secrets at rest, newest first (empty: derived from SECRET_KEY); secret_box.py.
    SECRETS_KEYS = Setting((), _items, env="STABLEPAY_SECRETS_KEY", check=_secrets_keys_check)
    # After a webhook secret is rotated, deliveries are also signed with the old one for this long.
    WEBHOOK_SECRET_GRACE_HOURS = Setting(24.0, _number)
    # Host names, IP addresses or CIDR ranges webhook URLs may reach although they are not public (CONTRACT
    # §2): a comma-separated string or a list; read as an AllowList (stablepay/webhooks/target.py).
    WEBHOOK_ALLOWED_HOSTS = Setting("", _allowed_hosts)
    # Public RPC URLs per chain id that the payment page may ask a wallet to add, as JSON:
    # {"8453": ["https://mainnet.base.org"]}; checkout/wallet.py.
    WALLET_RPC_URLS = Setting({}, _json_object)
    # A key that only pays gas for `stablepay_sweep` (treasury/sweep.py): the funds can reach no address but the
    # settlement address fixed in each forwarder. Empty: the command writes unsigned transactions only.
    SWEEPER_KEY = Setting("", _text)
    # The Ed25519 key that signs audit bundles (PEM or base64 seed; empty: derived from SECRET_KEY).
    AUDIT_SIGNING_KEY = Setting("", _text, check=_audit_signing_key_check)
    # Ledger rows are kept this many years; ledger/retention.py refuses anything but a whole number >= 1.
    LEDGER_RETENTION_YEARS = Setting(7, _whole)
    # Payer screening (compliance/screening.py): the backend class each new transfer's `from` goes to.
    SCREENING_BACKEND = Setting(DEFAULT_SCREENING_BACKEND, _screening_backend, check=_screening_backend_check)
    # With the backend down, a payment worth less than this (HKD-equivalent) passes, one worth more is held.
    SCREENING_FAIL_OPEN_BELOW_HKD = Setting("8000.00", _as_given, check=_fail_open_check)
    SCREENING_HTTP_URL = Setting("", _text, check=_screening_url_check)
    SCREENING_HTTP_TIMEOUT_SECONDS = Setting(
        3.0,
        _as_given,
        env="STABLEPAY_SCREENING_HTTP_TIMEOUT",
        check=_positive_seconds_check("STABLEPAY_SCREENING_HTTP_TIMEOUT", "stablepay.E113"),
    )
    SCREENING_RETRY_SECONDS = Setting(
        60.0, _as_given, check=_positive_seconds_check("STABLEPAY_SCREENING_RETRY_SECONDS", "stablepay.E114")
    )
    SCREENING_HTTP_TOKEN = Setting("", _text)
    # Rate limits on payment-request creation (ratelimit.py): "N/S" or "off". Defaults: 6,000 a minute per
    # merchant key, 12,000 a minute per API caller address, 60 checkouts a minute per shopper address.
    RATE_LIMIT_PER_MERCHANT = Setting("6000/60", _rate, legacy=(_LIMITS, "PER_MERCHANT"))
    RATE_LIMIT_PER_IP = Setting("60/60", _rate, legacy=(_LIMITS, "PER_IP"))
    RATE_LIMIT_PER_API_IP = Setting("12000/60", _rate, legacy=(_LIMITS, "PER_API_IP"))
    # How many proxies in front of the app append to X-Forwarded-For (0: the header is ignored).
    TRUSTED_PROXIES = Setting(0, _proxies, legacy=(_LIMITS, "TRUSTED_PROXIES"))
    # Where the rate-limit counters live: a Redis URL, or "" for the database.
    RATE_LIMIT_REDIS_URL = Setting("", _text, legacy=(_LIMITS, "REDIS_URL"))
    # A hung Redis costs at most this, then REDIS_RETRY_SECONDS of failing open.
    RATE_LIMIT_REDIS_TIMEOUT_SECONDS = Setting(0.25, _number, env=None, legacy=(_LIMITS, "REDIS_TIMEOUT_SECONDS"))
    RATE_LIMIT_REDIS_RETRY_SECONDS = Setting(5.0, _number, env=None, legacy=(_LIMITS, "REDIS_RETRY_SECONDS"))
    RATE_LIMIT_KEY_PREFIX = Setting("stablepay:rl:", _text, env=None, legacy=(_LIMITS, "KEY_PREFIX"))
    # Failed logins from one client address, across user names, that lock the address (accounts/lockout.py).
    LOGIN_FAILURES_PER_IP = Setting(50, _whole, legacy=("STABLEPAY_LOGIN_FAILURES_PER_IP", None))
    # The host's public path prefixes, open to a session that has not passed its second factor yet
    # (accounts/second_factor.py adds the sign-in, second-factor, static and language pages itself).
    SECOND_FACTOR_OPEN_PATHS = Setting((), _items, env=None, legacy=("STABLEPAY_SECOND_FACTOR_OPEN_PATHS", None))


app_settings = AppSettings()
SETTINGS: tuple[Setting[Any], ...] = tuple(v for v in vars(AppSettings).values() if isinstance(v, Setting))


def validate() -> None:
    """Parse every setting that has no system check of its own; the first bad one raises ImproperlyConfigured
    naming where it came from. Called when the app starts (AppConfig.ready)."""
    for setting in SETTINGS:
        if setting.check is None:
            getattr(app_settings, setting.name)


@register()
def settings_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The system checks of the settings that have one (ids stablepay.E101, E103, E111-E114, E121, E122)."""
    errors: list[CheckMessage] = []
    for setting in SETTINGS:
        if setting.check is not None:
            errors += setting.check(setting.parse(*setting.raw()))
    return errors


@register(Tags.security, deploy=True)
def secret_key_from_environment_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """stablepay.E102: DEBUG is off and SECRET_KEY is not set in the environment. The settings then fall back
    to a per-checkout file, which is for development only: every web, watcher and worker process must share
    one SECRET_KEY (sessions and, unless STABLEPAY_SECRETS_KEY is set, the key of webhook secrets at rest)."""
    if settings.DEBUG or os.environ.get("SECRET_KEY", "").strip():
        return []
    return [
        Error(
            "DEBUG is off but SECRET_KEY is not set in the environment.",
            hint="Set SECRET_KEY (the same value for every web, watcher and worker process); the .secret_key "
            "file it falls back to is for development only.",
            id="stablepay.E102",
        )
    ]
