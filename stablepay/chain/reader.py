"""The ChainReader interface the watcher depends on, the frozen records it returns, and the SecondSource a
reader over several nodes offers for corroborating a credit (stablepay.chain.quorum)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"

# Given every recipient (lower-case) in a getLogs answer, the ones whose logs the caller wants.
Keep = Callable[[set[str]], Collection[str]]


@dataclass(frozen=True, slots=True)
class BlockRef:
    """A block header as the watcher keeps it: enough to link a chain of headers by parent hash."""

    number: int
    hash: str
    timestamp: int  # unix seconds
    parent_hash: str = ""


@dataclass(frozen=True, slots=True)
class TransferLog:
    """An ERC-20 Transfer event; addresses are lower-case hex with 0x."""

    token: str
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    block_timestamp: int | None
    from_address: str
    to_address: str
    value: int


class ChainError(Exception):
    """The node failed, timed out or answered nonsense; nothing from this call may be used."""


class RangeTooLarge(ChainError):
    """The node refused the block range; `suggested` is the largest span it proposed, if any."""

    def __init__(self, message: str, suggested: int | None = None) -> None:
        super().__init__(message)
        self.suggested = suggested


class SecondSource(Protocol):
    """Another node than the one that gave the last answer, asked about the same logs (stablepay.chain.quorum)."""

    def second_opinion(
        self, tokens: Sequence[str], from_block: int, to_block: int, heights: Sequence[int]
    ) -> tuple[int, list[TransferLog], dict[int, BlockRef | None]]: ...

    def second_opinion_at(
        self, tokens: Sequence[str], block: BlockRef, expected: Collection[tuple[str, int]]
    ) -> tuple[list[TransferLog], bool]: ...


class ChainReader(Protocol):
    """What the watcher asks a node. Each method's docstring says what a provider bills for it."""

    def second_source(self) -> SecondSource | None:
        """Where a log this reader reported is corroborated before it is credited, or None when it reads a
        single node (one node's word then stands): no call."""
        ...

    def head(self) -> BlockRef:
        """The latest block's header: one call."""
        ...

    def blocks(self, numbers: Sequence[int]) -> Mapping[int, BlockRef | None]:
        """The headers at the given heights (None where the node has none): one call per height."""
        ...

    def finalized(self) -> BlockRef | None:
        """The header under the finalized tag: one call."""
        ...

    def transfer_logs(
        self, tokens: Sequence[str], from_block: int, to_block: int, keep: Keep | None = None
    ) -> tuple[list[TransferLog], BlockRef]:
        """Every Transfer log of the given token contracts in the range (only those paying an address
        `keep` picks, when given), and the header of `to_block` from the same node: two calls."""
        ...

    def block_transfer_logs(
        self, tokens: Sequence[str], block: BlockRef, keep: Keep | None = None
    ) -> list[TransferLog]:
        """The Transfer logs of exactly that block, asked by its hash (EIP-234): one call. A node that
        does not have that block answers an error, never another block's logs."""
        ...
