"""The long-running watcher behind `stablepay_scan`: scan a chain the moment its node announces a
block, and poll on the scan interval as the fallback.

Chains with a `ws_url` get a newHeads follower (stablepay.chain.heads); a head wakes the loop, which
scans that chain at once. A chain is polled when it was not scanned for an interval, or, while its
follower is connected, for three block times (a dropped or silent socket costs latency, never a
block). Embedded, the loop scans in-process and also runs the expiry sweep and the webhook deliveries
every interval. With `dispatch` (tasks.forward_head), it only forwards heads to the Celery workers,
and Celery beat keeps the fallback polling and the housekeeping.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from django.db import close_old_connections, connection

from stablepay.chain.factory import reader_for_chain
from stablepay.chain.heads import HeadFollower
from stablepay.chain.reader import ChainError
from stablepay.ingest import watcher
from stablepay.models import Chain

logger = logging.getLogger(__name__)

STOP_CHECK_S = 0.5


class WatchLoop:
    def __init__(self, *, interval: float, dispatch: Callable[[Chain], object] | None = None) -> None:
        self.interval = interval
        self.dispatch = dispatch  # e.g. tasks.forward_head; None: scan in this process
        self.wakeups: queue.Queue[int] = queue.Queue()
        self.chains: dict[int, Chain] = {}
        self.followers: dict[int, HeadFollower] = {}
        self.last_scan: dict[int, float] = {}
        self.heads_seen = 0
        self.passes = 0

    def run(self, stop: threading.Event) -> None:
        next_housekeeping = 0.0
        try:
            while not stop.is_set():
                if time.monotonic() >= next_housekeeping:
                    self._refresh_chains(stop)
                    if self.dispatch is None:
                        self._housekeeping()
                    next_housekeeping = time.monotonic() + self.interval
                woken = self._wait(min(next_housekeeping, self._next_poll()))
                due = woken | self._poll_due()
                for chain_pk in sorted(due):
                    self._scan(chain_pk)
        finally:
            stop.set()  # the followers share the flag
            for follower in self.followers.values():
                follower.join(timeout=2)
            connection.close()

    def _poll_period(self, chain_pk: int) -> float:
        follower = self.followers.get(chain_pk)
        if follower is not None and follower.connected.is_set():
            return max(self.interval, 3.0 * self.chains[chain_pk].block_time_seconds)
        return self.interval

    def _next_poll(self) -> float:
        if self.dispatch is not None or not self.chains:
            return float("inf")
        return min(self.last_scan.get(pk, 0.0) + self._poll_period(pk) for pk in self.chains)

    def _poll_due(self) -> set[int]:
        if self.dispatch is not None:
            return set()
        now = time.monotonic()
        return {pk for pk in self.chains if now - self.last_scan.get(pk, 0.0) >= self._poll_period(pk)}

    def _wait(self, until: float) -> set[int]:
        """The chains announced a head before `until` (monotonic), all of them once the first arrives."""
        try:  # wake at least every STOP_CHECK_S to notice the stop flag
            woken = {self.wakeups.get(timeout=min(STOP_CHECK_S, max(0.0, until - time.monotonic())))}
        except queue.Empty:
            return set()
        while True:
            try:
                woken.add(self.wakeups.get_nowait())
            except queue.Empty:
                return {pk for pk in woken if pk in self.chains}

    def _on_head(self, chain_pk: int, number: int) -> None:
        self.heads_seen += 1
        self.wakeups.put(chain_pk)

    def _scan(self, chain_pk: int) -> None:
        self.last_scan[chain_pk] = time.monotonic()
        self.passes += 1
        chain = self.chains[chain_pk]
        if self.dispatch is not None:
            self.dispatch(chain)
            return
        try:
            watcher.scan_chain(chain=chain, reader=reader_for_chain(chain, shared=True))
        except ChainError as exc:
            watcher.record_error(chain, exc)
        except Exception:  # the loop must survive a bad pass; the next one retries
            logger.exception("chain %s: scan failed", chain.chain_id)
        finally:
            close_old_connections()

    def _housekeeping(self) -> None:
        try:
            watcher.housekeeping()
        except Exception:
            logger.exception("expiry sweep or webhook delivery failed")
        finally:
            close_old_connections()

    def _refresh_chains(self, stop: threading.Event) -> None:
        """Pick up chains registered or changed since the last look, and (re)start their followers."""
        try:
            self.chains = {chain.pk: chain for chain in Chain.objects.all()}
        except Exception:
            logger.exception("could not load the chains; keeping the last known ones")
            return
        finally:
            close_old_connections()
        for pk, follower in list(self.followers.items()):
            if pk not in self.chains or self.chains[pk].ws_url != follower.ws_url:
                follower.retire()
                del self.followers[pk]
        for pk, chain in self.chains.items():
            if chain.ws_url and pk not in self.followers:
                follower = HeadFollower(pk, chain.ws_url, self._on_head, stop)
                follower.start()
                self.followers[pk] = follower
