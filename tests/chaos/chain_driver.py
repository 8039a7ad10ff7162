"""The suite's hand on the chain: payments signed here (kept raw for re-inclusion), a miner thread,
stalls, and `anvil_reorg` that re-includes or drops the payments in the replaced blocks.

Every call that changes the chain holds one lock, so the miner, a payment and a reorg never interleave.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

from stablepay.dev import chain as devchain
from tests.support.services import Anvil


@dataclass
class Sent:
    tx_hash: str
    raw: str
    token: str  # contract address
    to: str
    amount: int
    sender: int
    dropped: bool = False  # removed by a reorg (the shopper may send again: a new Sent)


@dataclass
class ReorgOutcome:
    depth: int
    reincluded: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


class ChainDriver:
    def __init__(self, anvil: Anvil, *, mine_every_s: float) -> None:
        self.anvil = anvil
        self.w3 = anvil.w3
        self.lock = threading.Lock()
        self.mine_every_s = mine_every_s
        self.sent: dict[str, Sent] = {}
        self._stalled = threading.Event()
        self._halt = threading.Event()
        self.errors: list[BaseException] = []
        self._miner = threading.Thread(target=self._mine_forever, name="miner", daemon=True)

    def start(self) -> None:
        self._miner.start()

    def stop(self) -> None:
        self._halt.set()
        self._miner.join(timeout=10)

    def _mine_forever(self) -> None:
        while not self._halt.wait(self.mine_every_s):
            if self._stalled.is_set():
                continue
            try:
                with self.lock:
                    self.anvil.mine(1)
            except Exception as exc:  # surfaced by the test
                self.errors.append(exc)

    def head(self) -> int:
        return int(self.w3.eth.block_number)

    def pay(self, token: str, to: str, amount: int, *, sender: int) -> Sent:
        with self.lock:
            raw = devchain.send_transfer_raw(self.w3, token, to, amount, sender_index=sender)
            tx_hash = self.w3.to_hex(self.w3.eth.send_raw_transaction(raw))
        sent = Sent(tx_hash.lower(), raw, token, to, amount, sender)
        self.sent[sent.tx_hash] = sent
        return sent

    def stall(self) -> None:
        """No more blocks: the miner pauses and transactions wait in the mempool."""
        with self.lock:
            self._stalled.set()
            self.anvil.set_automine(False)

    def resume(self) -> None:
        with self.lock:
            self.anvil.set_automine(True)
            self.anvil.mine(1)
            self._stalled.clear()

    def mine(self, n: int) -> None:
        with self.lock:
            self.anvil.mine(n)

    def reorg(self, depth: int, rng: random.Random, *, drop_share: float) -> ReorgOutcome:
        """Replace the last `depth` blocks. Each sender's payments in them are either all re-included (in
        their order, at random offsets) or all dropped: they are its newest, so no nonce gap follows."""
        with self.lock:
            head = self.head()
            depth = min(depth, head - 1)
            mine: list[Sent] = []
            for number in range(head - depth + 1, head + 1):
                block = self.w3.eth.get_block(number, full_transactions=False)
                for tx in block["transactions"]:
                    sent = self.sent.get(self.w3.to_hex(tx).lower())
                    if sent is None:
                        raise AssertionError(f"block {number} holds a transaction the suite did not send")
                    mine.append(sent)
            senders = sorted({s.sender for s in mine})
            dropping = {s for s in senders if rng.random() < drop_share}
            kept = [s for s in mine if s.sender not in dropping]
            offsets = sorted(rng.randrange(depth) for _ in kept)
            self.anvil.reorg(depth, [(s.raw, offset) for s, offset in zip(kept, offsets, strict=True)])
            outcome = ReorgOutcome(depth)
            for s in mine:
                if s.sender in dropping:
                    s.dropped = True
                    outcome.dropped.append(s.tx_hash)
                else:
                    outcome.reincluded.append(s.tx_hash)
            return outcome

    def logs(self, tokens: list[str], to_block: int) -> list[dict[str, Any]]:
        """Every Transfer log of `tokens` up to `to_block`, straight from anvil (no proxy)."""
        topic = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
        answer: list[dict[str, Any]] = self.anvil.rpc(
            "eth_getLogs", [{"address": tokens, "topics": [topic], "fromBlock": "0x0", "toBlock": hex(to_block)}]
        )
        return answer
