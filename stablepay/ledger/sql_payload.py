"""The payment request object of CONTRACT §4 as one PostgreSQL jsonb expression, for set-based writers.

`ledger.representation.payment_request_data` is the definition; this is its SQL twin, so that a bulk pass
can write webhook outbox rows with INSERT ... SELECT instead of serializing row by row in Python.
tests/ledger/test_bulk_reconcile.py holds the two equal, field for field.
"""

from __future__ import annotations

from uuid import UUID

from django.urls import reverse

from stablepay.conf import app_settings

_PLACEHOLDER = UUID(int=0)


def iso(expr: str) -> str:
    """`_iso`: ISO 8601 in UTC with a Z, microseconds only when there are any, NULL stays NULL."""
    stamp = f"to_char(({expr}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
    return f"replace({stamp} || 'Z', '.000000Z', 'Z')"


def token_amount(base_units: str, decimals: str) -> str:
    """`format_token_amount`: base units with exactly `decimals` places (numeric scales add when multiplying)."""
    return f"(({base_units}) * ('1e-' || ({decimals}))::numeric)::text"


def checkout_url_parts() -> tuple[str, str]:
    """(before the id, after the id) of `checkout_url` when no HTTP request is at hand."""
    path = reverse("stablepay:pay", args=[str(_PLACEHOLDER)])
    before, after = path.split(str(_PLACEHOLDER))
    return app_settings.BASE_URL.rstrip("/") + before, after


def transfer_json(t: str) -> str:
    """One transfer of the object's `transfers`; joins `tt` (its token), `tc` (its chain), `tcu` (the chain's
    cursor, LEFT JOIN) must be in scope."""
    return f"""jsonb_build_object(
        'tx_hash', {t}.tx_hash, 'log_index', {t}.log_index, 'block_number', {t}.block_number,
        'block_hash', {t}.block_hash, 'token', tt.symbol, 'token_address', tt.address,
        'from', {t}.from_address, 'to', {t}.to_address, 'amount_base_units', {t}.amount_base_units::text,
        'confirmations', CASE WHEN {t}.state = 'orphaned' OR tcu.head_block IS NULL THEN 0
                              ELSE GREATEST(tcu.head_block - {t}.block_number + 1, 0) END,
        'state', {t}.state,
        'explorer_url', CASE WHEN tc.explorer_tx_url = '' THEN NULL
                             WHEN strpos(tc.explorer_tx_url, '{{tx}}') > 0
                                  THEN replace(tc.explorer_tx_url, '{{tx}}', {t}.tx_hash)
                             ELSE rtrim(tc.explorer_tx_url, '/') || '/' || {t}.tx_hash END)"""


TRANSFER_JOINS = """JOIN stablepay_token tt ON tt.id = t.token_id
            JOIN stablepay_chain tc ON tc.id = t.chain_id
            LEFT JOIN stablepay_cursor tcu ON tcu.chain_id = t.chain_id"""
TRANSFER_ORDER = "t.block_number, t.log_index"
EVENT_ORDER = "e.at, e.id"


def event_json(e: str) -> str:
    """One entry of the object's `timeline`."""
    return f"""jsonb_build_object(
        'at', {iso(f"{e}.at")}, 'status', {e}.status, 'exception', NULLIF({e}.exception, ''),
        'note', {e}.note, 'actor', {e}.actor)"""


def payment_request_json(r: str, tk: str, c: str, *, transfers: str | None = None, timeline: str | None = None) -> str:
    """The object for request alias `r`, its token `tk` and the token's chain `c`.

    Takes two query parameters, %(checkout_before)s and %(checkout_after)s (see `checkout_url_parts`).
    Transfers and timeline are read as the statement sees them: write the timeline event first. Without
    `transfers` / `timeline` (jsonb arrays already aggregated, for many rows at once: `transfer_json`
    and `event_json` in the writer's own GROUP BY), each is a subquery per row.
    """
    if transfers is None:
        transfers = f"""(SELECT jsonb_agg({transfer_json("t")} ORDER BY {TRANSFER_ORDER})
            FROM stablepay_transfer t {TRANSFER_JOINS} WHERE t.payment_request_id = {r}.id)"""
    if timeline is None:
        timeline = f"""(SELECT jsonb_agg({event_json("e")} ORDER BY {EVENT_ORDER})
            FROM stablepay_event e WHERE e.payment_request_id = {r}.id)"""
    return f"""jsonb_build_object(
        'id', {r}.id::text, 'status', {r}.status, 'exception', NULLIF({r}.exception, ''),
        'resolution', NULLIF({r}.resolution, ''), 'order_reference', {r}.order_reference,
        'amount', {r}.amount::text, 'currency', {r}.currency, 'chain_id', {c}.chain_id,
        'token', {tk}.symbol, 'token_address', {tk}.address, 'decimals', {tk}.decimals,
        'rate', trim_scale({r}.rate)::text, 'pay_to', {r}.pay_to,
        'amount_due', {token_amount(f"{r}.amount_due_base_units", f"{tk}.decimals")},
        'amount_due_base_units', {r}.amount_due_base_units::text,
        'amount_paid', {token_amount(f"{r}.amount_paid_base_units", f"{tk}.decimals")},
        'amount_paid_base_units', {r}.amount_paid_base_units::text,
        'created_at', {iso(f"{r}.created_at")}, 'expires_at', {iso(f"{r}.expires_at")},
        'paid_at', {iso(f"{r}.paid_at")},
        'payment_uri', 'ethereum:' || {tk}.address || '@' || {c}.chain_id || '/transfer?address=' || {r}.pay_to
                       || '&uint256=' || {r}.amount_due_base_units::text,
        'checkout_url', %(checkout_before)s || {r}.id::text || %(checkout_after)s,
        'metadata', {r}.metadata,
        'transfers', COALESCE({transfers}, '[]'::jsonb), 'timeline', COALESCE({timeline}, '[]'::jsonb))"""
