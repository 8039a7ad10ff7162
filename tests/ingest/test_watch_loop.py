"""The long-running watcher on anvil: newHeads wakes a scan at once, polling covers a dead socket."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import redis

from stablepay.chain.heads import HeadFollower, SubscriptionError, head_number
from stablepay.ingest.watch_loop import WatchLoop
from stablepay.models import Chain, Merchant, PaymentRequest
from tests.support.local_chain import LocalChain, create_request
from tests.support.services import Anvil, free_port, redis_url

pytestmark = pytest.mark.django_db(transaction=True)


def ws_url(anvil: Anvil) -> str:
    return anvil.url.replace("http://", "ws://")


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@contextmanager
def running(loop: WatchLoop) -> Iterator[WatchLoop]:
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive()


def status(request: PaymentRequest) -> str:
    request.refresh_from_db()
    return request.status


def test_follower_reports_each_new_head(anvil: Anvil) -> None:
    heads: list[int] = []
    stop = threading.Event()
    follower = HeadFollower(7, ws_url(anvil), lambda key, number: heads.append(number), stop)
    follower.start()
    try:
        assert follower.connected.wait(10)
        start = int(anvil.rpc("eth_blockNumber"), 16)
        for _ in range(3):
            anvil.mine(1)
        assert wait_for(lambda: len(heads) >= 3, 5)
        assert heads[:3] == [start + 1, start + 2, start + 3]
    finally:
        stop.set()
        follower.join(timeout=5)


def test_notifications_are_parsed_strictly() -> None:
    params = {"subscription": "0xab", "result": {"number": "0x1f"}}
    message = json.dumps({"jsonrpc": "2.0", "method": "eth_subscription", "params": params})
    assert head_number(message, "0xab") == 31
    assert head_number(message, "0xother") is None  # another subscription's traffic
    assert head_number('{"jsonrpc":"2.0","id":5,"result":true}', "0xab") is None
    with pytest.raises(SubscriptionError):
        head_number("not json", "0xab")
    with pytest.raises(SubscriptionError):
        head_number('{"params":{"subscription":"0xab","result":{}}}', "0xab")


def test_a_new_head_wakes_a_scan_long_before_the_poll(local_chain: LocalChain, merchant: Merchant) -> None:
    Chain.objects.filter(chain_id=31337).update(ws_url=ws_url(local_chain.anvil))
    request = create_request(merchant, amount="10.00")
    loop = WatchLoop(interval=600)  # the poll runs once at start, then not for ten minutes
    with running(loop):
        assert wait_for(lambda: loop.followers and next(iter(loop.followers.values())).connected.is_set(), 10)
        passes = loop.passes
        local_chain.pay(request.pay_to, request_due(request))  # mines the block
        assert wait_for(lambda: status(request) == "confirming", 5)
        assert loop.heads_seen >= 1 and loop.passes > passes


def test_a_dead_socket_falls_back_to_polling(local_chain: LocalChain, merchant: Merchant) -> None:
    Chain.objects.filter(chain_id=31337).update(ws_url=f"ws://127.0.0.1:{free_port()}")  # nobody listens
    request = create_request(merchant, amount="10.00")
    loop = WatchLoop(interval=0.5)
    with running(loop):
        local_chain.pay(request.pay_to, request_due(request))
        assert wait_for(lambda: status(request) == "confirming", 10)
        assert loop.heads_seen == 0


def test_dispatch_mode_forwards_heads_and_never_scans_itself(local_chain: LocalChain, merchant: Merchant) -> None:
    Chain.objects.filter(chain_id=31337).update(ws_url=ws_url(local_chain.anvil))
    chain_pk = Chain.objects.get(chain_id=31337).pk
    request = create_request(merchant, amount="10.00")
    forwarded: list[Chain] = []
    loop = WatchLoop(interval=600, dispatch=forwarded.append)
    with running(loop):
        assert wait_for(lambda: loop.followers and next(iter(loop.followers.values())).connected.is_set(), 10)
        local_chain.pay(request.pay_to, request_due(request))
        local_chain.mine(1)
        assert wait_for(lambda: len(forwarded) >= 2, 20)  # generous: a loaded CI machine is slow, not wrong
    assert {chain.pk for chain in forwarded} == {chain_pk}
    assert status(request) == "open"  # the Celery workers scan, not the follower


def request_due(request: PaymentRequest) -> int:
    return int(request.amount_due_base_units)


def test_a_head_announced_mid_scan_gets_one_more_pass(local_chain: LocalChain, monkeypatch: pytest.MonkeyPatch) -> None:
    """Celery: a scan task that finds the chain locked leaves a mark; the holder then scans once more."""
    from stablepay import tasks
    from stablepay.ingest import watcher

    monkeypatch.setattr(tasks, "_redis", lambda: redis.Redis.from_url(redis_url()))
    chain_pk = Chain.objects.get(chain_id=31337).pk
    tasks._redis().delete(f"stablepay:scan-again:{chain_pk}")
    real_scan, passes = watcher.scan_chain, []

    def scan_chain(**kwargs: object) -> object:
        passes.append(1)
        if len(passes) == 1:
            tasks.scan_chain_task(chain_pk)  # a head arrives mid-scan: its task finds the lock taken
        return real_scan(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(watcher, "scan_chain", scan_chain)
    tasks.scan_chain_task(chain_pk)
    assert len(passes) == 2
    assert not tasks._redis().exists(f"stablepay:scan-again:{chain_pk}")


def test_the_beat_poll_stands_down_while_a_follower_announces_heads(
    local_chain: LocalChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stablepay import tasks

    monkeypatch.setattr(tasks, "_redis", lambda: redis.Redis.from_url(redis_url()))
    queued: list[int] = []
    monkeypatch.setattr(tasks.scan_chain_task, "delay", queued.append)
    monkeypatch.setattr(tasks.expire_requests_task, "delay", lambda: None)
    monkeypatch.setattr(tasks.deliver_webhooks_task, "delay", lambda: None)
    chain = local_chain.chain
    followed = f"stablepay:followed:{chain.pk}"
    tasks._redis().delete(followed)
    tasks.scan_all_chains_task()
    assert queued == [chain.pk]  # nobody follows the chain: the beat polls it
    tasks.forward_head(chain)
    assert queued == [chain.pk, chain.pk] and 0 < tasks._redis().ttl(followed) <= 3 * chain.block_time_seconds + 3
    tasks.scan_all_chains_task()
    assert queued == [chain.pk, chain.pk]  # a head came lately: the head's own scan is enough
    tasks._redis().delete(followed)  # three block times without a head
    tasks.scan_all_chains_task()
    assert queued == [chain.pk, chain.pk, chain.pk]
