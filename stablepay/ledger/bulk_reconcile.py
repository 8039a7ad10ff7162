"""The set-based status pass: every request's status recomputed from its transfers in a few SQL statements.

Same rules as `reconcile.decide`, written as one aggregate over transfers and one CASE (`DECISIONS`),
and the same writes as `services.payment_request_reconcile`, row for row: status, exception,
`amount_paid_base_units`, `paid_at`, `reconcile_pending` cleared, a timeline Event and a webhook outbox
row per change (INSERT ... SELECT), and the store's signal. Only rows whose outcome differs are written,
so a second pass right after the first changes nothing.

The per-row service stays the everyday path (the watcher reconciles each request as its transfers
change, the expiry sweep as it expires); this pass is the catch-up and repair sweep behind
`manage.py stablepay_reconcile`, for when statuses went stale in bulk (an outage of the workers, a
restore, a rule change). A row written concurrently since the pass read it (its `xmin` moved) is left
alone for the next pass. PostgreSQL only: elsewhere (the embedded SQLite mode) it falls back to the
per-row service, request by request.

Signals: a store that connects to `payment_requests_status_changed` gets one call per batch of changes;
when nothing listens to it, each change is announced with the per-row `payment_request_status_changed`,
as the per-row service does. Both are sent inside the pass's transaction.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from stablepay.ledger import outbox, reconcile, services, sql_payload
from stablepay.ledger.signals import StatusChange, payment_request_status_changed, payment_requests_status_changed
from stablepay.models import PaymentRequest

logger = logging.getLogger(__name__)

SIGNAL_BATCH = 5_000
_DROP = "DROP TABLE IF EXISTS stablepay_sweep, stablepay_sweep_applied"

# Per request: the sums and flags `reconcile.decide` derives from its transfers. A transfer counts as
# confirmed exactly when its state is `confirmed` (services._transfer_facts caps the others below the
# requirement). `live`: not orphaned and > 0; `mine`: live and of the request's token.
_LIVE = "t.state <> 'orphaned' AND t.amount_base_units > 0"
_MINE = f"{_LIVE} AND t.token_id = r.token_id"
_ON_TIME = f"{_MINE} AND t.block_timestamp < r.expires_at"
_TO_REVIEW = f"{_LIVE} AND NOT t.reviewed AND (t.token_id <> r.token_id OR t.block_timestamp >= r.expires_at)"
_C = "t.state = 'confirmed'"
# Flagged by screening and not covered by an ops resolution: received, never credited (reconcile.decide).
_HELD = "t.screening IN ('hit', 'failed_closed') AND NOT t.reviewed"
_CREDITED = f"{_C} AND NOT ({_HELD})"
# The eight yes/no facts ride in one bit_or (one aggregate instead of eight: a third of the query, bench P5).
_FLAGS = {
    "unconfirmed_on_time": f"{_ON_TIME} AND NOT {_C}",
    "review_confirming": f"{_TO_REVIEW} AND NOT {_C}",
    "late": f"{_TO_REVIEW} AND t.token_id = r.token_id AND {_C}",
    "wrong": f"{_TO_REVIEW} AND t.token_id <> r.token_id AND {_C}",
    "unreviewed_confirmed": f"{_MINE} AND NOT t.reviewed AND {_C}",
    "unreviewed": f"{_MINE} AND NOT t.reviewed",
    "orphaned_reviewed": "t.state = 'orphaned' AND t.reviewed",
    "held": f"{_LIVE} AND {_HELD} AND {_C}",
}
_BITS = " | ".join(f"CASE WHEN {cond} THEN {1 << i} ELSE 0 END" for i, cond in enumerate(_FLAGS.values()))
_FACTS = f"""
SELECT g.*, {", ".join(f"(g.flags & {1 << i}) <> 0 AS {name}" for i, name in enumerate(_FLAGS))}
FROM (
    SELECT r.id, r.xmin AS row_version, r.status, r.exception, r.resolution, r.reconcile_pending,
           r.amount_paid_base_units AS paid_before, r.amount_due_base_units AS due,
           m.payment_tolerance_percent AS tol, r.expires_at,
           COALESCE(SUM(t.amount_base_units) FILTER (WHERE {_MINE}), 0) AS paid,
           COALESCE(SUM(t.amount_base_units) FILTER (WHERE {_ON_TIME}), 0) AS received,
           COALESCE(SUM(t.amount_base_units) FILTER (WHERE {_ON_TIME} AND {_CREDITED}), 0) AS confirmed,
           COALESCE(SUM(t.amount_base_units) FILTER (WHERE {_MINE} AND {_CREDITED}), 0) AS confirmed_total,
           COALESCE(bit_or({_BITS}), 0) AS flags
    FROM stablepay_paymentrequest r
    JOIN stablepay_merchant m ON m.id = r.merchant_id
    LEFT JOIN stablepay_transfer t ON t.payment_request_id = r.id
    {{request_filter}}
    GROUP BY r.id, r.xmin, m.id
) g
"""


def _enough(amount: str) -> str:
    """amount >= due x (1 - tol/100), exactly: numeric arithmetic, no division."""
    return f"({amount}) * 100 >= f.due * (100 - f.tol)"


def _above(amount: str) -> str:
    """amount > due x (1 + tol/100)."""
    return f"({amount}) * 100 > f.due * (100 + f.tol)"


def _to(status: str, exception: str, reason: str) -> str:
    reason = reason.replace("'", "''")
    return f"ARRAY[{status}, {exception}, '{reason}']::text[]"


_KEEP = _to("f.status", "f.exception", "unchanged")
_STAY_OPEN = "CASE WHEN f.status = 'confirming' THEN 'open' ELSE f.status END"

# `reconcile.decide`, branch for branch, as (status, exception, reason).
_DECISION = f"""CASE
  WHEN f.held AND f.exception <> 'held'
    THEN {_to("'needs_review'", "'held'", reconcile.HELD_REASON)}
  WHEN f.status = 'paid' THEN CASE
    WHEN f.exception NOT IN ('reorged', 'held')
         AND CASE WHEN f.resolution = 'accept' THEN f.orphaned_reviewed ELSE NOT {_enough("f.confirmed")} END
      THEN {_to("'needs_review'", "'reorged'", "a transfer that paid the request was orphaned")}
    WHEN f.exception = '' AND f.wrong
      THEN {_to("'paid'", "'wrong_token'", "another token was sent to the paid request's address")}
    WHEN f.exception = '' AND {_above("f.confirmed_total")} AND f.unreviewed
      THEN {_to("'paid'", "'overpaid'", "received more than due")}
    ELSE {_KEEP} END
  WHEN f.status IN ('refunded', 'canceled') AND (f.unreviewed_confirmed OR f.wrong)
    THEN {
    _to(
        "'needs_review'",
        "CASE WHEN f.wrong AND NOT f.unreviewed_confirmed THEN 'wrong_token' ELSE 'late' END",
        "a payment arrived after the request was closed",
    )
}
  WHEN f.status IN ('refunded', 'canceled', 'needs_review') THEN {_KEEP}
  WHEN f.wrong THEN {_to("'needs_review'", "'wrong_token'", "another registered token was sent to the deposit address")}
  WHEN {_enough("f.received")} THEN CASE
    WHEN {_enough("f.confirmed")}
      THEN {
    _to("'paid'", f"CASE WHEN {_above('f.confirmed_total')} THEN 'overpaid' ELSE '' END", "received and confirmed")
}
    ELSE {_to("'confirming'", "''", "received, waiting for confirmations")} END
  WHEN %(now)s < f.expires_at THEN {_to("'open'", "''", "waiting for payment")}
  WHEN f.late THEN {_to("'needs_review'", "'late'", "paid after the request expired")}
  WHEN f.review_confirming THEN {_to(_STAY_OPEN, "''", "a payment to review is confirming")}
  WHEN f.received > 0 AND f.unconfirmed_on_time THEN {_to(_STAY_OPEN, "''", "partial payment confirming")}
  WHEN f.received > 0 THEN {_to("'needs_review'", "'underpaid'", "expired with less than the amount due")}
  ELSE {_to("'expired'", "''", "expired with nothing received")}
