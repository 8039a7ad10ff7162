"""Reference data read by every API call or checkout, cached per process: the merchant behind an API key,
the active tokens with their chain, the FX rates.

It is written rarely, by `stablepay_setup` and the admin. A process sees its own writes at once (saving
or deleting a Merchant, Chain, Token or FxRate clears its copy); other processes see a change within
STABLEPAY["REFERENCE_CACHE_SECONDS"] (default 5; 0 turns the cache off): a revoked API key keeps
working for at most that long. Only known keys are cached, so unknown ones cannot fill the memory.
Creating a payment request then costs no query for the merchant, the token or the rates: on a 2-core
machine that is ~2 ms of ORM work saved per request (benchmark P4). The cached objects are shared
by every request of the process: read them, never modify or save them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from django.db.models.signals import post_delete, post_save

from stablepay.conf import app_settings
from stablepay.models import Chain, FxRate, Merchant, Token
from stablepay.money import DEFAULT_FX, rates_as_json

T = TypeVar("T")

_entries: dict[str, tuple[float, Any]] = {}


def _ttl() -> float:
    return app_settings.REFERENCE_CACHE_SECONDS


def _cached(key: str, load: Callable[[], T], *, keep: Callable[[T], bool] = lambda _: True) -> T:
    ttl = _ttl()
    if ttl <= 0:
        return load()
    now = time.monotonic()
    hit = _entries.get(key)
    if hit is not None and now - hit[0] < ttl:
        value: T = hit[1]
        return value
    value = load()
    if keep(value):
        _entries[key] = (now, value)
    return value


def clear(**_: Any) -> None:
    _entries.clear()


def load_fx_rates() -> dict[tuple[str, str], Decimal]:
    """The built-in defaults overridden by the FX table (a stored pair replaces its inverse too)."""
    rates = dict(DEFAULT_FX)
    for base, quote_ccy, rate in FxRate.objects.values_list("base", "quote", "rate"):
        rates.pop((quote_ccy, base), None)
        rates[(base, quote_ccy)] = rate
    return rates


def fx_rates() -> dict[tuple[str, str], Decimal]:
    """The FX table for quoting; callers must not modify it."""
    return _cached("fx", load_fx_rates)


def fx_rates_with_json() -> tuple[dict[tuple[str, str], Decimal], dict[str, str]]:
    """The FX table for quoting and the same table as a payment request stores it (its `fx_rates`), from
    one cached load, so the stored table is always the one the quote used; callers must not modify them."""
    return _cached("fx+json", lambda: _with_json(load_fx_rates()))


def _with_json(rates: dict[tuple[str, str], Decimal]) -> tuple[dict[tuple[str, str], Decimal], dict[str, str]]:
    return rates, rates_as_json(rates)


def _load_active_tokens() -> dict[tuple[int, str], Token]:
    return {
        (token.chain.chain_id, token.symbol): token
        for token in Token.objects.filter(active=True).select_related("chain").order_by()
    }


def active_token(*, chain_id: int, symbol: str) -> Token | None:
    """The active token `symbol` on chain `chain_id` (with its chain loaded); shared: read it, never save it."""
    return _cached("tokens", _load_active_tokens).get((chain_id, symbol))


def merchant_by_api_key_hash(key_hash: str) -> Merchant | None:
    """The merchant whose API key hashes to `key_hash`; shared: read it, never save it."""
    return _cached(
        f"merchant:{key_hash}",
        lambda: Merchant.objects.filter(api_key_hash=key_hash).order_by().first(),
        keep=lambda merchant: merchant is not None,
    )


for _model in (Merchant, Chain, Token, FxRate):
    post_save.connect(clear, sender=_model, dispatch_uid=f"stablepay.registry.refdata.{_model.__name__}.save")
    post_delete.connect(clear, sender=_model, dispatch_uid=f"stablepay.registry.refdata.{_model.__name__}.delete")
