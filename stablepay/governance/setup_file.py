"""The `stablepay_setup` file (CONTRACT §2): validate all of it first, then upsert it in one transaction.

A bad file raises SetupError naming the bad field (e.g. `merchants[0].xpub`) before anything is written.

The deployer who runs it holds the shell and the database anyway, so it applies changes to where money
goes (a merchant's guarded fields, stablepay.governance.change_control.GUARDED_MERCHANT_FIELDS, and FX rates) at once,
without a second approver; each one it makes is recorded as an applied change by actor "setup", emailed to
the merchant's users and announced by webhook (`merchant.change_applied`), like an approved change. A
merchant it creates is recorded too (nobody to tell yet: no webhook). Running the same file again changes,
and records, nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone
from eth_utils.address import is_hex_address, to_checksum_address

from stablepay.chain import forwarder
from stablepay.chain.addresses import XpubError, parse_xpub
from stablepay.chain.factory import reader_for_urls
from stablepay.chain.reader import ChainError
from stablepay.governance import change_control
from stablepay.models import TOKEN_CURRENCIES, Chain, Currency, FxRate, LicenceStatus, Merchant, Token
from stablepay.registry.api_keys import hash_api_key
from stablepay.webhooks import delivery as webhooks
from stablepay.webhooks import target as webhook_target

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
URL = re.compile(r"^https?://[^\s]+$")
WS_URL = re.compile(r"^wss?://[^\s]+$")
MIN_API_KEY = 32
MAX_WEBHOOK_SECRET = 128  # CONTRACT §2 sets no minimum; the settings page asks for 16 or more


class SetupError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


@dataclass
class SetupSummary:
    chains: int = 0
    tokens: int = 0
    merchants: int = 0
    fx: int = 0
    warnings: tuple[str, ...] = ()


class _Section:
    """Typed reads from one JSON object, each failing with the field's full path."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise SetupError(path, "must be an object")
        self.data, self.path = data, path

    def _get(self, key: str, required: bool) -> Any:
        if key not in self.data or self.data[key] is None:
            if required:
                raise SetupError(f"{self.path}.{key}", "is required")
            return None
        return self.data[key]

    def integer(self, key: str, *, low: int, high: int, default: int | None = None) -> int:
        value = self._get(key, default is None)
        if value is None:
            assert default is not None
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise SetupError(f"{self.path}.{key}", f"must be an integer from {low} to {high}")
        return value

    def text(self, key: str, *, required: bool = True, pattern: re.Pattern[str] | None = None, hint: str = "") -> str:
        value = self._get(key, required)
        if value is None:
            return ""
        if not isinstance(value, str) or not value.strip() or (pattern is not None and not pattern.match(value)):
            raise SetupError(f"{self.path}.{key}", hint or "must be a non-empty string")
        return value

    def decimal(self, key: str, *, default: Decimal, low: Decimal, high: Decimal) -> Decimal:
        value = self._get(key, False)
        if value is None:
            return default
        try:
            number = Decimal(value) if isinstance(value, (str, Decimal, int)) and not isinstance(value, bool) else None
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite() or not low <= number < high:
            raise SetupError(f"{self.path}.{key}", f"must be a decimal string from {low} up to {high}")
        return number

    def choice(self, key: str, choices: list[str], default: str) -> str:
        value = self._get(key, False)
        if value is None:
            return default
        if value not in choices:
            raise SetupError(f"{self.path}.{key}", f"must be one of {', '.join(choices)}")
        return str(value)

    def choices(self, key: str, choices: list[str], default: list[str]) -> list[str]:
        """A list of distinct values from `choices`; absent: `default`."""
        value = self._get(key, False)
        if value is None:
            return list(default)
        if not isinstance(value, list) or any(v not in choices for v in value) or len(set(value)) != len(value):
            raise SetupError(f"{self.path}.{key}", f"must be a list of distinct values from {', '.join(choices)}")
        return list(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise SetupError(f"{self.path}.{key}", "must be true or false")
        return value


def _items(root: dict[str, Any], key: str) -> list[Any]:
    value = root.get(key, [])
    if not isinstance(value, list):
        raise SetupError(key, "must be a list")
    return value


def parse(text: str) -> dict[str, list[dict[str, Any]]]:
    """Validate the whole file; returns the rows to upsert. Raises SetupError."""
    try:
        root = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise SetupError("file", f"not valid JSON ({exc})") from exc
    if not isinstance(root, dict):
        raise SetupError("file", "must be a JSON object")
    unknown = set(root) - {"chains", "tokens", "merchants", "fx"}
    if unknown:
        raise SetupError(sorted(unknown)[0], "unknown section")

    chains = []
    for i, raw in enumerate(_items(root, "chains")):
        s = _Section(raw, f"chains[{i}]")
        urls = s._get("rpc_urls", True)
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and URL.match(u) for u in urls):
            raise SetupError(f"chains[{i}].rpc_urls", "must be a non-empty list of http(s) URLs")
        chains.append(
            {
                "chain_id": s.integer("chain_id", low=1, high=2**63 - 1),
                "name": s.text("name"),
                "rpc_urls": urls,
                "ws_url": s.text("ws_url", required=False, pattern=WS_URL, hint="must be a ws(s):// URL"),
                "confirmations": s.integer("confirmations", low=1, high=1000, default=12),
                "block_time_seconds": s.integer("block_time_seconds", low=1, high=3600, default=12),
                "explorer_tx_url": s.text(
                    "explorer_tx_url", required=False, pattern=URL, hint="must be an http(s) URL"
                ),
                "use_finalized_tag": s.flag("use_finalized_tag", False),
            }
        )
    chain_ids = {c["chain_id"] for c in chains} | set(Chain.objects.values_list("chain_id", flat=True))

    tokens = []
    for i, raw in enumerate(_items(root, "tokens")):
        s = _Section(raw, f"tokens[{i}]")
        chain_id = s.integer("chain_id", low=1, high=2**63 - 1)
        if chain_id not in chain_ids:
            raise SetupError(f"tokens[{i}].chain_id", f"chain {chain_id} is not registered")
        address = s.text("address")
        if not is_hex_address(address):
            raise SetupError(f"tokens[{i}].address", "must be a 0x-prefixed 20-byte hex address")
        currency = s.text("currency")
        if currency not in TOKEN_CURRENCIES:
            raise SetupError(f"tokens[{i}].currency", "must be one of HKD, USD, CNH")
        symbol = s.text(
            "symbol", pattern=re.compile(r"^[A-Za-z0-9.$_-]{1,16}$"), hint="must be 1 to 16 letters or digits"
        )
        taken = Token.objects.filter(chain__chain_id=chain_id, symbol=symbol).exclude(
            address=to_checksum_address(address)
        )
        if taken.exists():
            raise SetupError(
                f"tokens[{i}].symbol", f"{symbol} is already registered on chain {chain_id} at another address"
            )
        tokens.append(
            {
                "chain_id": chain_id,
                "address": to_checksum_address(address),
                "symbol": symbol,
                "decimals": s.integer("decimals", low=0, high=36),
                "currency": currency,
                # Optional: absent keys leave a registered token's values as they are (new ones: defaults).
                **_present(
                    raw,
                    {
                        "issuer": _short_text(s, "issuer", 128),
                        "licence_reference": _short_text(s, "licence_reference", 64),
                        "licence_status": s.choice("licence_status", LicenceStatus.values, LicenceStatus.UNLICENSED),
                    },
                ),
            }
        )

    merchants = []
    for i, raw in enumerate(_items(root, "merchants")):
        s = _Section(raw, f"merchants[{i}]")
        try:  # forwarder deposit addresses (CONTRACT §7): instead of, or beside, an xpub
            settlement = forwarder.settlement_addresses(raw.get("settlement_addresses"))
        except forwarder.ForwarderError as exc:
            raise SetupError(f"merchants[{i}].settlement_addresses", str(exc)) from exc
        xpub = s.text("xpub", required=not settlement)
        if xpub:
            try:
                parse_xpub(xpub)
            except XpubError as exc:
                raise SetupError(f"merchants[{i}].xpub", str(exc)) from exc
        api_key = s.text("api_key")
        if len(api_key) < MIN_API_KEY:
            raise SetupError(f"merchants[{i}].api_key", f"must be at least {MIN_API_KEY} characters")
        webhook_url = s.text("webhook_url", required=False, pattern=URL, hint="must be an http(s) URL")
        if webhook_url:
            try:
                webhook_target.check(webhook_url)  # the rule every delivery applies again (issue 16)
            except webhook_target.TargetRefused as exc:
                raise SetupError(f"merchants[{i}].webhook_url", exc.reason) from exc
        webhook_secret = s.text("webhook_secret", required=False)
        if webhook_url and not webhook_secret:
            raise SetupError(f"merchants[{i}].webhook_secret", "is required when webhook_url is set")
        if webhook_secret and len(webhook_secret) > MAX_WEBHOOK_SECRET:
            raise SetupError(f"merchants[{i}].webhook_secret", f"must be at most {MAX_WEBHOOK_SECRET} characters")
        merchants.append(
            {
                "slug": s.text("slug", pattern=SLUG, hint="must be lower-case letters, digits, - or _"),
                "name": s.text("name"),
                "xpub": xpub.strip(),
                "settlement_addresses": settlement,
                "api_key": api_key,
                "payment_tolerance_percent": s.decimal(
                    "payment_tolerance_percent", default=Decimal(0), low=Decimal(0), high=Decimal(100)
                ),
                "expiry_minutes": s.integer("expiry_minutes", low=1, high=1440, default=15),
                "webhook_url": webhook_url,
                "webhook_secret": webhook_secret,
                # Optional: absent keys keep the policy set on the settings page (new merchants: accept all).
                **_present(
                    raw,
                    {
                        "accepted_licence_statuses": s.choices(
                            "accepted_licence_statuses", LicenceStatus.values, LicenceStatus.values
                        ),
                        "accepted_token_currencies": s.choices(
                            "accepted_token_currencies", [str(c) for c in TOKEN_CURRENCIES], []
                        ),
                    },
                ),
            }
        )
    _unique(merchants, "slug", "merchants")
    _unique([m for m in merchants if m["xpub"]], "xpub", "merchants")
    _unique(chains, "chain_id", "chains")
    _unique([{**t, "key": (t["chain_id"], t["symbol"])} for t in tokens], "key", "tokens")
    _unique([{**t, "key": (t["chain_id"], t["address"])} for t in tokens], "key", "tokens")

    fx = []
    raw_fx = root.get("fx", {})
    if not isinstance(raw_fx, dict):
        raise SetupError("fx", 'must be an object of "A/B": "rate"')
    for pair, rate in raw_fx.items():
        base, _, quote = pair.partition("/")
        if base not in Currency.values or quote not in Currency.values or base == quote:
            raise SetupError(f"fx.{pair}", 'must name two different currencies of HKD, MOP, USD, CNH as "A/B"')
        value = _Section({"rate": rate}, f"fx.{pair}").decimal(
            "rate", default=Decimal(0), low=Decimal(0), high=Decimal(10**9)
        )
        if value <= 0:
            raise SetupError(f"fx.{pair}", "must be greater than 0")
        fx.append({"base": base, "quote": quote, "rate": value})
    return {"chains": chains, "tokens": tokens, "merchants": merchants, "fx": fx}


