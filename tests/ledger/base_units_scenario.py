"""Issue 16 part 5's attack, the same on every backend: run in-process on PostgreSQL and inside
`manage.py shell` on a fresh SQLite file (tests/ledger/test_base_units_exact.py).

On an anvil chain with an 18-decimal HKD coin (HKDE) whose supply is 2**256 - 1, through the commands and
the API a merchant and a shopper use: `stablepay_setup`, two requests of 100.00 MOP (due
ceil(100 / 1.03 x 10**18) = 97087378640776699030 base units each), the shopper pays the first the amount
due plus 10**77 + 12345 (78 digits) in two transfers, the second everything else the coin has, one
`stablepay_scan --once` pass, then every figure is read back: through the ORM, the API (request, its
transfers, settlements) and the payment page's status. Returns what it read, as strings.
"""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from web3 import Web3

from stablepay.dev import chain as devchain
from stablepay.models import PaymentRequest, Transfer

API_KEY = "base-units-test-key-0123456789abcdef012"
SUPPLY = 2**256 - 1  # the most a uint256 token can ever have
DUE = 97087378640776699030  # ceil(100.00 MOP / 1.03 x 10**18): the value
BIG = 10**77 + 12345  # a 78-digit transfer
REST = SUPPLY - BIG - DUE  # the second request gets the rest of the supply


def setup_document(anvil_url: str, token: str, xpub: str) -> dict[str, Any]:
    return {
        "chains": [
            {
                "chain_id": 31337,
                "name": "Local",
                "rpc_urls": [anvil_url],
                "confirmations": 1,
                "block_time_seconds": 1,
                "explorer_tx_url": None,
            }
        ],
        "tokens": [{"chain_id": 31337, "address": token, "symbol": "HKDE", "decimals": 18, "currency": "HKD"}],
        "merchants": [
            {
                "slug": "acme",
                "name": "Acme",
                "xpub": xpub,
                "api_key": API_KEY,
                "payment_tolerance_percent": "0.5",
                "expiry_minutes": 15,
                "webhook_url": None,
                "webhook_secret": None,
            }
        ],
        "fx": {"HKD/MOP": "1.03", "USD/HKD": "7.80"},
    }


def run(*, anvil_url: str, token: str, setup_path: str) -> dict[str, Any]:
    call_command("stablepay_setup", setup_path)
    api = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {API_KEY}")

    def create(reference: str) -> dict[str, Any]:
        body = {"order_reference": reference, "amount": "100.00", "currency": "MOP", "chain_id": 31337, "token": "HKDE"}
        response = api.post("/api/v1/payment-requests/", json.dumps(body), content_type="application/json")
        assert response.status_code == 201, response.content
        created: dict[str, Any] = response.json()
        return created

    def get(path: str) -> Any:
        response = api.get(path)
        assert response.status_code == 200, (path, response.status_code, response.content[:500])
        return response.json()

    first, second = create("BIG-1"), create("BIG-2")
    w3 = Web3(Web3.HTTPProvider(anvil_url))
    devchain.transfer(w3, token, first["pay_to"], DUE, sender_index=1)
    devchain.transfer(w3, token, first["pay_to"], BIG, sender_index=1)
    devchain.transfer(w3, token, second["pay_to"], REST, sender_index=1)
    call_command("stablepay_scan", "--once")

    today = timezone.localdate(timezone=ZoneInfo("Asia/Hong_Kong")).isoformat()
    rows = [PaymentRequest.objects.get(pk=r["id"]) for r in (first, second)]
    return {
        "created_due": [r["amount_due_base_units"] for r in (first, second)],
        "orm_due": [str(r.amount_due_base_units) for r in rows],
        "orm_paid": [str(r.amount_paid_base_units) for r in rows],
        "orm_transfers": sorted(str(t.amount_base_units) for t in Transfer.objects.all()),
        "api": [get(f"/api/v1/payment-requests/{r['id']}/") for r in (first, second)],
        "settlements": get(f"/api/v1/settlements/?date_from={today}&date_to={today}"),
        "page": [Client(HTTP_HOST="localhost").get(f"/pay/{r['id']}/status/").json() for r in (first, second)],
    }


def main(arguments: str) -> None:
    """The SQLite side: `manage.py shell -c "...main('<json>')"` prints one RESULT line."""
    print("RESULT " + json.dumps(run(**json.loads(arguments))))
