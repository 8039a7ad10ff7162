"""The chain watcher: cursor -> head, block-hash checks, reorg rollback, transfer upsert, confirmations.

One pass per chain costs one batched header request (the head plus the unfinalized blocks we rely on)
and one eth_getLogs per block range for all of the chain's tokens, however many requests are open.
Each answer's recipients are looked up among the watched deposit addresses in one indexed query, and
only the logs paying one of them are fully decoded. Each range is written in
one transaction that re-checks the cursor under a row lock, so two scanners never apply a range twice,
and the unique (chain, tx_hash, log_index) makes any re-scan a no-op.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower
from django.utils import timezone
from eth_utils.address import to_checksum_address

from stablepay import screening, services, token_health, webhooks
from stablepay.chain import quorum
from stablepay.chain.reader import BlockRef, ChainError, ChainReader, RangeTooLarge, TransferLog
from stablepay.chain.rpc import RpcChainReader
from stablepay.models import Block, Chain, Cursor, PaymentRequest, Token, Transfer, TransferState

logger = logging.getLogger(__name__)

MAX_CHUNK = 10_000
MAX_CHUNKS_PER_PASS = 100
GROW_BELOW_LOGS = 1_000  # a range with fewer logs than this lets the next one double


@dataclass
class ScanResult:
    chain_id: int
    head: int = 0
    scanned: int = 0
    recorded: int = 0
    orphaned: int = 0
    reorg_depth: int = 0
    refused: int = 0  # logs one node reported and another contradicted: never credited
    warning: str = ""
    touched: set[UUID] = field(default_factory=set)


@lru_cache(maxsize=64)
def _cached_reader(urls: tuple[str, ...], timeout: float) -> RpcChainReader:
    return RpcChainReader(urls, timeout=timeout)


def reader_for(chain: Chain) -> RpcChainReader:
    return _cached_reader(tuple(chain.rpc_urls), settings.STABLEPAY["RPC_TIMEOUT_SECONDS"])


def reorg_window(chain: Chain) -> int:
    """How many blocks below the head we keep re-checking: well past the confirmation depth."""
    return max(128, 4 * chain.confirmations)


def watched_among(addresses: Iterable[str], *, now: datetime) -> dict[str, UUID]:
    """Lower-case deposit address -> payment request, for those of `addresses` still watched (7 days
    past expiry). One indexed query, whatever the number of addresses or of open requests: the cost
    follows the logs read, and the answer is the database's own, never a stale cache."""
    wanted = sorted({address.lower() for address in addresses})
    if not wanted:
        return {}
    rows = (
        PaymentRequest.objects.order_by()
        .alias(address=Lower("pay_to"))
        .filter(address__in=_as_table(wanted), watch_until__gt=now)
        .values_list("pay_to", "pk")
    )
    return {address.lower(): pk for address, pk in rows}


