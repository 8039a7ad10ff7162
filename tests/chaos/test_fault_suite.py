"""The fault suite (issue 6): randomized payments through a whole stack while faults are injected.

Shoppers create payment requests through the real API on gunicorn and pay on anvil: exact, partial,
over, late, wrong-token, fake-token (an unregistered contract with the same symbol) and denylisted (an
exact payment from a payer on the screening denylist) payments. Meanwhile
the suite kills the Celery worker with SIGKILL inside a scan, restarts Redis and PostgreSQL (throwaway
ones), makes the two RPC nodes answer HTTP 500, JSON-RPC errors and malformed JSON, hang, report a
stale head, fall behind the other, and make up logs (one node lies; the other must refuse the lie,
CONTRACT §3), reorganises
the chain at random depths (deeper than the confirmations too, re-including or dropping the payments),
and stalls the chain.

Then, against the chain itself: `stablepay_audit` is clean; every transfer to a deposit address is
recorded once and applied to its request or flagged for review; no request is `paid` without canonical
confirmed transfers covering it; the `paid` signal and webhook fired exactly once per paid request; a
denylisted payer's transfers are screened `hit` and their requests end `held`, never `paid`.

CHAOS_PAYMENTS (default 60; `make chaos`: 300) and CHAOS_SEED choose the run. The figures go to
test-artifacts/chaos-report.json.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from stablepay.dev import chain as devchain
from tests.chaos.chain_driver import ChainDriver, Sent
from tests.support.services import REPO_ROOT
from tests.support.stack import CHAIN_ID, Stack, StackConfig

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

PAYMENTS = int(os.environ.get("CHAOS_PAYMENTS", "60"))
SEED = int(os.environ.get("CHAOS_SEED", "20261126"))
CONFIRMATIONS = 3
MINE_EVERY_S = 0.5
TOLERANCE = Decimal("0.5")
LATE_EXPIRY_MINUTES = 1
SETTLE_WITHIN_S = 150
ARTIFACTS = REPO_ROOT / "test-artifacts"

KINDS = ["exact", "partial", "over", "late", "wrong_token", "fake_token", "denylisted"]
KIND_WEIGHTS = [50, 10, 10, 10, 10, 10, 5]
PAYERS = 9  # dev accounts 1..9 pay; account 10 is the denylisted payer, and pays only for "denylisted"
DENYLISTED_SENDER = PAYERS + 1
TIMED_FAULTS = ["rpc_http500", "rpc_error", "rpc_malformed", "rpc_hang", "rpc_stale_head", "rpc_lagging_node"]
TIMED_FAULTS += ["lying_node", "stall"]
INSTANT_FAULTS = ["worker_kill9", "redis_restart", "postgres_restart", "reorg_shallow", "reorg_deep"]
FAULT_WINDOW_S = 3.0


@dataclass
class Payment:
    index: int
    kind: str
    token: str  # the request's token symbol
    request_id: str = ""
    pay_to: str = ""
    due: int = 0
    expires_at: datetime | None = None
    sends: list[Sent] = field(default_factory=list)
    reorg_touched: bool = False


@dataclass
class Run:
    stack: Stack
    chain: ChainDriver
    rng: random.Random
    payments: list[Payment] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    reorg_depths: list[int] = field(default_factory=list)
    active: tuple[str, float] | None = None  # a timed fault and when its window ends
    active_hits: int = 0  # the proxies' faulted answers when it started

    # shoppers -----------------------------------------------------------------------------------
    def open_request(self, p: Payment, *, expiry_minutes: int | None = None) -> None:
        currency = self.rng.choice(["HKD", "HKD", "MOP"])
        amount = f"{self.rng.randint(1, 900)}.{self.rng.randint(0, 99):02d}"
        body: dict[str, Any] = {
            "order_reference": f"CHAOS-{SEED}-{p.index:04d}",
            "amount": amount,
            "currency": currency,
            "chain_id": CHAIN_ID,
            "token": p.token,
        }
        if expiry_minutes is not None:
            body["expiry_minutes"] = expiry_minutes
        data = self.stack.create_request(body, idempotency_key=f"chaos-{SEED}-{p.index}")
        p.request_id, p.pay_to, p.due = data["id"], data["pay_to"], int(data["amount_due_base_units"])
        p.expires_at = datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00"))

    def pay(self, p: Payment) -> None:
        tokens, sender = self.stack.tokens, self.rng.randint(1, PAYERS)
        if p.kind == "denylisted":
            sender = DENYLISTED_SENDER
        if p.kind == "wrong_token":
            other = "USDC" if p.token == "HKDX" else "HKDX"
            sent = self.chain.pay(tokens[other], p.pay_to, max(1, p.due // 3), sender=sender)
        elif p.kind == "fake_token":
            sent = self.chain.pay(self.stack.fake_hkdx, p.pay_to, p.due, sender=sender)
        else:
            amount = {
                "exact": p.due,
                "denylisted": p.due,
                "late": p.due,
                "partial": p.due // 2,
                "over": p.due * 6 // 5,
            }[p.kind]
            sent = self.chain.pay(tokens[p.token], p.pay_to, amount, sender=sender)
        p.sends.append(sent)

    # faults -------------------------------------------------------------------------------------
    def tick(self) -> None:
        """End a timed fault whose window is over."""
        if self.active is None:
            return
        kind, ends = self.active
        # The window lasts until the fault has changed at least one answer (or a while longer has passed).
        hit = kind == "stall" or self.proxy_hits() > self.active_hits
        if time.monotonic() >= ends and (hit or time.monotonic() >= ends + 20):
            if not hit:
                self.notes.append(f"{kind}: no answer faulted")
            self.end(kind)

    def proxy_hits(self) -> int:
        return sum(sum(proxy.faults.values()) for proxy in self.stack.proxies)

    def end(self, kind: str) -> None:
        if kind == "stall":
            self.chain.resume()
        for proxy in self.stack.proxies:
            proxy.clear()
        self.active = None

    def can_inject(self, kind: str) -> bool:
        """A timed fault waits for the last one's window to close; an instant one (a kill, a restart, a
        reorg) may land inside it, except a reorg inside a stall (the mempool holds payments then)."""
        if self.active is None:
            return True
        return kind in INSTANT_FAULTS and not (self.active[0] == "stall" and kind.startswith("reorg"))

    def inject(self, kind: str, *, payments_flowing: bool = True) -> None:
        if self.active is not None and kind in TIMED_FAULTS:
            self.end(self.active[0])
        self.faults[kind] += 1
        proxies = self.stack.proxies
        if kind in TIMED_FAULTS:
            self.active_hits = self.proxy_hits()
        # The second URL alone is asked only to confirm new payments: fault it alone only while they flow.
        victims = self.rng.choices([[proxies[0]], proxies, [proxies[1]]], weights=[5, 3, 2 if payments_flowing else 0])[
            0
        ]
        if kind in ("rpc_http500", "rpc_error", "rpc_malformed", "rpc_hang"):
            for proxy in victims:
                proxy.hang_s = 4.0
                proxy.mode = {"rpc_http500": "http500", "rpc_error": "rpc_error"}.get(kind, kind.removeprefix("rpc_"))
        elif kind == "rpc_stale_head":
            for proxy in victims:
                proxy.stale_head = max(1, self.chain.head() - self.rng.randint(1, 5))
        elif kind == "rpc_lagging_node":
            # The first node falls behind and cannot tell its head: the head comes from the second one,
            # while the first still answers everything else, short of the blocks it has not seen.
            proxies[0].stale_head = max(1, self.chain.head() - self.rng.randint(1, 5))
            proxies[0].fail_latest = True
        elif kind == "lying_node":
            # The first URL answers getLogs: it makes up payments covering open requests in full.
            targets = [p for p in self.payments if p.request_id and p.kind in ("fake_token", "partial", "exact")]
            chosen = self.rng.sample(targets, min(3, len(targets)))
            proxies[0].lies = [(self.stack.tokens[p.token], p.pay_to, p.due) for p in chosen]
        elif kind == "stall":
            self.chain.stall()
        elif kind == "worker_kill9":
            moment = self.stack.kill_worker_mid_scan()
            self.notes.append(f"worker killed: {moment}")
            return
        elif kind == "redis_restart":  # inside a pass: the scan lock and the queued tasks vanish
            assert self.stack.redis is not None
            moment = self.stack.wait_for_a_pass(give_up_s=3.0)
            self.stack.redis.restart(down_s=self.rng.uniform(0.5, 2.0))
            self.notes.append(f"redis restarted: {moment}")
            return
        elif kind == "postgres_restart":  # inside a pass: its connection dies mid-transaction
            assert self.stack.pg is not None
            moment = self.stack.wait_for_a_pass(give_up_s=3.0)
            self.stack.pg.restart(down_s=self.rng.uniform(0.5, 2.0))
            self.notes.append(f"postgres restarted: {moment}")
            return
        elif kind in ("reorg_shallow", "reorg_deep"):
            depth = (
                self.rng.randint(1, CONFIRMATIONS - 1)
                if kind == "reorg_shallow"
                else self.rng.randint(CONFIRMATIONS, CONFIRMATIONS + 4)
            )
            outcome = self.chain.reorg(depth, self.rng, drop_share=0.4)
            self.reorg_depths.append(outcome.depth)
            touched = set(outcome.reincluded) | set(outcome.dropped)
            for p in self.payments:
                if any(s.tx_hash in touched for s in p.sends):
                    p.reorg_touched = True
                    # A shopper whose payment vanished pays again, half of the time.
                    if p.sends[-1].dropped and p.kind != "late" and self.rng.random() < 0.5:
                        self.pay(p)
            self.notes.append(
                f"reorg depth {outcome.depth}: {len(outcome.reincluded)} kept, {len(outcome.dropped)} dropped"
            )
            return
        self.active = (kind, time.monotonic() + FAULT_WINDOW_S)


def _schedule(rng: random.Random, payments: int) -> dict[int, list[str]]:
    """Which faults start at which shopper: every kind at least once, spread over the run."""
    kinds = TIMED_FAULTS + INSTANT_FAULTS
    extra = max(0, payments // 12 - len(kinds))
    plan = kinds + [rng.choice(kinds) for _ in range(extra)]
    rng.shuffle(plan)
    slots: dict[int, list[str]] = defaultdict(list)
    step = max(1, (payments - 4) // len(plan))
    for i, kind in enumerate(plan):
        slots[min(payments - 1, 3 + i * step)].append(kind)
    return slots


def _kinds(rng: random.Random, payments: int) -> list[str]:
    chosen = list(KINDS) + rng.choices(KINDS, weights=KIND_WEIGHTS, k=max(0, payments - len(KINDS)))
    rng.shuffle(chosen)
    return chosen


def test_payments_survive_every_fault(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    rng = random.Random(SEED)
    config = StackConfig(
        confirmations=CONFIRMATIONS,
        rpc_proxies=2,
        webhook_fail_first=3,
        anvil_accounts=DENYLISTED_SENDER + 1,
        payers=DENYLISTED_SENDER,
    )
    report: dict[str, Any] = {"seed": SEED, "payments_planned": PAYMENTS}
    with Stack(config, tmp_path / "stack") as stack:
        assert stack.anvil is not None
        # The screening list the ops keep in the admin (stablepay/compliance/screening.py's default ListBackend).
        stack.sql(
            "INSERT INTO stablepay_screeninglistentry (address, kind, reason, created_at)"
            " VALUES (%s, 'deny', 'fault suite: denylisted payer', now()) RETURNING id",
            [devchain.dev_account(DENYLISTED_SENDER).address.lower()],
        )
        chain = ChainDriver(stack.anvil, mine_every_s=MINE_EVERY_S)
        run = Run(stack, chain, rng)
        try:
            report["stack_up_s"] = round(time.monotonic() - started, 1)
            chain.start()
            _drive(run)
            chain.stop()
            report["drive_s"] = round(time.monotonic() - started, 1)
            result = _settle_and_check(run, report)
        except BaseException:
            print(stack.tails())
            raise
        finally:
            chain.stop()
            report["seconds"] = round(time.monotonic() - started, 1)
            ARTIFACTS.mkdir(exist_ok=True)
            (ARTIFACTS / "chaos-report.json").write_text(json.dumps(report, indent=2, default=str))
            with capsys.disabled():
                print("\n" + _summary(report))
    assert result == "ok"


def _summary(report: dict[str, Any]) -> str:
    keys = ["seed", "payments", "payments_by_kind", "transactions_sent", "faults_total", "faults_injected"]
    keys += ["rpc_answers_faulted", "reorg_depths", "api_create_retries", "final_statuses", "lost", "doubled"]
    keys += ["phantom", "seconds"]
    lines = [f"  {key}: {json.dumps(report[key], default=str)}" for key in keys if key in report]
    lines += [f"  failure: {failure}" for failure in report.get("failures", [])[:20]]
    return "chaos report (test-artifacts/chaos-report.json):\n" + "\n".join(lines)


def _drive(run: Run) -> None:
    kinds = _kinds(run.rng, PAYMENTS)
    schedule = _schedule(run.rng, PAYMENTS)
    pending = [(index, kind) for index in sorted(schedule) for kind in schedule[index]]
    run.payments = [Payment(i, kind, "USDC" if run.rng.random() < 0.2 else "HKDX") for i, kind in enumerate(kinds)]
    # Late payers: their requests expire a minute after they are made, and they pay afterwards.
    for p in run.payments:
        if p.kind == "late":
            run.open_request(p, expiry_minutes=LATE_EXPIRY_MINUTES)
    late_queue = [p for p in run.payments if p.kind == "late"]
    # Shoppers keep coming while the faults play out: ~45 s of faults, whatever the number of payments.
    gap_s = max(0.1, 45.0 / PAYMENTS)
    for p in run.payments:
        # Each fault at or after its slot; timed ones one at a time, so every window sees payments flow.
        if pending and pending[0][0] <= p.index and run.can_inject(pending[0][1]):
            run.inject(pending.pop(0)[1])
        if p.kind != "late":
            run.open_request(p)
            run.pay(p)
        run.tick()
        _pay_due_late(run, late_queue)
        time.sleep(gap_s)
    while pending or run.active is not None:  # faults left over: they still meet unconfirmed payments
        if pending and run.can_inject(pending[0][1]):
            run.inject(pending.pop(0)[1], payments_flowing=False)
        run.tick()
        _pay_due_late(run, late_queue)
        time.sleep(0.1)
    while late_queue:
        _pay_due_late(run, late_queue)
        time.sleep(0.5)


def _pay_due_late(run: Run, queue: list[Payment]) -> None:
    """Pay the late ones once the chain's own clock is past their expiry (a reorg sets anvil's clock back)."""
    if not queue:
        return
    chain_time = int(run.chain.w3.eth.get_block("latest")["timestamp"])
    for p in list(queue):
        assert p.expires_at is not None
        if chain_time > p.expires_at.timestamp() + 1:
            run.pay(p)
            queue.remove(p)


def _settle_and_check(run: Run, report: dict[str, Any]) -> str:
    stack, chain = run.stack, run.chain
    for proxy in stack.proxies:
        proxy.clear()
    chain.mine(CONFIRMATIONS + 1)
    head = chain.head()
    tokens = {stack.tokens["HKDX"].lower(): "HKDX", stack.tokens["USDC"].lower(): "USDC"}
    by_address = {p.pay_to.lower(): p for p in run.payments}

    # The chain's own word, read from anvil without the proxies.
    logs = chain.logs([*stack.tokens.values(), stack.fake_hkdx], head)
    blocks: dict[int, tuple[str, int]] = {}
    for number in {int(log["blockNumber"], 16) for log in logs}:
        block = stack.anvil.w3.eth.get_block(number)  # type: ignore[union-attr]
        blocks[number] = (stack.anvil.w3.to_hex(block["hash"]).lower(), int(block["timestamp"]))  # type: ignore[union-attr]
    to_deposits = []
    fake_txs = set()
    for log in logs:
        to = "0x" + log["topics"][2][-40:].lower()
        if to not in by_address:
            continue
        if log["address"].lower() not in tokens:
            fake_txs.add(log["transactionHash"].lower())
            continue
        to_deposits.append(
            {
                "key": (log["transactionHash"].lower(), int(log["logIndex"], 16)),
                "token": tokens[log["address"].lower()],
                "to": to,
                "amount": int(log["data"], 16),
                "block": int(log["blockNumber"], 16),
                "block_hash": log["blockHash"].lower(),
            }
        )

    # Wait until the stack has caught up: every transfer recorded and confirmed, nothing pending, every
    # webhook delivered (retries come from the beat's sweep after 10 s).
    deadline = time.monotonic() + SETTLE_WITHIN_S
    while True:
        confirmed = {
            (tx, idx)
            for tx, idx in stack.sql(
                "SELECT lower(tx_hash), log_index FROM stablepay_transfer WHERE state = 'confirmed'"
            )
        }
        pending = stack.sql("SELECT count(*) FROM stablepay_paymentrequest WHERE reconcile_pending")[0][0]
        undelivered = stack.sql("SELECT count(*) FROM stablepay_webhookdelivery WHERE delivered_at IS NULL")[0][0]
        scanned = stack.sql("SELECT scanned_block FROM stablepay_cursor")[0][0]
        caught_up = scanned >= head and all(t["key"] in confirmed for t in to_deposits)
        if caught_up and not pending and not undelivered:
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    time.sleep(2)  # one more beat: a pass in flight finishes

    failures: list[str] = []
    if not (caught_up and not pending and not undelivered):
        missing = [t for t in to_deposits if t["key"] not in confirmed]
        failures.append(
            f"not settled within {SETTLE_WITHIN_S}s: scanned {scanned}/{head}, {len(missing)} transfers not "
            f"confirmed ({missing[:5]}), {pending} pending, {undelivered} webhooks undelivered"
        )

    # 1. The audit re-reads the whole chain (through the now honest nodes) and agrees with the ledger.
    code, audit = stack.audit(head)
    report["audit"] = {"exit": code} | (
        {k: audit[k] for k in ("transfers_on_chain", "transfers_in_ledger")} if isinstance(audit, dict) else {}
    )
    if code != 0:
        failures.append(f"stablepay_audit exit {code}: {audit}")

    # 2. Every transfer to a deposit address: recorded once, on its request, applied or flagged.
    ledger_rows = stack.sql(
        "SELECT lower(t.tx_hash), t.log_index, t.state, lower(t.block_hash), t.amount_base_units, tk.symbol,"
        " t.payment_request_id::text, lower(t.to_address), t.screening FROM stablepay_transfer t"
        " JOIN stablepay_token tk ON tk.id = t.token_id"
    )
    ledger = defaultdict(list)
    for row in ledger_rows:
        ledger[(row[0], row[1])].append(row)
    requests = {
        row[0]: row
        for row in stack.sql(
            "SELECT id::text, status, exception, amount_paid_base_units, amount_due_base_units, lower(pay_to),"
            " expires_at FROM stablepay_paymentrequest"
        )
    }
    lost, doubled, phantom = [], [], []
    for t in to_deposits:
        rows = [r for r in ledger.get(t["key"], []) if r[2] != "orphaned"]
        if len(rows) > 1:
            doubled.append(t["key"])
        if not rows:
            lost.append(t["key"])
            continue
        row = rows[0]
        if (row[2], row[3], int(row[4]), row[5]) != ("confirmed", t["block_hash"], t["amount"], t["token"]):
            failures.append(f"transfer {t['key']} recorded as {row[2:6]}, chain says {t}")
        p = by_address[t["to"]]
        if row[8] != ("hit" if p.kind == "denylisted" else "clear"):
            failures.append(f"transfer {t['key']} ({p.kind}) screened {row[8]!r}")
        if row[6] != p.request_id:
            failures.append(f"transfer {t['key']} credited to {row[6]}, paid to request {p.request_id}")
            continue
        _, status, exception, _, _, _, expires_at = requests[p.request_id]
        flagged = status == "needs_review" or exception != ""
        late = blocks[t["block"]][1] >= expires_at.timestamp()
        if (t["token"] != p.token or late) and not flagged:
            failures.append(f"transfer {t['key']} ({p.kind}) neither applied nor flagged: {status}/{exception}")
    on_chain_keys = {t["key"] for t in to_deposits}
    for key, rows in ledger.items():
        if any(r[2] != "orphaned" for r in rows) and key not in on_chain_keys:
            phantom.append(key)
    invented = {h for proxy in stack.proxies for h in proxy.invented_tx_hashes}
    credited_lies = [key for key in ledger if key[0] in invented]
    credited_fakes = [key for key in ledger if key[0] in fake_txs]
    for name, found in (("lost", lost), ("doubled", doubled), ("phantom", phantom)):
        if found:
            failures.append(f"{name} transfers: {found[:10]}")
    if credited_lies:
        failures.append(f"a made-up log was recorded: {credited_lies}")
    if credited_fakes:
        failures.append(f"a fake-token transfer was recorded: {credited_fakes}")

    # amount_paid is the sum of the request token's live transfers, as on chain.
    for p in run.payments:
        on_chain = sum(t["amount"] for t in to_deposits if t["to"] == p.pay_to.lower() and t["token"] == p.token)
        recorded = int(requests[p.request_id][3])
        if recorded != on_chain:
            failures.append(f"request {p.index} ({p.kind}) amount_paid {recorded}, on chain {on_chain}")

    # 3. No request is paid without canonical, confirmed, on-time transfers covering it (chain's word).
    for p in run.payments:
        _, status, exception, _, due, _, expires_at = requests[p.request_id]
        if status != "paid":
            continue
        cover = sum(
            t["amount"]
            for t in to_deposits
            if t["to"] == p.pay_to.lower()
            and t["token"] == p.token
            and head - t["block"] + 1 >= CONFIRMATIONS
            and blocks[t["block"]][1] < expires_at.timestamp()
        )
        if Fraction(cover) < int(due) * (1 - Fraction(TOLERANCE) / 100):
            mine = [
                (t["block"], blocks[t["block"]][1], t["token"], t["amount"])
                for t in to_deposits
                if t["to"] == p.pay_to.lower()
            ]
            theirs = stack.sql(
                "SELECT block_number, extract(epoch from block_timestamp)::bigint, state FROM stablepay_transfer"
                " WHERE payment_request_id = %s",
                [p.request_id],
            )
            failures.append(
                f"request {p.index} ({p.kind}) is paid, the chain covers {cover} of {due} by {expires_at.timestamp()}:"
                f" chain {mine}, ledger {theirs}"
            )

    # 4. The paid signal and the paid webhook: exactly once per request that was ever paid.
    paid_events = Counter(
        r[0] for r in stack.sql("SELECT payment_request_id::text FROM stablepay_event WHERE status = 'paid'")
    )
    paid_signals = Counter(
        r[0] for r in stack.sql("SELECT payment_request_id FROM chaos_signal_log WHERE status = 'paid'")
    )
    assert stack.receiver is not None
    deliveries = stack.receiver.deliveries
    paid_hooks: dict[str, set[str]] = defaultdict(set)
    for d in deliveries:
        if d.type == "payment_request.paid":
            paid_hooks[d.request_id].add(d.event_id)
    bad_signatures = [d for d in deliveries if not d.signature_ok]
    if bad_signatures:
        failures.append(f"{len(bad_signatures)} webhook deliveries with a bad signature")
    ever_paid = set(paid_events)
    for p in run.payments:
        status, exception = requests[p.request_id][1], requests[p.request_id][2]
        if status == "paid" and p.request_id not in ever_paid:
            failures.append(f"request {p.index} is paid with no paid timeline entry")
        want = 1 if p.request_id in ever_paid else 0
        got = (paid_events[p.request_id], paid_signals[p.request_id], len(paid_hooks[p.request_id]))
        if got != (want, want, want):
            failures.append(f"request {p.index} ({p.kind}, {status}/{exception}): paid events/signals/webhooks {got}")
        if p.request_id in ever_paid and status not in ("paid",) and (status, exception) != ("needs_review", "reorged"):
            failures.append(f"request {p.index} was paid and is now {status}/{exception}")
        if p.kind == "denylisted" and p.request_id in ever_paid:
            failures.append(f"request {p.index} was paid by a denylisted payer")

    # 5. What each kind must end as, where no reorg touched its payments.
    for p in run.payments:
        status, exception = requests[p.request_id][1], requests[p.request_id][2]
        if p.reorg_touched:
            continue
        expected = {
            "exact": {("paid", "")},
            "over": {("paid", "overpaid")},
            "partial": {("open", "")},
            "late": {("needs_review", "late")},
            "wrong_token": {("needs_review", "wrong_token")},
            "fake_token": {("open", "")},
            "denylisted": {("needs_review", "held")},
        }[p.kind]
        if (status, exception) not in expected:
            failures.append(f"request {p.index} ({p.kind}) ended {status}/{exception}, expected {expected}")

    # 6. Every fault took effect: each timed one changed at least one answer of a node.
    failures.extend(f"fault without effect: {note}" for note in run.notes if note.endswith("no answer faulted"))

    statuses = Counter(f"{r[1]}/{r[2]}" if r[2] else r[1] for r in requests.values())
    proxy_faults: Counter[str] = Counter()
    for proxy in stack.proxies:
        proxy_faults.update(proxy.faults)
    report.update(
        payments=len(run.payments),
        payments_by_kind=dict(Counter(p.kind for p in run.payments)),
        transactions_sent=sum(len(p.sends) for p in run.payments),
        transfers_to_deposits_on_chain=len(to_deposits),
        fake_token_transfers=len(fake_txs),
        faults_injected=dict(run.faults),
        faults_total=sum(run.faults.values()),
        rpc_answers_faulted=dict(proxy_faults),
        invented_logs_refused=len(invented),
        reorg_depths=run.reorg_depths,
        workers_started=stack.workers_started,
        api_create_retries=dict(Counter(stack.api_retries)),
        final_statuses=dict(statuses),
        requests_ever_paid=len(ever_paid),
        webhook_deliveries=len(deliveries),
        webhook_retries=len(deliveries) - len({d.event_id for d in deliveries}),
        lost=len(lost),
        doubled=len(doubled) + sum(1 for p in run.payments if len(paid_hooks[p.request_id]) > 1),
        phantom=len(phantom),
        chain_head=head,
        failures=failures,
        notes=run.notes,
    )
    if failures:
        raise AssertionError(f"{len(failures)} failures:\n" + "\n".join(failures[:40]))
    return "ok"
