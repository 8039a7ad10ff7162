"""Contract checks on each token, recorded on the Token row so quotes read them without an RPC call.

Per chain, one batched JSON-RPC request asks, for every active token: `paused()`; `isBlacklisted(a)`
and `isBlocked(a)` for the deposit address each merchant hands out next (the one a quote would use;
never the open requests' addresses, so the batch does not grow with open requests: CONTRACT §3); and
the `Upgraded(address)` proxy events since the block the last check reached. A function the contract
lacks (a revert or empty answer) is skipped.

A failing token gets `halted_reason` and stops getting quotes (stablepay/registry/token_policy.py) and the
ops console shows it. Paused and blocked-address halts lift when a later check passes; an upgrade
stays until an operator clears the reason in the admin after reviewing the new implementation.
A node that does not answer leaves the recorded state as it was (the last verdict stands).

`check_due` runs from the watcher's housekeeping and the Celery beat tick; a token is checked at most
every STABLEPAY["TOKEN_CHECK_SECONDS"] (default 30).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone
from eth_utils.crypto import keccak

from stablepay.chain.addresses import derive_address
from stablepay.chain.factory import reader_for_chain
from stablepay.chain.reader import ChainError
from stablepay.chain.rpc import RpcChainReader
from stablepay.conf import app_settings
from stablepay.models import Chain, Merchant, Token

logger = logging.getLogger(__name__)

UPGRADED_TOPIC = "0x" + keccak(text="Upgraded(address)").hex()
UPGRADE_PREFIX = "Upgraded"
MAX_ADDRESSES = 50  # merchants whose next deposit address is asked about, per token and check


def _selector(signature: str) -> str:
    return "0x" + keccak(text=signature)[:4].hex()


PAUSED = _selector("paused()")
BLOCK_CHECKS = {"isBlacklisted": _selector("isBlacklisted(address)"), "isBlocked": _selector("isBlocked(address)")}


@dataclass(frozen=True)
class Verdict:
    token_pk: int
    reasons: tuple[str, ...]
    head: int


def _interval() -> float:
    return app_settings.TOKEN_CHECK_SECONDS


def _word(address: str) -> str:
    return address.lower().removeprefix("0x").rjust(64, "0")


def _true(item: dict[str, Any]) -> bool | None:
    """A bool answer of an eth_call, or None when the call failed or the contract has no such function."""
    result = item.get("result") if isinstance(item, dict) and "error" not in item else None
    if not isinstance(result, str) or len(result) < 66:
        return None
    return int(result[2:66], 16) != 0


def deposit_addresses(token: Token) -> list[str]:
    """Each merchant's next deposit address: the one the next quote hands out."""
    addresses = []
    for xpub, index in Merchant.objects.values_list("xpub", "next_address_index").order_by("pk")[:MAX_ADDRESSES]:
        try:
            addresses.append(derive_address(xpub, index))
        except ValueError:
            continue
    return list(dict.fromkeys(a.lower() for a in addresses))


def _post_batch(reader: RpcChainReader, calls: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    """The batch's answers by position, each item as the node gave it (errors kept per item)."""
    payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]

    def handle(answer: Any) -> list[dict[str, Any]]:
        if not isinstance(answer, list):
            raise ChainError("malformed batch answer")
        by_id = {item.get("id"): item for item in answer if isinstance(item, dict)}
        if set(by_id) != set(range(len(calls))):
            raise ChainError("batch answer ids do not match")
        return [by_id[i] for i in range(len(calls))]

    result: list[dict[str, Any]] = reader._each_url(payload, handle)
    return result