def _as_table(values: list[str]) -> RawSQL:
    """The values as a one-column subquery bound to a single parameter, so a getLogs answer's thousands
    of recipients cost one placeholder, not one SQL variable each."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::text[])", (values,))
    return RawSQL("SELECT value FROM json_each(%s)", (json.dumps(values),))


def _aware(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def _ensure_cursor(chain: Chain, head: BlockRef) -> Cursor:
    start = chain.start_block if chain.start_block is not None else head.number
    cursor, _ = Cursor.objects.get_or_create(chain=chain, defaults={"scanned_block": max(start - 1, 0)})
    if chain.start_block is None:
        Chain.objects.filter(pk=chain.pk, start_block__isnull=True).update(start_block=start)
    return cursor


def _fork_point(stored: Mapping[int, str], known: Mapping[int, BlockRef | None]) -> int | None:
    """The lowest stored height whose hash the node no longer has, or None if all still match."""
    changed = [n for n, h in stored.items() if (block := known.get(n)) is None or block.hash != h]
    return min(changed) if changed else None


def _rescan_from(chain: Chain, stored: Mapping[int, str], fork: int) -> int:
    """Where the rescan after a reorg starts: just above the highest stored block that still matches.

    Only some hashes are stored (blocks with transfers, the last tip), so the chain may have forked
    anywhere between that block and `fork`, in blocks never stored, and a payment re-included there
    would be missed by a rescan from `fork`. With no matching block stored below, the whole reorg
    window is read again. The transfers in between sit in stored, matching blocks: they stay as they are.
    """
    below = [n for n in stored if n < fork]
    floor = chain.start_block or 0
    return max(floor, max(below) + 1 if below else fork - reorg_window(chain))


def _rollback(chain: Chain, fork: int, rescan_from: int) -> tuple[int, set[UUID]]:
    """Orphan every transfer at or above `fork` and rewind the cursor below `rescan_from` (<= fork)."""
    with transaction.atomic():
        cursor = Cursor.objects.select_for_update().get(chain=chain)
        doomed = Transfer.objects.filter(chain=chain, block_number__gte=fork).exclude(state=TransferState.ORPHANED)
        touched = set(doomed.exclude(payment_request=None).values_list("payment_request_id", flat=True))
        _mark_pending(touched)
        orphaned = doomed.update(state=TransferState.ORPHANED)
        Block.objects.filter(chain=chain, number__gte=fork).delete()
        if cursor.scanned_block >= rescan_from:
            cursor.scanned_block = rescan_from - 1
            cursor.save(update_fields=["scanned_block"])
    logger.warning("chain %s: reorg from block %s, %s transfers orphaned", chain.chain_id, fork, orphaned)
    return orphaned, {pk for pk in touched if pk is not None}


def _mark_pending(request_ids: Iterable[UUID | None]) -> None:
    """Flag requests for reconciliation, inside the transaction that changed their transfers."""
    ids = [pk for pk in request_ids if pk is not None]
    if ids:
        PaymentRequest.objects.filter(pk__in=ids).update(reconcile_pending=True)


def _block_times(reader: ChainReader, hits: list[TransferLog]) -> dict[int, BlockRef]:
    """The blocks of the hits, from the logs' own timestamps, asking the node only for what is missing."""
    blocks = {
        h.block_number: BlockRef(h.block_number, h.block_hash, h.block_timestamp)
        for h in hits
        if h.block_timestamp is not None
    }
    missing = sorted({h.block_number for h in hits} - set(blocks))
    for number, block in reader.blocks(missing).items():
        if block is None:
            raise ChainError(f"block {number} vanished while its logs were read")
        blocks[number] = block
    for hit in hits:
        if blocks[hit.block_number].hash != hit.block_hash:
            raise ChainError(f"block {hit.block_number} changed while its logs were read")
    return blocks


def _record_hits(
    chain: Chain,
    tokens: Mapping[str, Token],
    watched: Mapping[str, UUID],
    hits: Iterable[TransferLog],
    blocks: Mapping[int, BlockRef],
    screened: Mapping[tuple[str, int], screening.Screened],
    now: datetime,
) -> tuple[int, set[UUID]]:
    """Upsert each hit once; a log seen again after a reorg is revived in place, never duplicated.
    A new row carries its screening outcome; a revived one keeps the outcome it was first given."""
    hits = list(hits)
    known = {
        (t.tx_hash, t.log_index): t
        for t in Transfer.objects.filter(chain=chain, tx_hash__in={hit.tx_hash for hit in hits}).only(
            "pk", "tx_hash", "log_index", "state", "block_hash"
        )
    }
    new: list[Transfer] = []
    recorded, touched = 0, set()
    for hit in hits:
        fields = {
            "token": tokens[hit.token],
            "payment_request_id": watched[hit.to_address],
            "block_number": hit.block_number,
            "block_hash": hit.block_hash,
            "block_timestamp": _aware(blocks[hit.block_number].timestamp),
            "from_address": to_checksum_address(hit.from_address),
            "to_address": to_checksum_address(hit.to_address),
            "amount_base_units": Decimal(hit.value),
        }
        existing = known.get((hit.tx_hash, hit.log_index))
        if existing is None:
            outcome = screened[(hit.tx_hash, hit.log_index)]
            new.append(
                Transfer(
                    chain=chain,
                    tx_hash=hit.tx_hash,
                    log_index=hit.log_index,
                    screening=outcome.outcome,
                    screening_detail=outcome.detail,
                    screened_at=now,
                    **fields,
                )
            )
        elif existing.state == TransferState.ORPHANED or existing.block_hash != hit.block_hash:
            Transfer.objects.filter(pk=existing.pk).update(
                state=TransferState.SEEN, confirmed_at=None, confirmed_head_block=None, **fields
            )
        else:
            continue
        recorded += 1
        touched.add(watched[hit.to_address])
    Transfer.objects.bulk_create(new)  # the unique (chain, tx_hash, log_index) still guards against doubles
    for block in blocks.values():
        Block.objects.update_or_create(
            chain=chain, number=block.number, defaults={"hash": block.hash, "timestamp": _aware(block.timestamp)}
        )
    return recorded, touched