END"""


def decisions_sql(*, chain_id: int | None = None) -> str:
    """SELECT every request (of one chain, if given) with what the status pass makes of it.

    Columns: the facts above, plus new_status, new_exception, reason. Parameters: %(now)s and, with a
    chain, %(chain_id)s.
    """
    request_filter = ""
    if chain_id is not None:
        request_filter = """WHERE r.token_id IN (SELECT tk.id FROM stablepay_token tk
            JOIN stablepay_chain ch ON ch.id = tk.chain_id WHERE ch.chain_id = %(chain_id)s)"""
    facts = _FACTS.format(request_filter=request_filter)
    return f"""SELECT d.*, d.decision[1] AS new_status, d.decision[2] AS new_exception, d.decision[3] AS reason
FROM (SELECT f.*, {_DECISION} AS decision FROM ({facts}) f OFFSET 0) d"""


def _webhook_type(*, status: str, previous: str, exception: str) -> str:
    """`payment_request_reconcile`'s webhook type: the new status's, or needs_review for a new exception."""
    kinds = " ".join(f"WHEN '{s.value}' THEN '{kind}'" for s, kind in services.WEBHOOK_TYPE_BY_STATUS.items())
    return f"""CASE WHEN {status} <> {previous} THEN CASE {status} {kinds} END
        WHEN {exception} <> '' THEN 'needs_review' END"""


# What the webhook payloads read of each written request, as the UPDATE left it (RETURNING).
_PAYLOAD_COLUMNS = (
    "status, exception, resolution, order_reference, amount, currency, rate, pay_to, amount_due_base_units, "
    "amount_paid_base_units, created_at, expires_at, paid_at, metadata, merchant_id, token_id"
)


@dataclass
class SweepResult:
    examined: int = 0
    changed: int = 0  # status or exception: a timeline event, maybe a webhook, maybe a signal
    amounts_only: int = 0  # amount paid or the reconcile_pending flag only
    skipped: int = 0  # written concurrently since the pass read it: left for the next pass
    events: int = 0
    webhooks: int = 0
    signals: int = 0
    transitions: Counter[str] = field(default_factory=Counter)
    sample: list[str] = field(default_factory=list)
    per_row: bool = False
    seconds: dict[str, float] = field(default_factory=dict)  # per phase: decide, update, events, ...

    def lap(self, phase: str, started: float) -> float:
        now = time.perf_counter()
        self.seconds[phase] = round(self.seconds.get(phase, 0) + now - started, 3)
        return now

    @property
    def rows_written(self) -> int:
        return self.changed + self.amounts_only

    def as_dict(self) -> dict[str, Any]:
        return {
            "examined": self.examined,
            "changed": self.changed,
            "amounts_only": self.amounts_only,
            "skipped": self.skipped,
            "events": self.events,
            "webhooks": self.webhooks,
            "signals": self.signals,
            "transitions": dict(sorted(self.transitions.items())),
            "sample": self.sample,
            "per_row": self.per_row,
            "phase_seconds": self.seconds,
        }


def payment_requests_reconcile_all(
    *, now: datetime | None = None, chain_id: int | None = None, dry_run: bool = False, sample: int = 10
) -> SweepResult:
    """Bring every request (of one chain, if given) in line with its transfers; returns what changed.

    `dry_run` computes the same changes and writes nothing.
    """
    now = (now or timezone.now()).astimezone(UTC)
    if connection.vendor != "postgresql":
        return _per_row(now=now, chain_id=chain_id, dry_run=dry_run, sample=sample)
    params: dict[str, Any] = {"now": now, "chain_id": chain_id}
    result = SweepResult()
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        _tune(cur)
        cur.execute(_DROP)  # left over when an outer transaction ran a pass before
        cur.execute(
            f"""CREATE TEMP TABLE stablepay_sweep ON COMMIT DROP AS
            SELECT d.id, d.row_version, d.status, d.exception, d.paid, d.new_status, d.new_exception, d.reason
            FROM ({decisions_sql(chain_id=chain_id)}) d
            WHERE d.new_status <> d.status OR d.new_exception <> d.exception OR d.paid <> d.paid_before
               OR d.reconcile_pending""",
            params,
        )
        cur.execute(
            "SELECT count(*) FROM stablepay_paymentrequest r"
            + (
                " JOIN stablepay_token tk ON tk.id = r.token_id JOIN stablepay_chain ch ON ch.id = tk.chain_id"
                " WHERE ch.chain_id = %(chain_id)s"
                if chain_id is not None
                else ""
            ),
            params,
        )
        result.examined = cur.fetchone()[0]
        if dry_run:
            _summarize(cur, result, "stablepay_sweep", sample)
            cur.execute(_DROP)
            return result
        cur.execute("ANALYZE stablepay_sweep")
        # The pass is idempotent and all-or-nothing: a commit lost in a crash within the WAL writer's
        # delay (~0.6 s) leaves every row as it was before the pass, and the next pass redoes it; its
        # webhooks and the store's order changes are in the same transaction, so they go with it.
        # Not waiting for the WAL flush of ~300 MB of changes saves ~1 s (bench P5).
        cur.execute("SET LOCAL synchronous_commit = off")
        _apply(cur, now, result, result.lap("decide", started), sample)
        cur.execute(_DROP)
        started = time.perf_counter()
    result.lap("commit", started)
    logger.info("status pass: %s", result.as_dict())
    return result


def _tune(cur: Any) -> None:
    """For this transaction: room to hash and sort 10^6 rows in memory; no JIT (on 10^6 rows it spent
    longer compiling the CASE and the aggregates than running them: ~10 s of a 17 s query); no parallel
    workers (the grouped join is split between them, then regrouped by the leader alone: 9.5-10 s against
    7.4-8 s serial on 2 cores, bench P5)."""
    cur.execute("SET LOCAL work_mem = '256MB'")
    cur.execute("SET LOCAL jit = off")
    cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")


def _apply(cur: Any, now: datetime, result: SweepResult, started: float, sample: int) -> None:
    """Write the decisions, then the events, the webhooks and the signals of the rows actually written."""
    returning = ", ".join(f"pr.{c}" for c in _PAYLOAD_COLUMNS.split(", "))
    cur.execute(
        f"""CREATE TEMP TABLE stablepay_sweep_applied ON COMMIT DROP AS
        WITH applied AS (
            UPDATE stablepay_paymentrequest pr
            SET status = s.new_status, exception = s.new_exception, amount_paid_base_units = s.paid,
                reconcile_pending = false, updated_at = now(),
                paid_at = CASE WHEN s.new_status = 'paid' AND pr.paid_at IS NULL
                                    AND (s.new_status <> s.status OR s.new_exception <> s.exception)
                               THEN %(now)s ELSE pr.paid_at END
            FROM stablepay_sweep s
            WHERE pr.id = s.id AND pr.xmin = s.row_version
            RETURNING s.id, s.status AS previous_status, s.exception AS previous_exception, s.reason, {returning}
        )
        SELECT a.*, (a.status <> a.previous_status OR a.exception <> a.previous_exception) AS changed,
               {_webhook_type(status="a.status", previous="a.previous_status", exception="a.exception")} AS webhook_type
        FROM applied a""",
        {"now": now},
    )
    cur.execute("SELECT (SELECT count(*) FROM stablepay_sweep), (SELECT count(*) FROM stablepay_sweep_applied)")
    wanted, applied = cur.fetchone()
    result.skipped = wanted - applied
    _summarize(cur, result, "stablepay_sweep_applied", sample, before="previous_", after="")
    started = result.lap("update", started)
    cur.execute(
        """INSERT INTO stablepay_event (payment_request_id, at, status, exception, note, actor)
        SELECT id, %(now)s, status, exception, reason, 'watcher' FROM stablepay_sweep_applied
        WHERE changed""",
        {"now": now},
    )
    result.events = cur.rowcount
    started = result.lap("events", started)
    result.webhooks = _write_webhooks(cur, now)
    started = result.lap("webhooks", started)
    if result.webhooks:  # announced after commit (Celery mode: delivered then, not at the next tick)
        outbox.queued_in_bulk()
    cur.execute(
        """SELECT id, previous_status, status, exception, paid_at FROM stablepay_sweep_applied
        WHERE status <> previous_status ORDER BY id"""
    )
    changes = [
        StatusChange(pk, previous, status, exception, paid_at, "watcher")
        for pk, previous, status, exception, paid_at in cur.fetchall()
    ]
    result.signals = _announce(changes)
    result.lap("signals", started)


def _write_webhooks(cur: Any, now: datetime) -> int:
    """One outbox row per change that has a webhook type, for merchants with a webhook URL.

    The payload is the API object (sql_payload) built from the applied rows as the UPDATE returned
    them, with their transfers and timelines aggregated in one grouped join each: per-row subqueries
    cost an index probe into each table for every webhook (bench P5: 5 of 8 s for 49,000 webhooks).
    """
    before, after = sql_payload.checkout_url_parts()
    request_json = sql_payload.payment_request_json("w", "tk", "c", transfers="tr.items", timeline="tl.items")
    cur.execute(
        f"""WITH w AS MATERIALIZED (
            SELECT gen_random_uuid() AS event_id, 'payment_request.' || a.webhook_type AS type, a.*
            FROM stablepay_sweep_applied a JOIN stablepay_merchant m ON m.id = a.merchant_id
            WHERE a.changed AND a.webhook_type IS NOT NULL AND m.webhook_url <> ''
        ), tr AS (
            SELECT t.payment_request_id AS id,
                   jsonb_agg({sql_payload.transfer_json("t")} ORDER BY {sql_payload.TRANSFER_ORDER}) AS items
            FROM w JOIN stablepay_transfer t ON t.payment_request_id = w.id {sql_payload.TRANSFER_JOINS}
            GROUP BY t.payment_request_id
        ), tl AS (
            SELECT e.payment_request_id AS id,
                   jsonb_agg({sql_payload.event_json("e")} ORDER BY {sql_payload.EVENT_ORDER}) AS items
            FROM w JOIN stablepay_event e ON e.payment_request_id = w.id
            GROUP BY e.payment_request_id
        )
        INSERT INTO stablepay_webhookdelivery
            (event_id, merchant_id, payment_request_id, type, payload, created_at, attempts, next_attempt_at,
             delivered_at, last_status_code, last_error)
        SELECT w.event_id, w.merchant_id, w.id, w.type,
               jsonb_build_object('id', w.event_id::text, 'type', w.type, 'created_at', %(now_iso)s,
                                  'data', {request_json}),
               %(now)s, 0, %(now)s, NULL, NULL, ''
        FROM w JOIN stablepay_token tk ON tk.id = w.token_id
        JOIN stablepay_chain c ON c.id = tk.chain_id
        LEFT JOIN tr ON tr.id = w.id
        LEFT JOIN tl ON tl.id = w.id""",
        {
            "now": now,
            "now_iso": now.isoformat().replace("+00:00", "Z"),
            "checkout_before": before,
            "checkout_after": after,
        },
    )
    return int(cur.rowcount)


def _summarize(
    cur: Any, result: SweepResult, table: str, sample: int, *, before: str = "", after: str = "new_"
) -> None:
    """Count the table's rows by transition; `before` / `after` prefix its status and exception columns."""
    cur.execute(
        f"""SELECT {before}status, {before}exception, {after}status, {after}exception, count(*),
               (array_agg(id ORDER BY id))[1:%(n)s]
        FROM {table} GROUP BY 1, 2, 3, 4""",
        {"n": sample},
    )
    for status, exception, new_status, new_exception, count, ids in cur.fetchall():
        if (status, exception) == (new_status, new_exception):
            result.amounts_only += count
            continue
        result.changed += count
        result.transitions[f"{_label(status, exception)} -> {_label(new_status, new_exception)}"] += count
        result.sample.extend(str(pk) for pk in ids[: max(0, sample - len(result.sample))])