def _present(raw: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Of optional fields (validated), those the file gives (not null): the others are not written."""
    return {key: value for key, value in values.items() if raw.get(key) is not None}


def _short_text(s: _Section, key: str, limit: int) -> str:
    value = s.text(key, required=False)
    if len(value) > limit:
        raise SetupError(f"{s.path}.{key}", f"must be at most {limit} characters")
    return value


def _unique(rows: list[dict[str, Any]], key: str, section: str) -> None:
    seen: set[Any] = set()
    for i, row in enumerate(rows):
        if row[key] in seen:
            raise SetupError(f"{section}[{i}].{key}", "is listed twice")
        seen.add(row[key])


def _head(urls: list[str]) -> int | None:
    try:
        return reader_for_urls(urls, timeout=5).head_number()
    except ChainError:
        return None


def apply(rows: dict[str, list[dict[str, Any]]]) -> SetupSummary:
    """Upsert what `parse` returned, all or nothing."""
    warnings = []
    heads = {}
    now = timezone.now()
    for chain in rows["chains"]:
        existing = Chain.objects.filter(chain_id=chain["chain_id"]).values_list("start_block", flat=True).first()
        if existing is None:
            heads[chain["chain_id"]] = _head(chain["rpc_urls"])
            if heads[chain["chain_id"]] is None:
                warnings.append(f"chain {chain['chain_id']}: no RPC answered; scanning starts at the first head seen")
    with transaction.atomic():
        for chain in rows["chains"]:
            obj, _ = Chain.objects.update_or_create(chain_id=chain["chain_id"], defaults=chain)
            if obj.start_block is None and heads.get(obj.chain_id) is not None:
                obj.start_block = heads[obj.chain_id]
                obj.save(update_fields=["start_block"])
        for token in rows["tokens"]:
            token_chain = Chain.objects.get(chain_id=token["chain_id"])
            fields = {k: v for k, v in token.items() if k != "chain_id"}
            Token.objects.update_or_create(chain=token_chain, address=token["address"], defaults=fields)
        for merchant in rows["merchants"]:
            fields = {k: v for k, v in merchant.items() if k not in ("api_key", "webhook_secret")}
            fields["api_key_hash"] = hash_api_key(merchant["api_key"])
            fields["api_key_prefix"] = merchant["api_key"][:6]
            current = Merchant.objects.select_for_update().filter(slug=merchant["slug"]).first()
            if current is None:
                created = Merchant.objects.create(**fields, webhook_secret=merchant["webhook_secret"])
                change_control.change_record_applied(
                    merchant=created,
                    changes={
                        f: {"from": None, "to": change_control.as_json(getattr(created, f))}
                        for f in change_control.GUARDED_MERCHANT_FIELDS
                    },
                    note="merchant registered by stablepay_setup",
                    actor=change_control.SETUP_ACTOR,
                    now=now,
                    webhook=False,
                )
                continue
            if current.xpub != merchant["xpub"] and current.payment_requests.exists():
                raise SetupError("merchants.xpub", f"{merchant['slug']} already has payment requests on another xpub")
            guarded = change_control.merchant_changes(current, fields)
            for name, value in fields.items():
                setattr(current, name, value)
            # A changed secret is rotated with the grace period: the old one keeps signing for a while.
            changed = webhooks.secret_replace(current, merchant["webhook_secret"], now=now)
            current.save(update_fields=[*fields, *(webhooks.SECRET_FIELDS if changed else [])])
            change_control.change_record_applied(
                merchant=current, changes=guarded, note="stablepay_setup", actor=change_control.SETUP_ACTOR, now=now
            )
        for rate in rows["fx"]:
            pair = f"{rate['base']}/{rate['quote']}"
            before = change_control.fx_effective(pair)
            FxRate.objects.filter(base=rate["quote"], quote=rate["base"]).delete()
            FxRate.objects.update_or_create(base=rate["base"], quote=rate["quote"], defaults={"rate": rate["rate"]})
            change_control.change_record_applied(
                fx_pair=pair,
                changes={"rate": {"from": before, "to": change_control.as_json(rate["rate"])}},
                note="stablepay_setup",
                actor=change_control.SETUP_ACTOR,
                now=now,
            )
    return SetupSummary(
        len(rows["chains"]), len(rows["tokens"]), len(rows["merchants"]), len(rows["fx"]), tuple(warnings)
    )