def _scan_range(
    chain: Chain,
    reader: ChainReader,
    tokens: Mapping[str, Token],
    head: BlockRef,
    result: ScanResult,
    now: datetime,
) -> None:
    """Read from the cursor up to the head in adaptive chunks, committing each chunk with the cursor."""
    cursor = Cursor.objects.get(chain=chain)
    scanned, chunk, ceiling = cursor.scanned_block, cursor.chunk_size, cursor.chunk_ceiling or MAX_CHUNK
    for _ in range(MAX_CHUNKS_PER_PASS):
        if scanned >= head.number:
            break
        start, end = scanned + 1, min(head.number, scanned + chunk)
        watched: dict[str, UUID] = {}

        def keep(recipients: set[str], watched: dict[str, UUID] = watched) -> dict[str, UUID]:
            watched.update(watched_among(recipients, now=now))
            return watched

        try:
            logs = reader.transfer_logs(list(tokens), start, end, keep)
        except RangeTooLarge as exc:
            span = end - start + 1
            if span == 1:
                raise
            # Follow the node's suggested span when it gives one, else halve; never grow past it again.
            chunk = exc.suggested if exc.suggested and exc.suggested < span else span // 2
            ceiling = min(ceiling, chunk)
            continue
        hits = [log for log in logs if log.to_address in watched and log.token in tokens]
        if hits and isinstance(reader, RpcChainReader) and len(reader.urls) > 1:
            verdict = quorum.corroborate(reader, list(tokens), start, end, hits)
            for hit in verdict.refused:
                logger.error(
                    "chain %s: refused %s:%s, another node has its block but not the log",
                    chain.chain_id,
                    hit.tx_hash,
                    hit.log_index,
                )
            result.refused += len(verdict.refused)
            hits = verdict.confirmed
            if verdict.wait_from is not None:
                result.warning = verdict.reason
                end = verdict.wait_from - 1
                if end < start:
                    break
        blocks = _block_times(reader, hits)
        tip = head if end == head.number else reader.blocks([end]).get(end)
        if tip is None:
            raise ChainError(f"block {end} vanished during the scan")
        blocks.setdefault(tip.number, tip)
        # The payers of the new transfers, screened before the range's transaction, written with the rows.
        screened = screening.screen_logs(screening.unscreened(chain.pk, hits), tokens, chain_id=chain.chain_id)
        with transaction.atomic():
            locked = Cursor.objects.select_for_update().get(pk=cursor.pk)
            if locked.scanned_block != scanned:
                logger.info("chain %s: another scanner moved the cursor; yielding", chain.chain_id)
                return
            recorded, touched = _record_hits(chain, tokens, watched, hits, blocks, screened, now)
            _mark_pending(touched)
            if touched and not _pays_at_first_sight(chain):
                # Shoppers wait for this one: their payment is seen, committed with the range, before
                # the pass turns to the confirmation bookkeeping of older payments.
                services.payment_requests_reconcile(request_ids=touched, now=now)
            if len(logs) < GROW_BELOW_LOGS:
                chunk = min(ceiling, chunk * 2)
            locked.scanned_block, locked.chunk_size = end, chunk
            locked.chunk_ceiling = ceiling if ceiling < MAX_CHUNK else None
            locked.save(update_fields=["scanned_block", "chunk_size", "chunk_ceiling"])
        scanned = end
        result.recorded += recorded
        result.touched |= touched
    result.scanned = scanned


def _pays_at_first_sight(chain: Chain) -> bool:
    """One confirmation is enough: the same pass confirms the new transfers, so reconcile them once, then."""
    return chain.confirmations <= 1 and not chain.use_finalized_tag


def _confirmed_depth(chain: Chain, reader: ChainReader, head: BlockRef) -> int:
    """The highest block whose transfers count as confirmed: `confirmations` deep, or the finalized tag."""
    if chain.use_finalized_tag:
        finalized = reader.finalized()
        return finalized.number if finalized is not None else -1
    return head.number - chain.confirmations + 1


def _confirm(chain: Chain, depth_ok: int, verified: set[int], head: int, now: datetime) -> set[UUID]:
    """Promote seen transfers to confirmed once deep enough, only in blocks whose hash was just re-checked;
    each records when, and the head then."""
    ready = Transfer.objects.filter(
        chain=chain, state=TransferState.SEEN, block_number__lte=depth_ok, block_number__in=verified
    )
    with transaction.atomic():
        rows = list(ready.select_for_update().values_list("pk", "payment_request_id"))
        Transfer.objects.filter(pk__in=[pk for pk, _ in rows]).update(
            state=TransferState.CONFIRMED, confirmed_at=now, confirmed_head_block=head
        )
        touched = {request_id for _, request_id in rows if request_id is not None}
        _mark_pending(touched)
    return touched


