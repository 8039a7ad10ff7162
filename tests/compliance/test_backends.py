"""Custom backends that misbehave (tests/compliance/backends.py) and the allow/deny list, through the real
watcher on anvil: a transfer is always recorded, failing open or closed by its amount when the backend
gives no usable answer; an allowlisted address is clear even when the HTTP service flags it."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import Client

from stablepay.ingest import watcher
from stablepay.models import Merchant, ScreeningListEntry
from tests.compliance.service import ScreeningService
from tests.support.auth import login_as
from tests.support.local_chain import LocalChain, create_request
from tests.support.ops import expect
from tests.support.screening import (
    DUE,
    OTHER_PAYER,
    PAYER,
    THIRD_PAYER,
    allow,
    deny,
    screening_settings,
    transfer_of,
)

BACKENDS = "tests.compliance.backends."


@pytest.mark.parametrize(
    ("backend", "error"),
    [
        ("ExplodingBackend", "the screening backend failed: RuntimeError"),
        ("HalfAnsweringBackend", "the backend gave no verdict for 1 address(es)"),
        ("WrongTypeBackend", "the backend answered 2 address(es) with something other than a Verdict"),
    ],
)
def test_a_backend_without_a_usable_answer_never_stops_the_watcher(
    local_chain: LocalChain, merchant: Merchant, settings: Any, backend: str, error: str
) -> None:
    screening_settings(settings, backend=BACKENDS + backend, fail_open_below_hkd="10.00")
    big = create_request(merchant, amount="10.00", order_reference="BIG")
    small = create_request(merchant, amount="9.99", order_reference="SMALL")
    big_tx = local_chain.pay(big.pay_to, DUE, sender_index=1)
    small_tx = local_chain.pay(small.pay_to, DUE - 10_000, sender_index=2)
    local_chain.mine(3)
    for _ in range(3):
        results = watcher.scan_once()  # the watcher's own pass: no exception escapes it
        assert [r.chain_id for r in results] == [31337]
    # Recorded and confirmed, each outcome decided by its amount; an answer for one payer is not enough.
    assert transfer_of(big_tx).screening == "failed_closed"
    assert transfer_of(small_tx).screening == "failed_open"
    assert transfer_of(big_tx).screening_detail == f"{error}; worth HK$10.00, not below HK$10.00: held"
    assert transfer_of(small_tx).screening_detail == f"{error}; worth HK$9.99, below HK$10.00: passed"
    assert {transfer_of(big_tx).state, transfer_of(small_tx).state} == {"confirmed"}
    expect(big, "needs_review", "held")
    expect(small, "paid", "")
    assert local_chain.chain.cursor.last_error == ""


def test_a_backend_answering_with_checksummed_addresses_is_understood(
    local_chain: LocalChain, merchant: Merchant, settings: Any
) -> None:
    screening_settings(settings, backend=BACKENDS + "ChecksumKeysBackend")
    pr = create_request(merchant)
    tx = local_chain.pay(pr.pay_to, DUE, sender_index=1)
    local_chain.settle()
    assert (transfer_of(tx).screening, transfer_of(tx).screening_detail) == ("hit", "vendor: flagged")
    expect(pr, "needs_review", "held")


# the allow/deny list --------------------------------------------------------------------------------------
def test_an_allowlisted_payer_is_clear_even_when_the_service_flags_it(
    local_chain: LocalChain, merchant: Merchant, http_backend: ScreeningService
) -> None:
    for payer in (PAYER, OTHER_PAYER, THIRD_PAYER):
        http_backend.flag(payer, "vendor says: high risk")
    allow(PAYER, "vendor false positive, ticket C-17")
    deny(THIRD_PAYER, "court order 2026/88")
    allowed, flagged, denied = (create_request(merchant, order_reference=f"L-{i}") for i in range(3))
    txs = [
        local_chain.pay(allowed.pay_to, DUE, sender_index=1),
        local_chain.pay(flagged.pay_to, DUE, sender_index=2),
        local_chain.pay(denied.pay_to, DUE, sender_index=3),
    ]
    local_chain.settle()
    # The list is read first: only the unlisted payer goes to the service.
    assert http_backend.addresses_asked == [[OTHER_PAYER.lower()]]
    assert [(transfer_of(tx).screening, transfer_of(tx).screening_detail) for tx in txs] == [
        ("clear", "screening service: allowlist, vendor false positive, ticket C-17"),
        ("hit", "screening service: vendor says: high risk"),
        ("hit", "screening service: denylist, court order 2026/88"),
    ]
    expect(allowed, "paid", "")
    expect(flagged, "needs_review", "held")
    expect(denied, "needs_review", "held")


def test_only_listed_payers_make_no_call_at_all(
    local_chain: LocalChain, merchant: Merchant, http_backend: ScreeningService
) -> None:
    http_backend.flag(PAYER, "vendor says: high risk")
    allow(PAYER)
    pr = create_request(merchant)
    local_chain.pay(pr.pay_to, DUE, sender_index=1)
    local_chain.settle()
    assert http_backend.seen == []
    expect(pr, "paid", "")


def test_list_entries_are_stored_in_lower_case_and_checked(db: None) -> None:
    entry = deny("  " + PAYER + " ")
    assert entry.address == PAYER.lower()
    assert ScreeningListEntry.objects.get().address == PAYER.lower()
    for bad in ("0x1234", PAYER[2:], PAYER + "0", "0x" + "g" * 40):
        with pytest.raises(ValidationError):
            allow(bad)
    assert ScreeningListEntry.objects.count() == 1


def test_ops_keep_the_list_in_the_admin_and_the_next_payment_is_held(
    local_chain: LocalChain, merchant: Merchant, client: Client
) -> None:
    root = User.objects.create_superuser("root", password="pw-0123456789-screening")
    login_as(client, root)
    add = "/admin/stablepay/screeninglistentry/add/"
    created = client.post(add, {"address": PAYER, "kind": "deny", "reason": "UN list 2026-11-25"})
    assert created.status_code == 302, created.content.decode()[:2000]
    entry = ScreeningListEntry.objects.get()
    assert (entry.address, entry.kind, entry.created_by) == (PAYER.lower(), "deny", root)
    # The same address in another case is the same entry: refused on the form, not a server error.
    again = client.post(add, {"address": PAYER.lower(), "kind": "allow", "reason": "duplicate"})
    assert again.status_code == 200 and "already exists" in again.content.decode()
    bad = client.post(add, {"address": "0x1234", "kind": "deny", "reason": "typo"})
    assert bad.status_code == 200 and "40 hex digits" in bad.content.decode()
    assert ScreeningListEntry.objects.count() == 1
    found = client.get("/admin/stablepay/screeninglistentry/", {"q": PAYER})  # searched in any case
    assert PAYER.lower() in found.content.decode()

    pr = create_request(merchant)
    tx = local_chain.pay(pr.pay_to, DUE, sender_index=1)
    local_chain.settle()
    assert transfer_of(tx).screening_detail == "screening list: denylist, UN list 2026-11-25"
    expect(pr, "needs_review", "held")

    # Moved to the allowlist in the admin: the next payment from it is clear (the first stays held).
    changed = client.post(
        f"/admin/stablepay/screeninglistentry/{entry.pk}/change/",
        {"address": PAYER, "kind": "allow", "reason": "cleared by compliance, case 7"},
    )
    assert changed.status_code == 302
    second = create_request(merchant, order_reference="T-2")
    tx2 = local_chain.pay(second.pay_to, DUE, sender_index=1)
    local_chain.settle()
    assert transfer_of(tx2).screening == "clear"
    expect(second, "paid", "")
    expect(pr, "needs_review", "held")
