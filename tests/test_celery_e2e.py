"""Celery mode end to end: a real worker process (with embedded beat), Redis, PostgreSQL and anvil.

50 shoppers pay; halfway through, the worker is killed with SIGKILL while it holds the scan lock (in
the middle of a pass) and a new one is started. Every request must end `paid` exactly once, with one
transfer each, and `stablepay_audit` over the whole chain must find no difference.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.db import connection
from rest_framework.test import APIClient

from stablepay.models import Event, Merchant, PaymentRequest, Status, Transfer, TransferState
from tests.support.local_chain import LocalChain, create_request, subprocess_database_url
from tests.support.services import REPO_ROOT, redis_url

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SHOPPERS = 50
KILL_FROM = 20  # from this payment on, the worker is killed inside its next suitable pass...
KILL_AFTER = 25  # ...and restarted (after 1 s) before this one is sent
SEND_GAP_S = 0.2  # shoppers arrive one after another, not in one burst
MINE_EVERY_S = 0.3
SCAN_INTERVAL_S = "0.5"
WORKER_READY_S = 20
ALL_PAID_WITHIN_S = 60  # after the last payment is sent
PAID_WITHIN_S = 15  # any payment, sent -> paid_at, including those in flight when the worker died (seen: ~6 s)
ISOLATED_REDIS_DB = 15


def _redis_db_url(db: int) -> str:
    parts = urlsplit(redis_url())
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


@pytest.fixture
def isolated_redis() -> Iterator[redis.Redis]:
    """A Redis logical database of its own for the worker's broker, locks and cache."""
    client = redis.Redis.from_url(_redis_db_url(ISOLATED_REDIS_DB))
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=subprocess_database_url(),
        REDIS_URL=_redis_db_url(ISOLATED_REDIS_DB),
        STABLEPAY_SCAN_INTERVAL=SCAN_INTERVAL_S,
        PYTHONPATH=str(REPO_ROOT),
        DJANGO_SETTINGS_MODULE="shop.settings",
        PYTHONUNBUFFERED="1",
    )
    return env


