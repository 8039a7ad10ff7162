"""The watcher's local header chain: the last `window` block headers of a chain (number, hash, parent
hash), contiguous and linked by parent hash, stored as `Block` rows.

Each pass reads the node's head. A head that links to the stored tip by its parent hash costs nothing
more; only when a link breaks does `advance` walk back one header at a time to the common ancestor, so
a reorg costs calls in proportion to its depth and a quiet chain costs none. A transfer is on the
canonical chain when its block hash equals the stored header's at its height (or it lies below the
stored window, deeper than any reorg the watcher follows).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from stablepay.chain.reader import BlockRef, ChainError, ChainReader
from stablepay.models import Block, Chain

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Advance:
    """What the node's chain is now, against the stored one."""

    head: BlockRef
    new: list[BlockRef] = field(default_factory=list)  # headers to store, ascending, ending at `head`
    fork: int | None = None  # the lowest stored height whose header the node replaced; None if it only grew
    walked: int = 0  # headers read one by one to find the common ancestor


def stored(chain: Chain) -> dict[int, BlockRef]:
    rows = Block.objects.filter(chain=chain).values_list("number", "hash", "parent_hash", "timestamp")
    return {n: BlockRef(n, h, int(ts.timestamp()), parent) for n, h, parent, ts in rows}


def tip_of(headers: Mapping[int, BlockRef]) -> BlockRef | None:
    return headers[max(headers)] if headers else None


def moved(chain: Chain, since: Mapping[int, BlockRef]) -> bool:
    """Whether the stored tip is no longer the one of `since` (another scanner stored headers)."""
    tip = Block.objects.filter(chain=chain).order_by("-number").values_list("number", "hash").first()
    was = tip_of(since)
    return tip != ((was.number, was.hash) if was is not None else None)


def advance(stored: Mapping[int, BlockRef], head: BlockRef, reader: ChainReader, *, window: int, floor: int) -> Advance:
    """Link `head` to the stored headers; only the top `window` heights are kept. `floor`, the chain's
    first scanned block, bounds the first headers read: none below it is worth one."""
    lowest = max(head.number - window + 1, 0)
    tip = tip_of(stored)
    if tip is None:
        return Advance(head, _down_to(reader, head, min(max(lowest, floor), head.number)))
    if head.hash == tip.hash:
        return Advance(head)
    if head.number < tip.number:
        raise ChainError(f"the node's head {head.number} is behind block {tip.number}, already read")
    new = _down_to(reader, head, max(tip.number + 1, lowest))
    walked = 0
    while (mine := stored.get(new[0].number - 1)) is not None and mine.hash != new[0].parent_hash:
        below = reader.blocks([mine.number]).get(mine.number)  # the link broke: one header further down
        new.insert(0, _linked(below, new[0]))
        walked += 1
    if new[0].number > tip.number + 1:  # more new blocks than the window: check the stored tip itself
        fork, checked = _first_changed(stored, reader)
        return Advance(head, new, fork, walked + checked)
    fork = new[0].number if new[0].number <= tip.number else None
    if fork is not None and fork == min(stored) and fork > floor:
        logger.error("chain reorganised below the %s stored headers (from block %s)", len(stored), fork)
    return Advance(head, new, fork, walked)


def _down_to(reader: ChainReader, head: BlockRef, lowest: int) -> list[BlockRef]:
    """The headers from `lowest` up to `head`, in one batch, each linked to the next by parent hash."""
    heights = list(range(lowest, head.number))
    found = reader.blocks(heights) if heights else {}
    headers = [head]
    for n in reversed(heights):
        headers.insert(0, _linked(found.get(n), headers[0]))
    return headers


def _linked(header: BlockRef | None, child: BlockRef) -> BlockRef:
    if header is None or header.hash != child.parent_hash:
        raise ChainError(f"the node's chain changed below block {child.number} while its headers were read")
    return header


def _first_changed(stored: Mapping[int, BlockRef], reader: ChainReader) -> tuple[int | None, int]:
    """After a gap wider than the window: the lowest stored height the node no longer has, walking down
    from the stored tip (a matching hash vouches for every header below it); and the headers read."""
    fork, read = None, 0
    for n in sorted(stored, reverse=True):
        node = reader.blocks([n]).get(n)
        read += 1
        if node is not None and node.hash == stored[n].hash:
            break
        fork = n
    return fork, read


def save(chain: Chain, step: Advance, *, window: int) -> None:
    """Store the new headers in place of those at and above the first of them, and drop the ones that
    fell out of the window. Called inside the transaction that holds the chain's cursor lock."""
    if not step.new:
        return
    Block.objects.filter(chain=chain, number__gte=step.new[0].number).delete()
    Block.objects.bulk_create(
        Block(
            chain=chain,
            number=header.number,
            hash=header.hash,
            parent_hash=header.parent_hash,
            timestamp=datetime.fromtimestamp(header.timestamp, tz=UTC),
        )
        for header in step.new
    )
    Block.objects.filter(chain=chain, number__lt=step.head.number - window + 1).delete()
