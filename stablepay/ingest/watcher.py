"""The chain watcher: head -> header chain, reorg rollback, transfer upsert, confirmations.

A pass reads the node's head and links it to the local header chain (stablepay.ingest.header_chain); only a
broken link costs more calls, in proportion to the reorg's depth. New blocks are read with one
eth_getLogs for all of the chain's tokens, however many requests are open: a single new block by its
hash, a wider range with its last header in the same batch. Each answer's recipients are looked up
among the watched deposit addresses in one indexed query, and only the logs paying one of them are fully
decoded. Each range is written in one transaction that re-checks the cursor under a row lock, so two
scanners never apply a range twice, and the unique (chain, tx_hash, log_index) makes any re-scan a no-op.
A transfer whose block is on the header chain and deep enough is confirmed in the pass that records it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Exists, Min, OuterRef, Q
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower
from django.utils import timezone
from eth_utils.address import to_checksum_address

from stablepay.chain import quorum
from stablepay.chain.factory import reader_for_chain
from stablepay.chain.reader import BlockRef, ChainError, ChainReader, Keep, RangeTooLarge, TransferLog
from stablepay.compliance import screening
from stablepay.ingest import header_chain, schedule
from stablepay.ledger import services
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


def _ensure_cursor(chain: Chain, head: BlockRef) -> tuple[Cursor, int]:
    """The chain's cursor, and its first scanned block (the head now, on a chain never scanned)."""
    start = chain.start_block if chain.start_block is not None else head.number
    cursor, _ = Cursor.objects.get_or_create(chain=chain, defaults={"scanned_block": max(start - 1, 0)})
    if chain.start_block is None:
        Chain.objects.filter(pk=chain.pk, start_block__isnull=True).update(start_block=start)
        start = Chain.objects.values_list("start_block", flat=True).get(pk=chain.pk) or start
    return cursor, start


def _advance_headers(chain: Chain, reader: ChainReader, result: ScanResult) -> dict[int, BlockRef] | None:
    """Read the head, link it to the header chain and store it; roll back a reorg. The headers after
    the step, or None when another scanner moved the chain first (this pass then yields)."""
    stored = header_chain.stored(chain)
    head = reader.head()
    result.head = head.number
    cursor, start = _ensure_cursor(chain, head)
    if head.number < cursor.scanned_block:
        raise ChainError(f"the node's head {head.number} is behind block {cursor.scanned_block}, already scanned")
    window = reorg_window(chain)
    step = header_chain.advance(stored, head, reader, window=window, floor=start)
    fork = step.fork
    if not stored and step.new:  # a fresh header chain: the live transfers it covers must agree with it
        fork = _first_disagreement(chain, step.new)
    with transaction.atomic():
        Cursor.objects.select_for_update().get(chain=chain)
        if header_chain.moved(chain, stored):
            logger.info("chain %s: another scanner moved the header chain; yielding", chain.chain_id)
            return None
        if fork is not None:
            result.reorg_depth = head.number - fork + 1
            result.orphaned, touched = _rollback(chain, fork)
            result.touched |= touched
        header_chain.save(chain, step, window=window)
    if step.walked:
        logger.info("chain %s: %s headers read to find the common ancestor", chain.chain_id, step.walked)
    return {**{n: h for n, h in stored.items() if fork is None or n < fork}, **{h.number: h for h in step.new}}


def _first_disagreement(chain: Chain, headers: list[BlockRef]) -> int | None:
    """The lowest height among `headers` where a live transfer names another block hash (a reorg while no
    header chain was kept, as after the upgrade that introduced it)."""
    hashes = {h.number: h.hash for h in headers}
    live = Transfer.objects.filter(chain=chain, block_number__gte=headers[0].number).exclude(
        state=TransferState.ORPHANED
    )
    wrong = [n for n, h in live.values_list("block_number", "block_hash") if hashes.get(n, h) != h]
    return min(wrong) if wrong else None


def _rollback(chain: Chain, fork: int) -> tuple[int, set[UUID]]:
    """Orphan every transfer at or above `fork` and rewind the cursor below it; in the caller's transaction,
    which holds the cursor's lock."""
    cursor = Cursor.objects.get(chain=chain)
    doomed = Transfer.objects.filter(chain=chain, block_number__gte=fork).exclude(state=TransferState.ORPHANED)
    touched = set(doomed.exclude(payment_request=None).values_list("payment_request_id", flat=True))
    _mark_pending(touched)
    orphaned = doomed.update(state=TransferState.ORPHANED)
    if cursor.scanned_block >= fork:
        cursor.scanned_block = fork - 1
        cursor.save(update_fields=["scanned_block"])
    logger.warning("chain %s: reorg from block %s, %s transfers orphaned", chain.chain_id, fork, orphaned)
    return orphaned, {pk for pk in touched if pk is not None}