class Worker:
    """`celery -A shop worker --beat` in its own process group (the embedded beat is a child process)."""

    def __init__(self, env: dict[str, str], log_path: Path, schedule: Path) -> None:
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("ab")
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "shop",
                "worker",
                "--beat",
                "--pool=solo",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
                "-l",
                "INFO",
                "-s",
                str(schedule),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.ready_after_s = self._wait_ready(started)

    def _wait_ready(self, started: float) -> float:
        while time.monotonic() - started < WORKER_READY_S:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.tail()}")
            if " ready." in self.log_path.read_text(errors="replace"):
                return time.monotonic() - started
            time.sleep(0.05)
        raise AssertionError(f"worker not ready within {WORKER_READY_S}s:\n{self.tail()}")

    def kill9(self) -> None:
        """SIGKILL the worker and its beat child: no shutdown code runs, nothing is acked or released."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        try:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=10)
            os.killpg(self.proc.pid, signal.SIGKILL)  # also an orphaned beat child, if any
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self._log.close()

    def tail(self, lines: int = 80) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


class Miner(threading.Thread):
    """Keeps the chain moving (one block every MINE_EVERY_S), so confirmations come without payments."""

    def __init__(self, chain: LocalChain) -> None:
        super().__init__(name="miner", daemon=True)
        self.chain = chain
        self.halt = threading.Event()
        self.errors: list[BaseException] = []

    def run(self) -> None:
        while not self.halt.wait(MINE_EVERY_S):
            try:
                self.chain.mine(1)
            except Exception as exc:  # surfaced by the test
                self.errors.append(exc)

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=5)


@dataclass
class Shopper:
    request_id: str
    pay_to: str
    token: str
    due: int
    sender: int
    tx_hash: str = ""
    sent_at: float = 0.0  # monotonic
    sent_wall: float = 0.0  # epoch seconds, to compare with the server's paid_at
    paid_seen_at: float | None = None


def _poll_paid(shoppers: list[Shopper]) -> int:
    """Note when each request is first seen `paid`; returns how many are paid."""
    waiting = {s.request_id: s for s in shoppers if s.paid_seen_at is None}
    if waiting:
        now = time.monotonic()
        paid = PaymentRequest.objects.filter(pk__in=list(waiting), status=Status.PAID).values_list("pk", flat=True)
        for pk in paid:
            waiting[str(pk)].paid_seen_at = now
    return sum(1 for s in shoppers if s.paid_seen_at is not None)


def _open_requests(local_chain: LocalChain, api: APIClient) -> list[Shopper]:
    """Half through the REST API, half through the service a store's checkout calls; HKD and MOP
    prices; HKDX and (every fifth) USDC."""
    acme = Merchant.objects.get(slug="acme")
    shoppers = []
    for i in range(SHOPPERS):
        currency = "HKD" if i % 2 == 0 else "MOP"
        token = "USDC" if i % 5 == 0 else "HKDX"
        amount = f"{(i * 37) % 500 + 1}.{(i * 13) % 100:02d}"
        reference = f"E2E-{i:03d}"
        if i % 2 == 0:
            body = {"order_reference": reference, "amount": amount, "currency": currency, "chain_id": 31337}
            response = api.post(
                "/api/v1/payment-requests/", json.dumps({**body, "token": token}), content_type="application/json"
            )
            assert response.status_code == 201, response.content
            data = response.json()
            shopper = Shopper(data["id"], data["pay_to"], token, int(data["amount_due_base_units"]), 1 + i % 3)
        else:
            pr = create_request(acme, amount=amount, currency=currency, token=token, order_reference=reference)
            shopper = Shopper(str(pr.pk), pr.pay_to, token, int(pr.amount_due_base_units), 1 + i % 3)
        shoppers.append(shopper)
    return shoppers


class Killer(threading.Thread):
    """SIGKILLs the worker inside a pass (while it holds the chain's scan lock) with payments in flight.

    For the first `aim_s` it waits for the most delicate moment: a transfer already promoted to
    `confirmed` whose request that pass has not reconciled yet. After that, any moment inside a pass
    while some sent payment is not yet `paid` will do."""

    def __init__(self, worker: Worker, locks: redis.Redis, lock_key: str, shoppers: list[Shopper]) -> None:
        super().__init__(name="killer", daemon=True)
        self.worker, self.locks, self.lock_key, self.shoppers = worker, locks, lock_key, shoppers
        self.aim_s, self.give_up_s = 1.0, 10.0
        self.killed_at: float | None = None
        self.report: dict[str, Any] = {}
        self.halt = threading.Event()

    def run(self) -> None:
        try:
            self.report["moment"] = self._hunt()
            self.killed_at = time.monotonic()
            self.report["confirmed_but_unreconciled_at_death"] = self._unreconciled().count()
            self.report["in_flight_at_death"] = self._in_flight().count()
        finally:
            connection.close()  # this thread's own connection to the test database

    def _unreconciled(self) -> Any:
        return Transfer.objects.filter(state=TransferState.CONFIRMED).exclude(payment_request__status=Status.PAID)

    def _in_flight(self) -> Any:
        sent = [s.request_id for s in self.shoppers if s.tx_hash]
        return PaymentRequest.objects.filter(pk__in=sent).exclude(status=Status.PAID)

    def _hunt(self) -> str:
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < self.give_up_s and not self.halt.is_set():
            if self.locks.exists(self.lock_key):
                if self._unreconciled().exists():
                    self.worker.kill9()
                    return "confirmed-not-reconciled"
                if elapsed > self.aim_s and self._in_flight().exists():
                    self.worker.kill9()
                    return "inside-a-pass"
            time.sleep(0.001)
        self.worker.kill9()
        return "no-pass-seen"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def test_50_shoppers_pay_through_a_real_worker_that_is_killed_mid_scan(
    local_chain: LocalChain, api: APIClient, isolated_redis: redis.Redis, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    env = _worker_env()
    schedule = tmp_path / "celerybeat-schedule"
    lock_key = f"stablepay:scan:{local_chain.chain.pk}"
    shoppers = _open_requests(local_chain, api)
    workers: list[Worker] = []
    miner = Miner(local_chain)
    killer: Killer | None = None
    report: dict[str, Any] = {}
    ok = False
    try:
        workers.append(Worker(env, tmp_path / "worker-1.log", schedule))
        report["worker_1_ready_s"] = round(workers[0].ready_after_s, 2)
        miner.start()

        for i, shopper in enumerate(shoppers):
            if i == KILL_FROM:
                killer = Killer(workers[0], isolated_redis, lock_key, shoppers)
                killer.start()
            if i == KILL_AFTER:
                assert killer is not None
                killer.join(timeout=30)
                report["kill"] = killer.report
                assert killer.report.get("moment") not in (None, "no-pass-seen"), "is the worker scanning at all?"
                lock_ttl = isolated_redis.pttl(lock_key)
                report["kill"]["stale_lock_ttl_ms"] = lock_ttl if lock_ttl > 0 else None
                time.sleep(1.0)
                workers.append(Worker(env, tmp_path / "worker-2.log", schedule))
                report["worker_2_ready_s"] = round(workers[1].ready_after_s, 2)
            shopper.tx_hash = local_chain.pay(
                shopper.pay_to, shopper.due, symbol=shopper.token, sender_index=shopper.sender
            )
            shopper.sent_at, shopper.sent_wall = time.monotonic(), time.time()
            _poll_paid(shoppers)
            time.sleep(SEND_GAP_S)

        deadline = time.monotonic() + ALL_PAID_WITHIN_S
        while _poll_paid(shoppers) < SHOPPERS and time.monotonic() < deadline:
            assert workers[-1].proc.poll() is None, "the restarted worker died"
            time.sleep(0.1)
        miner.stop()
        assert not miner.errors, miner.errors

        late = [s.request_id for s in shoppers if s.paid_seen_at is None]
        statuses = Counter(PaymentRequest.objects.values_list("status", flat=True))
        stuck = list(
            PaymentRequest.objects.filter(pk__in=late).values_list(
                "status", "transfers__state", "transfers__block_number"
            )
        )
        assert not late, f"{len(late)} requests never became paid: {statuses}; (status, transfer, block): {stuck}"

        # Paid exactly once: one `paid` timeline entry per request, never a second one.
        paid_events = Counter(
            str(pk) for pk in Event.objects.filter(status=Status.PAID).values_list("payment_request_id", flat=True)
        )
        assert len(paid_events) == SHOPPERS and set(paid_events.values()) == {1}, paid_events

        # One transfer per shopper, the one they sent, credited once, to the right request, in full.
        transfers = list(Transfer.objects.select_related("token"))
        assert len(transfers) == SHOPPERS
        assert len({(t.chain_id, t.tx_hash, t.log_index) for t in transfers}) == SHOPPERS
        by_request = {str(t.payment_request_id): t for t in transfers}
        requests = {str(r.pk): r for r in PaymentRequest.objects.all()}
        assert len(requests) == SHOPPERS
        for s in shoppers:
            t, pr = by_request[s.request_id], requests[s.request_id]
            assert t.state == TransferState.CONFIRMED, (s, t.state)
            assert t.tx_hash.lower() == s.tx_hash.lower() and t.token.symbol == s.token
            assert int(t.amount_base_units) == s.due == int(pr.amount_due_base_units)
            assert pr.status == Status.PAID and pr.exception == "" and pr.paid_at is not None
            assert pr.amount_paid_base_units == pr.amount_due_base_units == Decimal(s.due)

        # The audit re-reads the whole chain on its own and agrees with the ledger.
        head = local_chain.anvil.w3.eth.block_number
        audit = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "stablepay_audit",
                "--chain-id",
                "31337",
                "--from-block",
                "0",
                "--to-block",
                str(head),
            ],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert audit.returncode == 0, audit.stdout + audit.stderr
        result = json.loads(audit.stdout)
        assert result["missing"] == [] and result["extra"] == [] and result["mismatched"] == []
        assert result["transfers_on_chain"] == result["transfers_in_ledger"] == SHOPPERS

        # Latency, shopper's send -> the server's paid_at (the start of the pass that made it paid).
        assert killer is not None and killer.killed_at is not None
        groups: dict[str, list[float]] = {"paid_before_kill": [], "in_flight_at_kill": [], "sent_after_kill": []}
        for s in shoppers:
            wait = requests[s.request_id].paid_at.timestamp() - s.sent_wall  # type: ignore[union-attr]
            assert s.paid_seen_at is not None
            if s.sent_at > killer.killed_at:
                groups["sent_after_kill"].append(wait)
            elif s.paid_seen_at < killer.killed_at:
                groups["paid_before_kill"].append(wait)
            else:
                groups["in_flight_at_kill"].append(wait)
        groups["all"] = [w for g in list(groups.values()) for w in g]
        assert max(groups["all"]) < PAID_WITHIN_S, groups  # "within a few seconds", even across the crash
        report["sent_to_paid_s"] = {
            label: {"n": len(w), "p50": round(statistics.median(w), 2), "max": round(max(w), 2)}
            for label, w in groups.items()
            if w
        }
        report["chain_head"] = head
        report["test_s"] = round(time.monotonic() - t0, 1)
        print("\ncelery e2e:", json.dumps(report))
        ok = True
    finally:
        miner.stop()
        if killer is not None:
            killer.halt.set()
            killer.join(timeout=15)
        for worker in workers:
            worker.stop()
        if not ok:
            print("\ncelery e2e (failed):", json.dumps(report))
            for n, worker in enumerate(workers, 1):
                print(f"\n----- worker-{n} log tail -----\n{worker.tail()}")