def _label(status: str, exception: str) -> str:
    return f"{status}/{exception}" if exception else status


def _announce(changes: list[StatusChange]) -> int:
    """Tell the store, inside the transaction: in batches if it listens to those, else row by row."""
    if not changes:
        return 0
    if payment_requests_status_changed.has_listeners(PaymentRequest):
        for start in range(0, len(changes), SIGNAL_BATCH):
            payment_requests_status_changed.send(sender=PaymentRequest, changes=changes[start : start + SIGNAL_BATCH])
        return len(changes)
    if not payment_request_status_changed.has_listeners(PaymentRequest):
        return 0
    for start in range(0, len(changes), SIGNAL_BATCH):
        batch = changes[start : start + SIGNAL_BATCH]
        requests = PaymentRequest.objects.select_related("merchant", "token__chain").in_bulk(
            [c.payment_request_id for c in batch]
        )
        for change in batch:
            payment_request_status_changed.send(
                sender=PaymentRequest,
                payment_request=requests[change.payment_request_id],
                previous_status=change.previous_status,
                status=change.status,
                exception=change.exception,
                actor=change.actor,
            )
    return len(changes)


def _per_row(*, now: datetime, chain_id: int | None, dry_run: bool, sample: int) -> SweepResult:
    """Other databases: the per-row service over every request (a dry run only counts what would change)."""
    from stablepay.ledger import reconcile

    result = SweepResult(per_row=True)
    requests = PaymentRequest.objects.order_by("pk")
    if chain_id is not None:
        requests = requests.filter(token__chain__chain_id=chain_id)
    for request_id in requests.values_list("pk", flat=True):
        result.examined += 1
        before = PaymentRequest.objects.select_related("merchant", "token__chain").get(pk=request_id)
        if dry_run:
            required = max(before.token.chain.confirmations, 1)
            facts = services._facts(before)
            decision = reconcile.decide(facts, services._transfer_facts(before, required), now=now, required=required)
            after_status, after_exception = decision.status, decision.exception
            paid_differs = int(before.amount_paid_base_units) != decision.amount_paid_base_units
            amounts_only = paid_differs or before.reconcile_pending
        else:
            after = services.payment_request_reconcile(request_id=request_id, now=now)
            after_status, after_exception = after.status, after.exception
            amounts_only = (after.amount_paid_base_units, after.reconcile_pending) != (
                before.amount_paid_base_units,
                before.reconcile_pending,
            )
        if (after_status, after_exception) != (before.status, before.exception):
            result.changed += 1
            key = f"{_label(before.status, before.exception)} -> {_label(after_status, after_exception)}"
            result.transitions[key] += 1
            if len(result.sample) < sample:
                result.sample.append(str(request_id))
            if not dry_run:
                result.events += 1
                result.signals += int(after_status != before.status)
        elif amounts_only:
            result.amounts_only += 1
    return result
