"""P1's baseline: the watcher's RPC pattern before issue 14, kept here as a self-contained scanner.

The design of `stablepay/ingest/watcher.py` and `stablepay/chain/rpc.py` as of the commit before the rewrite
(a354f50), reduced to what decides its JSON-RPC calls, with its state in memory instead of the Django
tables. Every pass:

1. snapshot, one batch: `eth_getBlockByNumber("latest")` plus `eth_getBlockByNumber(n)` for every stored
   block, i.e. the blocks holding transfers inside the 128-block reorg window, the last tip, and the
   block of any transfer still unconfirmed however deep; a stored hash the node no longer has is a reorg:
   the transfers from the fork point up are orphaned and the cursor goes back to just above the highest
   stored block that still matches (or a whole window below the fork);
2. from the cursor to the head in adaptive chunks (doubling after a range with fewer than 1,000 logs, up
   to 10,000 blocks, at most 100 chunks per pass), one batch per chunk:
   `[eth_getLogs(all tokens, range), eth_getBlockByNumber(range end)]`;
3. per chunk, one batch of `eth_getBlockByNumber` for the blocks of hits whose log lacks
   `blockTimestamp`, and the chunk's end header when the chunk ends below the head;
4. transfers `confirmations` deep in a block whose hash was just re-checked become confirmed; blocks
   outside the window are forgotten, except the newest and those of unconfirmed transfers.

It makes its calls itself with `requests` (a batch is one HTTP request of several JSON-RPC calls), so a
counting proxy between it and the node sees exactly what it sends. Single node only: the old design's
second-source corroboration (several `rpc_urls`) and the `finalized`-tag mode are not reproduced; P1
runs neither.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
REORG_WINDOW = 128  # max(128, 4 * confirmations) for confirmations <= 32
MAX_CHUNK = 10_000
MAX_CHUNKS_PER_PASS = 100
GROW_BELOW_LOGS = 1_000
DEFAULT_CHUNK = 2_000  # the Cursor.chunk_size default of that version
_RANGE_ERRORS = re.compile(
    r"block range|range too (large|wide)|too many (results|blocks|logs)|more than \d+ results|"
    r"response size|limit exceeded|query timeout|exceed(s|ed)? .*range",
    re.IGNORECASE,
)

SEEN, CONFIRMED, ORPHANED = "seen", "confirmed", "orphaned"


class BaselineError(RuntimeError):
    pass


class RangeRefused(BaselineError):
    pass


@dataclass(frozen=True, slots=True)
class Header:
    number: int
    hash: str
    timestamp: int


@dataclass(slots=True)
class Recorded:
    """A stored transfer (the old `Transfer` row, reduced)."""

    to: str
    value: int
    block_number: int
    block_hash: str
    state: str = SEEN


@dataclass
class PassResult:
    head: int = 0
    scanned: int = 0
    recorded: int = 0
    orphaned: int = 0
    confirmed: int = 0
    reorg_depth: int = 0
    chunks: int = 0
    calls: Counter[str] = field(default_factory=Counter)  # JSON-RPC calls sent, by method
    http: int = 0


def _header(raw: Any) -> Header | None:
    if raw is None:
        return None
    return Header(int(raw["number"], 16), raw["hash"].lower(), int(raw["timestamp"], 16))


class BaselineScanner:
    """One chain, one node, one process: the pre-issue-14 scanner with its state in memory."""

    def __init__(
        self,
        url: str,
        tokens: list[str],
        watched: set[str],
        *,
        confirmations: int = 3,
        chunk: int = DEFAULT_CHUNK,
        timeout: float = 60.0,
    ) -> None:
        self.url = url
        self.tokens = [t.lower() for t in tokens]
        self.watched = watched  # lower-case deposit addresses (the old design asked the database)
        self.confirmations = confirmations
        self.window = max(REORG_WINDOW, 4 * confirmations)
        self.session = requests.Session()
        self.timeout = timeout
        # State the old design kept in the Block, Cursor and Transfer tables.
        self.blocks: dict[int, str] = {}  # stored block hashes
        self.start_block: int | None = None
        self.scanned: int | None = None  # the cursor
        self.chunk, self.ceiling = chunk, MAX_CHUNK
        self.transfers: dict[tuple[str, int], Recorded] = {}
        self.transfer_blocks: Counter[int] = Counter()  # block number -> transfers recorded in it
        self.unconfirmed: set[tuple[str, int]] = set()
        self._result = PassResult()

    # JSON-RPC ---------------------------------------------------------------------------------
    def _batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        payload: Any = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        self._result.http += 1
        self._result.calls.update(m for m, _ in calls)
        answer = self.session.post(self.url, json=payload, timeout=self.timeout)
        if answer.status_code != 200:
            raise BaselineError(f"HTTP {answer.status_code}")
        items = answer.json()
        if not isinstance(items, list) or len(items) != len(calls):
            raise BaselineError("malformed batch answer")
        by_id = {item.get("id"): item for item in items}
        out = []
        for i in range(len(calls)):
            item = by_id[i]
            if "error" in item:
                message = str(item["error"].get("message", item["error"]))
                if _RANGE_ERRORS.search(message):
                    raise RangeRefused(message)
                raise BaselineError(f"JSON-RPC error: {message[:200]}")
            out.append(item["result"])
        return out

    # one pass ---------------------------------------------------------------------------------
    def scan(self) -> PassResult:
        result = self._result = PassResult()
        stored = sorted(self.blocks)
        answers = self._batch(
            [("eth_getBlockByNumber", ["latest", False])] + [("eth_getBlockByNumber", [hex(n), False]) for n in stored]
        )
        head = _header(answers[0])
        if head is None:
            raise BaselineError("the node has no latest block")
        known = {n: _header(raw) for n, raw in zip(stored, answers[1:], strict=True)}
        result.head = head.number
        if self.scanned is None:  # the first pass starts at the head
            self.start_block = head.number
            self.scanned = max(head.number - 1, 0)
        if head.number < self.scanned:
            raise BaselineError(f"the node's head {head.number} is behind block {self.scanned}, already scanned")
        if any(known[n] is None for n in stored if n <= head.number):
            raise BaselineError("the node has no block at a height below its own head")
        changed = [n for n in stored if (b := known[n]) is None or b.hash != self.blocks[n]]
        fork = min(changed) if changed else None
        if fork is not None:
            result.reorg_depth = head.number - fork + 1
            below = [n for n in stored if n < fork]
            rescan_from = max(self.start_block or 0, max(below) + 1 if below else fork - self.window)
            self._rollback(fork, rescan_from)
        verified = {n for n in stored if fork is None or n < fork}
        self._scan_range(head)
        if self.blocks.get(head.number) == head.hash:
            verified.add(head.number)
        self._confirm(head.number - self.confirmations + 1, verified)
        self._prune(head.number)
        result.scanned = self.scanned
        return result

    def _rollback(self, fork: int, rescan_from: int) -> None:
        for key, row in self.transfers.items():
            if row.block_number >= fork and row.state != ORPHANED:
                row.state = ORPHANED
                self.unconfirmed.discard(key)
                self._result.orphaned += 1
        for n in [n for n in self.blocks if n >= fork]:
            del self.blocks[n]
        assert self.scanned is not None
        if self.scanned >= rescan_from:
            self.scanned = rescan_from - 1

    def _scan_range(self, head: Header) -> None:
        assert self.scanned is not None
        scanned, chunk = self.scanned, self.chunk
        for _ in range(MAX_CHUNKS_PER_PASS):
            if scanned >= head.number:
                break
            start, end = scanned + 1, min(head.number, scanned + chunk)
            logs_params = {
                "address": self.tokens,
                "topics": [TRANSFER_TOPIC],
                "fromBlock": hex(start),
                "toBlock": hex(end),
            }
            try:
                logs, last = self._batch([("eth_getLogs", [logs_params]), ("eth_getBlockByNumber", [hex(end), False])])
            except RangeRefused:
                span = end - start + 1
                if span == 1:
                    raise
                chunk = span // 2
                self.ceiling = min(self.ceiling, chunk)
                continue
            if last is None:
                raise BaselineError(f"the node has no block {end} yet")
            self._result.chunks += 1
            hits = [log for log in logs if self._is_hit(log)]
            blocks = {
                int(h["blockNumber"], 16): Header(
                    int(h["blockNumber"], 16), h["blockHash"].lower(), int(h["blockTimestamp"], 16)
                )
                for h in hits
                if h.get("blockTimestamp") is not None
            }
            missing = sorted({int(h["blockNumber"], 16) for h in hits} - set(blocks))
            if missing:
                for n, raw in zip(
                    missing, self._batch([("eth_getBlockByNumber", [hex(n), False]) for n in missing]), strict=True
                ):
                    block = _header(raw)
                    if block is None:
                        raise BaselineError(f"block {n} vanished while its logs were read")
                    blocks[n] = block
            for h in hits:
                if blocks[int(h["blockNumber"], 16)].hash != h["blockHash"].lower():
                    raise BaselineError(f"block {int(h['blockNumber'], 16)} changed while its logs were read")
            tip = head if end == head.number else _header(self._batch([("eth_getBlockByNumber", [hex(end), False])])[0])
            if tip is None:
                raise BaselineError(f"block {end} vanished during the scan")
            blocks.setdefault(tip.number, tip)
            self._record(hits)
            for block in blocks.values():
                self.blocks[block.number] = block.hash
            if len(logs) < GROW_BELOW_LOGS:
                chunk = min(self.ceiling, chunk * 2)
            scanned = self.scanned = end
            self.chunk = chunk

    def _is_hit(self, log: dict[str, Any]) -> bool:
        topics = log["topics"]
        if len(topics) != 3 or topics[0].lower() != TRANSFER_TOPIC or log.get("removed"):
            return False
        return log["address"].lower() in self.tokens and "0x" + topics[2][26:].lower() in self.watched

    def _record(self, hits: list[dict[str, Any]]) -> None:
        for h in hits:
            key = (h["transactionHash"].lower(), int(h["logIndex"], 16))
            number, block_hash = int(h["blockNumber"], 16), h["blockHash"].lower()
            existing = self.transfers.get(key)
            if existing is not None and existing.state != ORPHANED and existing.block_hash == block_hash:
                continue
            if existing is not None:
                self.transfer_blocks[existing.block_number] -= 1
            self.transfers[key] = Recorded("0x" + h["topics"][2][26:].lower(), int(h["data"], 16), number, block_hash)
            self.transfer_blocks[number] += 1
            self.unconfirmed.add(key)
            self._result.recorded += 1

    def _confirm(self, depth_ok: int, verified: set[int]) -> None:
        for key in list(self.unconfirmed):
            row = self.transfers[key]
            if row.block_number <= depth_ok and row.block_number in verified:
                row.state = CONFIRMED
                self.unconfirmed.discard(key)
                self._result.confirmed += 1

    def _prune(self, head: int) -> None:
        floor = head - self.window
        unconfirmed = {self.transfers[key].block_number for key in self.unconfirmed}
        candidates = [n for n in self.blocks if n not in unconfirmed]
        if not candidates:
            return
        newest = max(candidates)
        for n in candidates:
            if n != newest and (n < floor or self.transfer_blocks[n] <= 0):
                del self.blocks[n]
