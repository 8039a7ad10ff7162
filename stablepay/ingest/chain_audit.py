"""`stablepay_audit`: re-read a block range straight from the chain and compare it with the ledger.

Independent of the watcher's state (its cursor, its stored blocks, its reader): every Transfer log of
the chain's registered tokens to any deposit address ever handed out must be in the ledger, once,
with the same block, parties and amount, and the ledger must hold nothing the chain does not.
"""

from __future__ import annotations

from typing import Any

from stablepay.chain.reader import ChainReader, RangeTooLarge, TransferLog
from stablepay.models import Chain, PaymentRequest, Token, Transfer, TransferState

CHUNK = 2000


def _chain_logs(reader: ChainReader, tokens: list[str], from_block: int, to_block: int) -> list[TransferLog]:
    logs: list[TransferLog] = []
    start, chunk = from_block, CHUNK
    while start <= to_block:
        end = min(to_block, start + chunk - 1)
        try:
            logs.extend(reader.transfer_logs(tokens, start, end)[0])
        except RangeTooLarge as exc:
            if end == start:
                raise
            chunk = max(1, min(exc.suggested or chunk // 2, chunk // 2))
            continue
        start = end + 1
    return logs


def _row(key: tuple[str, int], **fields: Any) -> dict[str, Any]:
    return {"tx_hash": key[0], "log_index": key[1], **fields}


def audit_chain(*, chain: Chain, reader: ChainReader, from_block: int, to_block: int) -> dict[str, Any]:
    tokens = {t.address.lower(): t.symbol for t in Token.objects.filter(chain=chain)}
    deposits = {a.lower() for a in PaymentRequest.objects.values_list("pay_to", flat=True)}
    logs = _chain_logs(reader, list(tokens), from_block, to_block) if tokens else []
    on_chain = {
        (log.tx_hash, log.log_index): {
            "block_number": log.block_number,
            "block_hash": log.block_hash,
            "token": tokens[log.token],
            "from": log.from_address,
            "to": log.to_address,
            "amount_base_units": str(log.value),
        }
        for log in logs
        if log.to_address in deposits and log.token in tokens
    }
    ledger = {
        (t.tx_hash, t.log_index): {
            "block_number": t.block_number,
            "block_hash": t.block_hash,
            "token": t.token.symbol,
            "from": t.from_address.lower(),
            "to": t.to_address.lower(),
            "amount_base_units": str(int(t.amount_base_units)),
        }
        for t in Transfer.objects.filter(chain=chain, block_number__gte=from_block, block_number__lte=to_block)
        .exclude(state=TransferState.ORPHANED)
        .select_related("token")
    }
    missing = [_row(k, **on_chain[k]) for k in sorted(on_chain.keys() - ledger.keys())]
    extra = [_row(k, **ledger[k]) for k in sorted(ledger.keys() - on_chain.keys())]
    mismatched = [
        _row(k, chain=on_chain[k], ledger=ledger[k])
        for k in sorted(on_chain.keys() & ledger.keys())
        if on_chain[k] != ledger[k]
    ]
    return {
        "chain_id": chain.chain_id,
        "from_block": from_block,
        "to_block": to_block,
        "transfers_on_chain": len(on_chain),
        "transfers_in_ledger": len(ledger),
        "missing": missing,
        "extra": extra,
        "mismatched": mismatched,
    }
