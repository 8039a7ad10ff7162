"""The header chain's linking rules (stablepay.ingest.header_chain.advance) on an in-memory chain, counting the
calls a node would bill; tests/chain/test_rpc_cost.py runs the same situations on anvil."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import pytest

from stablepay.chain.reader import BlockRef, ChainError
from stablepay.ingest.header_chain import advance

WINDOW = 16


def _hash(*parts: object) -> str:
    return "0x" + hashlib.sha256(repr(parts).encode()).hexdigest()


class MemoryChain:
    """A canonical chain of headers; `reorg` replaces the top blocks at the same heights, as anvil_reorg does."""

    def __init__(self, height: int) -> None:
        self.headers: list[BlockRef] = []
        self.fork_id = 0
        self.calls = 0
        self.extend(height + 1)

    def extend(self, n: int) -> None:
        for _ in range(n):
            number = len(self.headers)
            parent = self.headers[-1].hash if self.headers else "0x" + "00" * 32
            self.headers.append(BlockRef(number, _hash(number, self.fork_id, parent), 1_700_000_000 + number, parent))

    def reorg(self, depth: int) -> None:
        self.fork_id += 1
        del self.headers[-depth:]
        self.extend(depth)

    @property
    def head(self) -> BlockRef:
        return self.headers[-1]

    def blocks(self, numbers: Sequence[int]) -> Mapping[int, BlockRef | None]:
        self.calls += len(numbers)
        return {n: self.headers[n] if n < len(self.headers) else None for n in numbers}


def synced(node: MemoryChain) -> dict[int, BlockRef]:
    return {h.number: h for h in node.headers[-WINDOW:]}


def test_a_new_head_that_links_costs_no_call_and_a_quiet_chain_none() -> None:
    node = MemoryChain(40)
    stored = synced(node)
    assert advance(stored, node.head, node, window=WINDOW, floor=0).new == []
    node.extend(1)
    step = advance(stored, node.head, node, window=WINDOW, floor=0)
    assert (step.new, step.fork, node.calls) == ([node.head], None, 0)


def test_several_new_blocks_are_read_in_one_batch_and_linked() -> None:
    node = MemoryChain(40)
    stored = synced(node)
    node.extend(3)
    step = advance(stored, node.head, node, window=WINDOW, floor=0)
    assert step.new == node.headers[-3:] and step.fork is None
    assert node.calls == 2  # the two headers between the stored tip and the head


@pytest.mark.parametrize("depth", [1, 3, 4, WINDOW - 1])
def test_a_reorg_walks_back_one_header_per_replaced_block(depth: int) -> None:
    node = MemoryChain(40)
    stored = synced(node)
    node.reorg(depth)  # same height, new hashes
    step = advance(stored, node.head, node, window=WINDOW, floor=0)
    assert step.fork == node.head.number - depth + 1
    assert step.new == node.headers[-depth:]
    assert node.calls == depth - 1 and step.walked == depth - 1


def test_a_reorg_then_a_new_block() -> None:
    node = MemoryChain(40)
    stored = synced(node)
    node.reorg(3)
    node.extend(1)
    step = advance(stored, node.head, node, window=WINDOW, floor=0)
    assert step.fork == node.head.number - 3 and step.new == node.headers[-4:]
    assert node.calls == 3


@pytest.mark.parametrize("floor", [0, 40, 10**6])  # the first scanned block bounds only the first headers
def test_a_gap_wider_than_the_window_checks_the_stored_tip_once(floor: int) -> None:
    node = MemoryChain(40)
    stored = synced(node)
    node.extend(WINDOW + 10)
    step = advance(stored, node.head, node, window=WINDOW, floor=floor)
    assert step.fork is None and step.new == node.headers[-WINDOW:]
    assert node.calls == WINDOW - 1 + 1  # the window's headers below the head, and the old tip


def test_a_reorg_hidden_in_a_gap_wider_than_the_window_is_found() -> None:
    node = MemoryChain(40)
    stored = synced(node)
    node.reorg(2)  # while no watcher ran
    node.extend(WINDOW + 10)
    step = advance(stored, node.head, node, window=WINDOW, floor=0)
    assert step.fork == 39  # the old tip (40) and the block below it were replaced
    assert step.new == node.headers[-WINDOW:]


def test_a_reorg_deeper_than_the_stored_headers_forks_at_the_lowest_one() -> None:
    node = MemoryChain(40)
    stored = synced(node)
    node.reorg(WINDOW + 5)
    step = advance(stored, node.head, node, window=WINDOW, floor=0)
    assert step.fork == min(stored)


def test_the_first_pass_reads_the_headers_from_the_start_block_only() -> None:
    node = MemoryChain(40)
    step = advance({}, node.head, node, window=WINDOW, floor=38)
    assert step.new == node.headers[38:] and node.calls == 2
    step = advance({}, node.head, node, window=WINDOW, floor=0)
    assert step.new == node.headers[-WINDOW:]


def test_a_head_behind_the_stored_tip_is_an_error() -> None:
    node = MemoryChain(40)
    stored = synced(node)
    behind = node.headers[-3]
    with pytest.raises(ChainError, match="behind"):
        advance(stored, behind, node, window=WINDOW, floor=0)


def test_a_chain_that_changes_while_its_headers_are_read_is_an_error() -> None:
    node = MemoryChain(40)
    stored = synced(node)
    node.extend(3)
    head = node.head
    node.reorg(2)  # the node moves between the head and the headers below it
    with pytest.raises(ChainError, match="changed"):
        advance(stored, head, node, window=WINDOW, floor=0)
