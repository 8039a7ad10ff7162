"""GET /healthz's chain figures: the watcher's cursor next to each node's own head, read live.

The cursor's `head_block` is the head the watcher saw on its last pass, so head - scanned reads 0
right after every pass, even when the watcher has stopped since. The lag that matters is the node's
head now minus what the ledger has read, so /healthz asks each chain's nodes for `eth_blockNumber`
(short timeout, failing over like the watcher) and caches the answer for a second per process: a load
balancer polling every few seconds costs at most one call per chain and second. A node that does not
answer leaves the last head the watcher saw, and says why: naming each node by scheme and host only
(stablepay.redact), since /healthz answers anyone and a provider's API key rides in its URL.
"""

from __future__ import annotations

import threading
import time

from stablepay.chain.factory import reader_for_urls
from stablepay.chain.reader import ChainError
from stablepay.ledger import selectors
from stablepay.models import Chain
from stablepay.redact import scrub

NODE_TIMEOUT_SECONDS = 2.0
CACHE_SECONDS = 1.0

_cache: dict[tuple[str, ...], tuple[float, int | None, str]] = {}
_lock = threading.Lock()


def node_head(rpc_urls: list[str]) -> tuple[int | None, str]:
    """(the head a chain's nodes report now, "") or (None, why not)."""
    key = tuple(rpc_urls)
    now = time.monotonic()
    with _lock:
        cached = _cache.get(key)
    if cached and now - cached[0] < CACHE_SECONDS:
        return cached[1], cached[2]
    try:
        head, error = reader_for_urls(rpc_urls, timeout=NODE_TIMEOUT_SECONDS).head_number(), ""
    except (ChainError, ValueError) as exc:
        head, error = None, scrub(exc, rpc_urls)[:200]  # public: a node URL's key never appears
    with _lock:
        _cache[key] = (now, head, error)
    return head, error


def chain_health() -> list[dict[str, object]]:
    """Per chain: `head` (the node's, live), `scanned`, `lag_blocks`, and the watcher's last pass."""
    # The nodes' heads first, then the cursors: a block mined while this request waits for the CPU
    # between the two reads is not counted as lag the watcher could not yet have closed.
    urls = dict(Chain.objects.values_list("chain_id", "rpc_urls"))
    heads = {chain_id: node_head(list(chain_urls)) for chain_id, chain_urls in urls.items()}
    rows = selectors.chain_health()
    for row in rows:
        chain_id = row["chain_id"]
        assert isinstance(chain_id, int)
        head, error = heads.get(chain_id) or node_head(list(urls[chain_id]))
        scanned = row["scanned"]
        row["node_error"] = error
        if head is not None:
            row["head"] = head
            row["lag_blocks"] = max(head - scanned, 0) if isinstance(scanned, int) else None
    return rows


def clear_cache() -> None:
    with _lock:
        _cache.clear()
