"""The one place a chain reader is made: every module that talks to a chain's nodes gets its reader here.

`reader_for_chain(chain)` reads a registered chain's nodes (its `rpc_urls`, failing over in order, each
answer corroborated by a second node when there are several: stablepay.chain.quorum) with the configured
RPC_TIMEOUT_SECONDS. `shared=True` gives the process's long-lived reader for those nodes, which keeps its
HTTP connections open from one pass to the next (the watcher's). `reader_for_urls` is for nodes not
registered as a chain (yet): the setup file's first head, /healthz figures, a bundle checked against the
nodes an auditor names. Node URLs never appear in a reader's errors or logs (stablepay.redact).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from stablepay.chain.rpc import RpcChainReader
from stablepay.conf import app_settings
from stablepay.models import Chain

__all__ = ["reader_for_chain", "reader_for_urls"]


def reader_for_urls(urls: Sequence[str], *, timeout: float | None = None) -> RpcChainReader:
    """A new reader over `urls` (ValueError when there is none); `timeout` defaults to RPC_TIMEOUT_SECONDS."""
    return RpcChainReader(list(urls), timeout=app_settings.RPC_TIMEOUT_SECONDS if timeout is None else timeout)


def reader_for_chain(chain: Chain, *, shared: bool = False) -> RpcChainReader:
    """The reader for `chain`'s nodes: a new one, or (`shared`) this process's long-lived one."""
    if shared:
        return _shared_reader(tuple(chain.rpc_urls), app_settings.RPC_TIMEOUT_SECONDS)
    return reader_for_urls(chain.rpc_urls)


@lru_cache(maxsize=64)
def _shared_reader(urls: tuple[str, ...], timeout: float) -> RpcChainReader:
    return reader_for_urls(urls, timeout=timeout)