def _mark_pending(request_ids: Iterable[UUID | None]) -> None:
    """Flag requests for reconciliation, inside the transaction that changed their transfers."""
    ids = [pk for pk in request_ids if pk is not None]
    if ids:
        PaymentRequest.objects.filter(pk__in=ids).update(reconcile_pending=True)


def _block_times(reader: ChainReader, hits: list[TransferLog], headers: Mapping[int, BlockRef]) -> dict[int, int]:
    """Each hit's block time. A hit in the header chain's window must be in the stored block (else the
    node moved while it was read); one below it takes the log's own timestamp, or its block's."""
    times: dict[int, int] = {}
    for hit in hits:
        header = headers.get(hit.block_number)
        if header is not None and header.hash != hit.block_hash:
            raise ChainError(f"block {hit.block_number} changed while its logs were read")
        stamp = header.timestamp if header is not None else hit.block_timestamp
        if stamp is not None:
            times[hit.block_number] = stamp
    missing = sorted({h.block_number for h in hits} - set(times))
    for number, block in reader.blocks(missing).items():
        if block is None or block.hash != next(h.block_hash for h in hits if h.block_number == number):
            raise ChainError(f"block {number} changed while its logs were read")
        times[number] = block.timestamp
    return times


def _record_hits(
    chain: Chain,
    tokens: Mapping[str, Token],
    watched: Mapping[str, UUID],
    hits: Iterable[TransferLog],
    times: Mapping[int, int],
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
            "block_timestamp": _aware(times[hit.block_number]),
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
    return recorded, touched


def _read_range(
    reader: ChainReader, tokens: list[str], start: int, end: int, headers: Mapping[int, BlockRef], keep: Keep
) -> list[TransferLog]:
    """The range's Transfer logs: a single block of the header chain by its hash (one call), a wider
    range with its last header in the same batch, which must agree with the header chain."""
    block = headers.get(end)
    if start == end and block is not None:
        return reader.block_transfer_logs(tokens, block, keep)
    logs, tip = reader.transfer_logs(tokens, start, end, keep)
    if block is not None and tip.hash != block.hash:
        raise ChainError(f"block {end} changed while the range was read")
    return logs


def _scan_range(
    chain: Chain,
    reader: ChainReader,
    tokens: Mapping[str, Token],
    headers: Mapping[int, BlockRef],
    head: int,
    result: ScanResult,
    now: datetime,
) -> None:
    """Read from the cursor up to the head in adaptive chunks, committing each chunk with the cursor."""
    cursor = Cursor.objects.get(chain=chain)
    scanned, chunk, ceiling = cursor.scanned_block, cursor.chunk_size, cursor.chunk_ceiling or MAX_CHUNK
    for _ in range(MAX_CHUNKS_PER_PASS):
        if scanned >= head:
            break
        start, end = scanned + 1, min(head, scanned + chunk)
        watched: dict[str, UUID] = {}

        def keep(recipients: set[str], watched: dict[str, UUID] = watched) -> dict[str, UUID]:
            watched.update(watched_among(recipients, now=now))
            return watched

        try:
            logs = _read_range(reader, list(tokens), start, end, headers, keep)
        except RangeTooLarge as exc:
            span = end - start + 1
            if span == 1:
                raise
            # Follow the node's suggested span when it gives one, else halve; never grow past it again.
            chunk = exc.suggested if exc.suggested and exc.suggested < span else span // 2
            ceiling = min(ceiling, chunk)
            continue
        hits = [log for log in logs if log.to_address in watched and log.token in tokens]
        second = reader.second_source() if hits else None
        if second is not None:
            single = headers.get(end) if start == end else None
            verdict = quorum.corroborate(second, list(tokens), start, end, hits, block=single)
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
        times = _block_times(reader, hits, headers)
        # The payers of the new transfers, screened before the range's transaction, written with the rows.
        screened = screening.screen_logs(screening.unscreened(chain.pk, hits), tokens, chain_id=chain.chain_id)
        with transaction.atomic():
            locked = Cursor.objects.select_for_update().get(pk=cursor.pk)
            if locked.scanned_block != scanned:
                logger.info("chain %s: another scanner moved the cursor; yielding", chain.chain_id)
                return
            recorded, touched = _record_hits(chain, tokens, watched, hits, times, screened, now)
            _mark_pending(touched)
            if len(logs) < GROW_BELOW_LOGS:
                chunk = min(ceiling, chunk * 2)
            locked.scanned_block, locked.chunk_size = end, chunk
            locked.chunk_ceiling = ceiling if ceiling < MAX_CHUNK else None
            locked.save(update_fields=["scanned_block", "chunk_size", "chunk_ceiling"])
        scanned = end
        result.recorded += recorded
        result.touched |= touched
    result.scanned = scanned


def _confirmed_depth(chain: Chain, reader: ChainReader, head: int) -> int:
    """The highest block whose transfers count as confirmed: `confirmations` deep, or the finalized tag
    (asked only while a transfer waits for it)."""
    if chain.use_finalized_tag:
        if not Transfer.objects.filter(chain=chain, state=TransferState.SEEN).exists():
            return -1
        finalized = reader.finalized()
        return finalized.number if finalized is not None else -1
    return head - chain.confirmations + 1


def _confirm(chain: Chain, depth_ok: int, head: int, now: datetime) -> set[UUID]:
    """Promote seen transfers to confirmed once deep enough and on the header chain (their block hash is
    the stored header's, or they lie below the stored window); each records when, and the head then."""
    floor = Block.objects.filter(chain=chain).aggregate(lowest=Min("number"))["lowest"] or 0
    on_header_chain = Exists(
        Block.objects.filter(chain=chain, number=OuterRef("block_number"), hash=OuterRef("block_hash"))
    )
    ready = Transfer.objects.filter(chain=chain, state=TransferState.SEEN, block_number__lte=depth_ok).filter(
        Q(block_number__lt=floor) | on_header_chain
    )
    rows = list(ready.select_for_update().values_list("pk", "payment_request_id"))
    Transfer.objects.filter(pk__in=[pk for pk, _ in rows]).update(
        state=TransferState.CONFIRMED, confirmed_at=now, confirmed_head_block=head
    )
    touched = {request_id for _, request_id in rows if request_id is not None}
    _mark_pending(touched)
    return touched


def scan_chain(*, chain: Chain, reader: ChainReader, now: datetime | None = None) -> ScanResult:
    """One pass over one chain: link the head to the header chain (rolling back a reorg), read the new
    blocks, confirm what is deep enough and reconcile: what is final now is final after this one pass."""
    now = now or timezone.now()
    result = ScanResult(chain_id=chain.chain_id)
    headers = _advance_headers(chain, reader, result)
    if headers is None:
        return result
    tokens = {t.address.lower(): t for t in Token.objects.filter(chain=chain)}
    if tokens:
        _scan_range(chain, reader, tokens, headers, result.head, result, now)
    else:
        Cursor.objects.filter(chain=chain).update(scanned_block=result.head)
        result.scanned = result.head
    # Every request whose transfers changed was flagged in the same transaction as the change, so a
    # worker killed before this point leaves the flags behind and the next pass reconciles them. The
    # confirmations and the reconciliations commit together: one commit per pass, not one per request.
    depth_ok = _confirmed_depth(chain, reader, result.head)
    with transaction.atomic():
        result.touched |= _confirm(chain, depth_ok, result.head, now)
        pending = PaymentRequest.objects.filter(reconcile_pending=True).order_by().values_list("pk", flat=True)
        services.payment_requests_reconcile(request_ids=list(pending), now=now)
    Cursor.objects.filter(chain=chain).update(head_block=result.head, last_scan_at=now, last_error=result.warning)
    return result


def record_error(chain: Chain, error: Exception, *, now: datetime | None = None) -> None:
    now = now or timezone.now()
    Cursor.objects.filter(chain=chain).update(last_error=str(error)[:1000], last_error_at=now)
    logger.warning("chain %s: scan failed: %s", chain.chain_id, error)


def scan_once(*, now: datetime | None = None, reader_factory: object = None) -> list[ScanResult]:
    """One full pass (CONTRACT §3): every chain, then the periodic jobs (the expiry sweep, the webhooks that are
    due...: stablepay.ingest.schedule)."""
    results = []
    for chain in Chain.objects.all():
        reader = reader_factory(chain) if callable(reader_factory) else reader_for_chain(chain, shared=True)
        try:
            results.append(scan_chain(chain=chain, reader=reader, now=now))
        except ChainError as exc:
            record_error(chain, exc, now=now)
    housekeeping(now=now)
    return results


def housekeeping(*, now: datetime | None = None) -> None:
    """What a pass does besides scanning: the periodic jobs (stablepay.ingest.schedule), in order."""
    schedule.run_periodic_jobs(now=now)
