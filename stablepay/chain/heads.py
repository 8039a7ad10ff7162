"""New heads as the node announces them: one `eth_subscribe("newHeads")` websocket per chain.

A notification only says *when* to scan: the scan itself reads everything from the cursor up and
re-checks every hash it relies on, so a dropped, silent or lying socket costs latency, never a block.
The follower reconnects with backoff, and the caller keeps polling as the fallback.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from stablepay.redact import ScrubbingLogger, redact_url, scrub

logger = logging.getLogger(__name__)

SUBSCRIBE = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]})
RECV_TIMEOUT_S = 1.0  # how often the follower looks at its stop flag
MAX_BACKOFF_S = 30.0


class SubscriptionError(Exception):
    """The node refused the subscription or sent something that is not a JSON-RPC message."""


def head_number(message: str | bytes, subscription: str) -> int | None:
    """The block number of a newHeads notification for `subscription`, else None (other traffic)."""
    try:
        payload = json.loads(message)
        params = payload.get("params") if isinstance(payload, dict) else None
        if not isinstance(params, dict) or params.get("subscription") != subscription:
            return None
        number = params["result"]["number"]
        return int(number, 16) if isinstance(number, str) and number.startswith("0x") else None
    except (ValueError, KeyError, TypeError) as exc:
        raise SubscriptionError(f"malformed notification: {exc}") from exc


class HeadFollower(threading.Thread):
    """Calls `on_head(key, number)` for each new head announced at `ws_url`, until `stop` is set."""

    def __init__(self, key: int, ws_url: str, on_head: Callable[[int, int], None], stop: threading.Event) -> None:
        super().__init__(name=f"heads-{key}", daemon=True)
        self.key, self.ws_url, self.on_head, self.stop = key, ws_url, on_head, stop
        self.connected = threading.Event()
        self._retired = threading.Event()

    def retire(self) -> None:
        """Stop this follower alone (its chain was removed or its URL changed)."""
        self._retired.set()

    def _done(self) -> bool:
        return self.stop.is_set() or self._retired.is_set()

    def run(self) -> None:
        backoff = 0.5
        while not self._done():
            try:
                self._follow()
                backoff = 0.5
            except (OSError, TimeoutError, ValueError, WebSocketException, SubscriptionError) as exc:
                logger.warning(
                    "newHeads %s: %s; reconnecting in %.1f s (polling meanwhile)",
                    redact_url(self.ws_url),  # a provider's key rides in the URL: host only
                    scrub(exc, [self.ws_url]),
                    backoff,
                )
            self.connected.clear()
            self.stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _follow(self) -> None:
        # websockets logs the handshake (path, Authorization) and every frame at DEBUG: through a scrubbing logger.
        quiet = ScrubbingLogger(logging.getLogger("websockets.client"), [self.ws_url])
        with connect(
            self.ws_url, open_timeout=5, close_timeout=1, proxy=None, compression=None, logger=quiet
        ) as socket:
            socket.send(SUBSCRIBE)
            answer = json.loads(socket.recv(timeout=5))
            subscription = answer.get("result") if isinstance(answer, dict) else None
            if not isinstance(subscription, str):
                raise SubscriptionError(f"eth_subscribe refused: {str(answer)[:200]}")
            self.connected.set()
            while not self._done():
                try:
                    message = socket.recv(timeout=RECV_TIMEOUT_S)
                except TimeoutError:
                    continue
                number = head_number(message, subscription)
                if number is not None:
                    self.on_head(self.key, number)