def _prune_blocks(chain: Chain, head: BlockRef) -> None:
    """Keep the blocks that still matter: the newest tip, blocks of transfers inside the window, and the
    block of every transfer still unconfirmed however deep (a transfer is confirmed only in a block
    whose hash was re-checked, so a payment first seen after a long outage must keep its block)."""
    floor = head.number - reorg_window(chain)
    with_transfers = Transfer.objects.filter(chain=chain, block_number__gte=floor).values("block_number")
    unconfirmed = Transfer.objects.filter(chain=chain, state=TransferState.SEEN).values("block_number")
    blocks = Block.objects.filter(chain=chain).exclude(number__in=unconfirmed)
    newest = blocks.order_by("-number").values_list("number", flat=True).first()
    if newest is None:
        return
    blocks.exclude(number=newest).exclude(number__in=with_transfers).delete()
    blocks.filter(number__lt=floor).exclude(number=newest).delete()


def scan_chain(*, chain: Chain, reader: ChainReader, now: datetime | None = None) -> ScanResult:
    """One pass over one chain: check the hashes we rely on, roll back a reorg, read new blocks, confirm."""
    now = now or timezone.now()
    result = ScanResult(chain_id=chain.chain_id)
    stored = dict(Block.objects.filter(chain=chain).values_list("number", "hash"))
    head, known = reader.snapshot(sorted(stored))
    result.head = head.number
    cursor = _ensure_cursor(chain, head)
    if head.number < cursor.scanned_block:
        raise ChainError(f"the node's head {head.number} is behind block {cursor.scanned_block}, already scanned")
    if any(known.get(n) is None for n in stored if n <= head.number):
        raise ChainError("the node has no block at a height below its own head")
    fork = _fork_point(stored, known)
    if fork is not None:
        result.reorg_depth = head.number - fork + 1
        result.orphaned, touched = _rollback(chain, fork, _rescan_from(chain, stored, fork))
        result.touched |= touched
    verified = {n for n in stored if fork is None or n < fork}
    tokens = {t.address.lower(): t for t in Token.objects.filter(chain=chain)}
    if tokens:
        _scan_range(chain, reader, tokens, head, result, now)
    else:
        Cursor.objects.filter(chain=chain).update(scanned_block=head.number)
        result.scanned = head.number
    # The tip just read agrees with this pass's own head (the hits there were checked against it):
    # a chain with confirmations = 1 pays in the same pass.
    if Block.objects.filter(chain=chain, number=head.number, hash=head.hash).exists():
        verified.add(head.number)
    # Every request whose transfers changed was flagged in the same transaction as the change, so a
    # worker killed before this point leaves the flags behind and the next pass reconciles them. The
    # confirmations and the reconciliations commit together: one commit per pass, not one per request.
    depth_ok = _confirmed_depth(chain, reader, head)
    with transaction.atomic():
        result.touched |= _confirm(chain, depth_ok, verified, head.number, now)
        pending = PaymentRequest.objects.filter(reconcile_pending=True).order_by().values_list("pk", flat=True)
        services.payment_requests_reconcile(request_ids=list(pending), now=now)
    _prune_blocks(chain, head)
    Cursor.objects.filter(chain=chain).update(head_block=head.number, last_scan_at=now, last_error=result.warning)
    return result


def record_error(chain: Chain, error: Exception, *, now: datetime | None = None) -> None:
    now = now or timezone.now()
    Cursor.objects.filter(chain=chain).update(last_error=str(error)[:1000], last_error_at=now)
    logger.warning("chain %s: scan failed: %s", chain.chain_id, error)


def scan_once(*, now: datetime | None = None, reader_factory: object = None) -> list[ScanResult]:
    """One full pass (CONTRACT §3): every chain, then the expiry sweep, then the webhooks that are due."""
    results = []
    for chain in Chain.objects.all():
        reader = reader_factory(chain) if callable(reader_factory) else reader_for(chain)
        try:
            results.append(scan_chain(chain=chain, reader=reader, now=now))
        except ChainError as exc:
            record_error(chain, exc, now=now)
    housekeeping(now=now)
    return results


def housekeeping(*, now: datetime | None = None) -> None:
    """What a pass does besides scanning: the expiry sweep, then the webhooks that are due."""
    services.payment_requests_expire(now=now)
    webhooks.deliver_due(now=now)
    token_health.check_due(now=now)
    screening.rescreen_due(now=now)