def check_chain(chain: Chain, tokens: Iterable[Token], reader: RpcChainReader) -> list[Verdict]:
    """One batched JSON-RPC request for all the chain's tokens: the head, then each token's calls.

    Calls read "latest", so the logs reach at least the head recorded: no Upgraded event falls between
    two checks. Raises ChainError when the node does not answer.
    """
    tokens = list(tokens)
    calls: list[tuple[str, list[Any]]] = [("eth_blockNumber", [])]
    plan: list[tuple[Token, list[tuple[str, str]]]] = []  # per token: (kind, reason if true) per call
    for token in tokens:
        asked: list[tuple[str, str]] = []
        calls.append(("eth_call", [{"to": token.address, "data": PAUSED}, "latest"]))
        asked.append(("flag", "paused() returned true"))
        for address in deposit_addresses(token):
            for name, selector in BLOCK_CHECKS.items():
                calls.append(("eth_call", [{"to": token.address, "data": selector + _word(address)}, "latest"]))
                asked.append(("flag", f"{name}({address}) returned true for a deposit address"))
        if token.health_checked_block is not None:
            since = hex(token.health_checked_block + 1)
            logs = {"address": token.address, "topics": [UPGRADED_TOPIC], "fromBlock": since, "toBlock": "latest"}
            calls.append(("eth_getLogs", [logs]))
            asked.append(("upgraded", ""))
        plan.append((token, asked))
    answers = _post_batch(reader, calls)
    head_answer = answers[0].get("result")
    if not isinstance(head_answer, str):
        raise ChainError(f"eth_blockNumber failed: {answers[0].get('error')}")
    head = int(head_answer, 16)
    verdicts, position = [], 1
    for token, asked in plan:
        reasons = []
        for kind, reason in asked:
            item = answers[position]
            position += 1
            if kind == "upgraded":
                if "error" in item:
                    if (token.health_checked_block or 0) >= head:  # no block since the last check
                        continue
                    raise ChainError(f"{token.symbol}: eth_getLogs failed: {item['error']}")
                for log in item.get("result") or []:
                    topics = log.get("topics") or []
                    implementation = "0x" + topics[1][-40:] if len(topics) > 1 else "?"
                    block = int(log.get("blockNumber", "0x0"), 16)
                    reasons.append(f"{UPGRADE_PREFIX}({implementation}) proxy event in block {block}")
            elif _true(item):
                reasons.append(reason)
        verdicts.append(Verdict(token_pk=token.pk, reasons=tuple(reasons), head=head))
    return verdicts


def record(token: Token, verdict: Verdict, *, now: datetime) -> None:
    """Store a verdict: a new failure halts the token, a pass lifts a halt unless it was an upgrade."""
    sticky = token.halted_reason if token.halted_reason.startswith(UPGRADE_PREFIX) else ""
    reason = "; ".join(r for r in (sticky, *verdict.reasons) if r)[:255]
    if reason and not token.halted_reason:
        token.halted_at = now
        logger.warning("token %s on chain %s suspended: %s", token.symbol, token.chain_id, reason)
    elif not reason and token.halted_reason:
        logger.warning("token %s on chain %s: contract checks pass again", token.symbol, token.chain_id)
        token.halted_at = None
    token.halted_reason = reason
    token.health_checked_at = now
    token.health_checked_block = verdict.head
    # save(): its signal clears the process's reference cache (stablepay/registry/refdata.py), so quotes see it.
    token.save(update_fields=["halted_reason", "halted_at", "health_checked_at", "health_checked_block"])


def check_due(*, now: datetime | None = None, force: bool = False) -> int:
    """Check the active tokens not checked for TOKEN_CHECK_SECONDS; returns how many were checked."""
    now = now or timezone.now()
    due = Token.objects.filter(active=True).select_related("chain")
    if not force:
        due = due.filter(
            Q(health_checked_at__isnull=True) | Q(health_checked_at__lt=now - timedelta(seconds=_interval()))
        )
    by_chain: dict[int, list[Token]] = defaultdict(list)
    for token in due:
        by_chain[token.chain_id].append(token)
    checked = 0
    for tokens in by_chain.values():
        chain = tokens[0].chain
        reader = reader_for_chain(chain)
        try:
            verdicts = check_chain(chain, tokens, reader)
        except ChainError as exc:
            logger.warning("chain %s: token checks failed, last verdicts stand: %s", chain.chain_id, exc)
            continue
        for token, verdict in zip(tokens, verdicts, strict=True):
            record(token, verdict, now=now)
            checked += 1
    return checked
