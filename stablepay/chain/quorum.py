"""A second source for every credit: with several RPC URLs, a log one node reports is used only once
another node reports the same log (CONTRACT §3). One node's word is not enough.

- the other node has the identical log: confirmed;
- the other node has the same block (same hash) but not the log: refused, never credited;
- the other node is behind, on another fork at that height, or not answering: undecided, so the
  watcher stops the range just before that block and asks again on the next pass (nothing is lost).

A one-block range is asked of the other node by its block hash (EIP-234), so its answer is about the
very block the watcher read: one call when it agrees, a second only to tell a lie from a lagging node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from stablepay.chain.reader import BlockRef, ChainError, SecondSource, TransferLog

__all__ = ["SecondSource", "Verdict", "corroborate"]


@dataclass
class Verdict:
    confirmed: list[TransferLog] = field(default_factory=list)
    refused: list[TransferLog] = field(default_factory=list)
    wait_from: int | None = None  # the lowest block whose hits are still undecided
    reason: str = ""


def _key(log: TransferLog) -> tuple[str, int]:
    return log.tx_hash, log.log_index


def _same(a: TransferLog, b: TransferLog) -> bool:
    return (a.token, a.block_number, a.block_hash, a.from_address, a.to_address, a.value) == (
        b.token,
        b.block_number,
        b.block_hash,
        b.from_address,
        b.to_address,
        b.value,
    )


def corroborate(
    source: SecondSource,
    tokens: Sequence[str],
    from_block: int,
    to_block: int,
    hits: Sequence[TransferLog],
    *,
    block: BlockRef | None = None,
) -> Verdict:
    """The verdict on `hits`, read from the range [from_block, to_block]; with `block` (a range of that
    one block), the second source is asked for that block by its hash: one call in the usual case."""
    if not hits:
        return Verdict()
    heights = sorted({hit.block_number for hit in hits})
    blocks: dict[int, BlockRef | None]
    try:
        if block is not None:
            logs, known = source.second_opinion_at(tokens, block, [_key(hit) for hit in hits])
            head, blocks = (block.number, {block.number: block}) if known else (-1, {})
        else:
            head, logs, blocks = source.second_opinion(tokens, from_block, to_block, heights)
    except ChainError as exc:
        return Verdict(wait_from=heights[0], reason=f"no second source answered: {exc}")
    theirs = {_key(log): log for log in logs}
    verdict = Verdict()
    undecided: list[int] = []
    for hit in hits:
        other = theirs.get(_key(hit))
        if other is not None and _same(hit, other):
            verdict.confirmed.append(hit)
            continue
        block = blocks.get(hit.block_number)
        if head >= hit.block_number and block is not None and block.hash == hit.block_hash:
            verdict.refused.append(hit)
        else:
            undecided.append(hit.block_number)
    if undecided:
        verdict.wait_from = min(undecided)
        verdict.reason = f"a second source has not confirmed block {verdict.wait_from} yet"
        verdict.confirmed = [hit for hit in verdict.confirmed if hit.block_number < verdict.wait_from]
    return verdict
