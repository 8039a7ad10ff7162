"""An on-demand probe for transfers of unregistered token contracts to our deposit addresses.

The watcher asks the node only for the logs of registered token contracts, so a fake token (say a
contract calling itself HKDX) is never recorded, never credited and never seen. Ops can still ask:
this reads the chain directly, the way stablepay_audit does, with eth_getLogs filtered by recipient
(topic 2 = the deposit addresses still watched) over the last N blocks, and keeps the logs whose
contract is not registered. It writes nothing. Calls go through stablepay.chain.rpc.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone
from eth_utils.address import to_checksum_address

from stablepay.chain.factory import reader_for_chain
from stablepay.chain.reader import TRANSFER_TOPIC, ChainError, RangeTooLarge, TransferLog
from stablepay.chain.rpc import RpcChainReader, decode_transfer_logs
from stablepay.models import Chain, PaymentRequest, Token
from stablepay.money import format_token_amount

logger = logging.getLogger(__name__)

DEFAULT_BLOCKS = 1_000
MAX_BLOCKS = 20_000
ADDRESSES_PER_CALL = 100
MAX_SPAN = 5_000
SYMBOL, NAME, DECIMALS = "0x95d89b41", "0x06fdde03", "0x313ce567"


@dataclass(frozen=True)
class TokenInfo:
    symbol: str
    name: str
    decimals: int | None


@dataclass(frozen=True)
class LookalikeTransfer:
    log: TransferLog
    contract: str
    info: TokenInfo
    impersonates: bool  # its symbol is a registered token's symbol on this chain
    request: PaymentRequest | None
    explorer_url: str

    @property
    def amount(self) -> str:
        if self.info.decimals is None or self.info.decimals > 36:
            return f"{self.log.value} (base units)"
        return format_token_amount(self.log.value, self.info.decimals)


@dataclass
class LookalikeReport:
    chain: Chain
    from_block: int = 0
    to_block: int = 0
    addresses: int = 0
    transfers: list[LookalikeTransfer] = field(default_factory=list)
    error: str = ""


def _topic(address: str) -> str:
    return "0x" + "0" * 24 + address[2:].lower()


def _abi_string(result: object) -> str:
    """An ABI-encoded string (or a bytes32, as some old tokens return), best effort."""
    if not isinstance(result, str) or not result.startswith("0x"):
        return ""
    raw = bytes.fromhex(result[2:]) if len(result) % 2 == 0 else b""
    try:
        if len(raw) == 32:
            return raw.rstrip(b"\0").decode("utf-8", "replace")[:32]
        if len(raw) >= 64:
            offset = int.from_bytes(raw[:32], "big")
            length = int.from_bytes(raw[offset : offset + 32], "big")
            return raw[offset + 32 : offset + 32 + min(length, 64)].decode("utf-8", "replace")
    except (ValueError, OverflowError):
        return ""
    return ""


def _token_info(reader: RpcChainReader, contract: str) -> TokenInfo:
    infos: list[object] = []
    for selector in (SYMBOL, NAME, DECIMALS):
        try:
            infos.append(reader.call("eth_call", [{"to": contract, "data": selector}, "latest"]))
        except ChainError:
            infos.append(None)
    decimals = infos[2]
    try:
        places = int(decimals, 16) if isinstance(decimals, str) and len(decimals) > 2 else None
    except ValueError:
        places = None
    return TokenInfo(symbol=_abi_string(infos[0]) or "?", name=_abi_string(infos[1]), decimals=places)


def _logs(reader: RpcChainReader, topics: list[str], from_block: int, to_block: int) -> list[TransferLog]:
    """The Transfer logs to the given recipients, in spans the node accepts."""
    out: list[TransferLog] = []
    start, span = from_block, min(MAX_SPAN, to_block - from_block + 1)
    while start <= to_block:
        end = min(to_block, start + span - 1)
        params = [{"topics": [TRANSFER_TOPIC, None, topics], "fromBlock": hex(start), "toBlock": hex(end)}]
        try:
            out.extend(decode_transfer_logs(reader.call("eth_getLogs", params)))
        except RangeTooLarge as exc:
            if span == 1:
                raise
            span = exc.suggested if exc.suggested and exc.suggested < span else max(span // 2, 1)
            continue
        start = end + 1
    return out


def lookalike_transfers(
    *, chain: Chain, blocks: int = DEFAULT_BLOCKS, reader: RpcChainReader | None = None, now: datetime | None = None
) -> LookalikeReport:
    """Transfers of unregistered contracts to the chain's watched deposit addresses in the last `blocks` blocks."""
    now = now or timezone.now()
    report = LookalikeReport(chain=chain)
    blocks = max(1, min(int(blocks), MAX_BLOCKS))
    watched = {
        address.lower(): request
        for address, request in (
            (r.pay_to, r) for r in PaymentRequest.objects.filter(token__chain=chain, watch_until__gt=now)
        )
    }
    report.addresses = len(watched)
    registered = {t.address.lower(): t for t in Token.objects.filter(chain=chain)}
    symbols = {t.symbol.upper() for t in registered.values()}
    try:
        reader = reader or reader_for_chain(chain)
        head = reader.head_number()
        report.to_block = head
        report.from_block = max(head - blocks + 1, chain.start_block or 0, 0)
        if not watched:
            return report
        addresses = sorted(watched)
        found: list[TransferLog] = []
        for i in range(0, len(addresses), ADDRESSES_PER_CALL):
            topics = [_topic(a) for a in addresses[i : i + ADDRESSES_PER_CALL]]
            found.extend(_logs(reader, topics, report.from_block, report.to_block))
        foreign = [log for log in found if log.token not in registered and log.to_address in watched]
        infos = {contract: _token_info(reader, contract) for contract in {log.token for log in foreign}}
    except ChainError as exc:
        logger.warning("look-alike probe on chain %s failed: %s", chain.chain_id, exc)
        report.error = str(exc)[:300]
        return report
    for log in sorted(foreign, key=lambda entry: (-entry.block_number, -entry.log_index)):
        info = infos[log.token]
        report.transfers.append(
            LookalikeTransfer(
                log=log,
                contract=str(to_checksum_address(log.token)),
                info=info,
                impersonates=info.symbol.upper() in symbols,
                request=watched.get(log.to_address),
                explorer_url=chain.explorer_link(log.tx_hash),
            )
        )
    return report
