"""The ledger-consistency report: is every request's status, amount and cover what its transfers say?

`stablepay_audit` compares the chain with the ledger; this compares the ledger with itself, over the
whole database (or one chain) in three set-based queries on PostgreSQL. Each check gives a count and a
sample of ids; `ok` is true when every count is 0.

- `status_mismatch`: requests whose status or exception is not what the status pass would make it.
- `amount_paid_mismatch`: `amount_paid_base_units` is not the sum of the live transfers of its token.
- `paid_uncovered`: `paid` (not accepted by ops) without confirmed canonical transfers covering it
  (a transfer held by payer screening covers nothing).
- `unlinked_transfers`: live transfers applied to no request.
- `unflagged_transfers`: confirmed live transfers neither applied to their request nor flagged for ops
  (wrong token, a payer flagged by screening, late to an unpaid request, or to a closed request, with no
  open exception, unreviewed).
- `misapplied_transfers`: a transfer applied to a request on another chain or another deposit address.
- `duplicate_transfers`: one log (chain, tx hash in any case, log index) recorded more than once.

A live transfer: not orphaned and more than 0. Elsewhere than PostgreSQL, `ledger_report_per_row`
computes the same report request by request through the ORM and `reconcile.decide`; it is also the
report's test oracle and its benchmark baseline.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from django.db import connection, transaction
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from stablepay.ledger import reconcile, services
from stablepay.ledger.bulk_reconcile import _tune, decisions_sql
from stablepay.models import FLAGGED_OUTCOMES, PaymentRequest, Status, Transfer, TransferState

CHECKS = (
    "status_mismatch",
    "amount_paid_mismatch",
    "paid_uncovered",
    "unlinked_transfers",
    "unflagged_transfers",
    "misapplied_transfers",
    "duplicate_transfers",
)
# A request whose own rules route a payment to ops shows it as an open exception or as needs_review.
_NO_OPEN_EXCEPTION = "r.exception = '' AND r.status <> 'needs_review'"
_LIVE = "t.state <> 'orphaned' AND t.amount_base_units > 0"


def _requests_sql(chain_id: int | None) -> str:
    by_status = ", ".join(f"count(*) FILTER (WHERE d.status = '{s.value}')" for s in Status)
    checks = {
        "status_mismatch": "d.new_status <> d.status OR d.new_exception <> d.exception",
        "amount_paid_mismatch": "d.paid <> d.paid_before",
        "paid_uncovered": (
            "d.status = 'paid' AND d.resolution <> 'accept' AND d.confirmed * 100 < d.due * (100 - d.tol)"
        ),
    }
    columns = ", ".join(
        f"count(*) FILTER (WHERE {cond}), (array_agg(d.id::text) FILTER (WHERE {cond}))[1:%(n)s]"
        for cond in checks.values()
    )
    return f"SELECT count(*), {by_status}, {columns} FROM ({decisions_sql(chain_id=chain_id)}) d"


def _transfers_sql(chain_id: int | None) -> str:
    checks = {
        "unlinked_transfers": f"{_LIVE} AND t.payment_request_id IS NULL",
        "unflagged_transfers": f"""{_LIVE} AND t.state = 'confirmed' AND NOT t.reviewed AND {_NO_OPEN_EXCEPTION}
            AND (t.token_id <> r.token_id
                 OR t.screening IN ('hit', 'failed_closed')
                 OR (t.block_timestamp >= r.expires_at AND r.status IN ('open', 'expired'))
                 OR r.status IN ('refunded', 'canceled'))""",
        # lower() only where the addresses differ as written (2 x 10^6 calls saved on a clean ledger).
        "misapplied_transfers": (
            "(t.to_address <> r.pay_to AND lower(t.to_address) <> lower(r.pay_to)) OR t.chain_id <> rt.chain_id"
        ),
    }
    columns = ", ".join(
        f"count(*) FILTER (WHERE {cond}), (array_agg(t.id::text) FILTER (WHERE {cond}))[1:%(n)s]"
        for cond in checks.values()
    )
    where = "WHERE t.chain_id = (SELECT id FROM stablepay_chain WHERE chain_id = %(chain_id)s)" if chain_id else ""
    return f"""SELECT count(*), {columns}
    FROM stablepay_transfer t
    LEFT JOIN stablepay_paymentrequest r ON r.id = t.payment_request_id
    LEFT JOIN stablepay_token rt ON rt.id = r.token_id
    {where}"""


def _duplicates_sql(chain_id: int | None) -> str:
    """Twins can only differ in the case of the hash (the unique constraint covers the exact one): start from
    the rows not in lower case (a cheap scan; none when the watcher writes lower case), add their lower-case
    twins through that unique index, and group."""
    where = "AND chain_id = (SELECT id FROM stablepay_chain WHERE chain_id = %(chain_id)s)" if chain_id else ""
    return f"""WITH odd AS (
        SELECT id, chain_id, lower(tx_hash) AS h, log_index FROM stablepay_transfer
        WHERE tx_hash <> lower(tx_hash) {where}
    ), members AS (
        SELECT id, chain_id, h, log_index FROM odd
        UNION
        SELECT t.id, t.chain_id, t.tx_hash, t.log_index FROM (SELECT DISTINCT chain_id, h, log_index FROM odd) k
        JOIN stablepay_transfer t ON t.chain_id = k.chain_id AND t.tx_hash = k.h AND t.log_index = k.log_index
    )
    SELECT COALESCE(sum(n - 1), 0)::bigint, (array_agg(ids ORDER BY ids))[1:%(n)s] FROM (
        SELECT count(*) AS n, string_agg(id::text, ',' ORDER BY id) AS ids FROM members
        GROUP BY chain_id, h, log_index HAVING count(*) > 1) g"""


def ledger_report(*, now: datetime | None = None, chain_id: int | None = None, sample: int = 10) -> dict[str, Any]:
    """The report as a JSON-ready dict (see the module docstring)."""
    now = (now or timezone.now()).astimezone(UTC)
    if connection.vendor != "postgresql":
        return ledger_report_per_row(now=now, chain_id=chain_id, sample=sample)
    params = {"now": now, "chain_id": chain_id, "n": sample}
    with transaction.atomic(), connection.cursor() as cur:
        _tune(cur)
        cur.execute(_requests_sql(chain_id), params)
        row = list(cur.fetchone())
        requests, by_status, rest = row[0], row[1 : 1 + len(Status)], row[1 + len(Status) :]
        cur.execute(_transfers_sql(chain_id), params)
        transfers, *rest_t = cur.fetchone()
        cur.execute(_duplicates_sql(chain_id), params)
        rest_d = list(cur.fetchone())
    found = rest + rest_t + rest_d
    checks = {
        name: {"count": int(found[2 * i]), "sample": sorted(found[2 * i + 1] or [])} for i, name in enumerate(CHECKS)
    }
    return _document(now, chain_id, requests, transfers, dict(zip(Status.values, by_status, strict=True)), checks)


def _document(
    now: datetime,
    chain_id: int | None,
    requests: int,
    transfers: int,
    by_status: dict[str, int],
    checks: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    return {
        "generated_at": now.isoformat().replace("+00:00", "Z"),
        "chain_id": chain_id,
        "requests": requests,
        "transfers": transfers,
        "requests_by_status": by_status,
        "checks": checks,
        "ok": all(c["count"] == 0 for c in checks.values()),
    }


def ledger_report_per_row(
    *,
    now: datetime | None = None,
    chain_id: int | None = None,
    sample: int = 10,
    request_ids: Iterable[Any] | None = None,
) -> dict[str, Any]:
    """The same report computed request by request and transfer by transfer through the ORM.

    `request_ids` limits it to those requests and their transfers (the benchmark's sample).
    """
    now = (now or timezone.now()).astimezone(UTC)
    found: dict[str, list[str]] = {name: [] for name in CHECKS}
    # Each chunk of requests reads its transfers in one query (not one per request).
    requests: QuerySet[PaymentRequest] = PaymentRequest.objects.select_related(
        "merchant", "token__chain__cursor"
    ).prefetch_related(Prefetch("transfers", queryset=Transfer.objects.select_related("chain__cursor")))
    transfers: QuerySet[Transfer] = Transfer.objects.select_related("payment_request__token")
    if chain_id is not None:
        requests = requests.filter(token__chain__chain_id=chain_id)
        transfers = transfers.filter(chain__chain_id=chain_id)
    if request_ids is not None:
        ids = list(request_ids)
        requests, transfers = requests.filter(pk__in=ids), transfers.filter(payment_request_id__in=ids)
    by_status = dict.fromkeys(Status.values, 0)
    n_requests = 0
    for request in requests.order_by("pk").iterator(chunk_size=2000):
        n_requests += 1
        by_status[request.status] += 1
        required = max(request.token.chain.confirmations, 1)
        facts = services._facts(request)
        transfer_facts = services._transfer_facts(request, required, request.transfers.all())
        decision = reconcile.decide(facts, transfer_facts, now=now, required=required)
        if decision.changes(facts):
            found["status_mismatch"].append(str(request.pk))
        if decision.amount_paid_base_units != int(request.amount_paid_base_units):
            found["amount_paid_mismatch"].append(str(request.pk))
        enough, _ = reconcile.thresholds(facts.due_base_units, facts.tolerance_percent)
        cover = sum(
            t.amount_base_units
            for t in transfer_facts
            if t.is_request_token
            and not t.orphaned
            and not t.held
            and t.mined_at < facts.expires_at
            and t.confirmations >= required
        )
        if request.status == Status.PAID and request.resolution != "accept" and Fraction(cover) < enough:
            found["paid_uncovered"].append(str(request.pk))
    n_transfers = 0
    logs: dict[tuple[int, str, int], list[int]] = {}
    for t in transfers.order_by("pk").iterator(chunk_size=2000):
        n_transfers += 1
        logs.setdefault((t.chain_id, t.tx_hash.lower(), t.log_index), []).append(t.pk)
        live = t.state != TransferState.ORPHANED and t.amount_base_units > 0
        r = t.payment_request
        if r is None:
            if live:
                found["unlinked_transfers"].append(str(t.pk))
            continue
        no_exception = r.exception == "" and r.status != Status.NEEDS_REVIEW
        routed_to_ops = (
            t.token_id != r.token_id
            or t.screening in FLAGGED_OUTCOMES
            or (t.block_timestamp >= r.expires_at and r.status in (Status.OPEN, Status.EXPIRED))
            or r.status in (Status.REFUNDED, Status.CANCELED)
        )
        if live and t.state == TransferState.CONFIRMED and not t.reviewed and no_exception and routed_to_ops:
            found["unflagged_transfers"].append(str(t.pk))
        if t.to_address.lower() != r.pay_to.lower() or t.chain_id != r.token.chain_id:
            found["misapplied_transfers"].append(str(t.pk))
    duplicates = [pks for pks in logs.values() if len(pks) > 1]
    found["duplicate_transfers"] = [",".join(str(pk) for pk in sorted(pks)) for pks in duplicates]
    counts = {name: len(ids) for name, ids in found.items()}
    counts["duplicate_transfers"] = sum(len(pks) - 1 for pks in duplicates)
    checks = {name: {"count": counts[name], "sample": sorted(found[name])[:sample]} for name in CHECKS}
    return _document(now, chain_id, n_requests, n_transfers, by_status, checks)
