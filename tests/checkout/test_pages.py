"""The payment page, its public status, the demo wallet guard, /healthz and `stablepay_scan --once`."""

from __future__ import annotations

from django.core.management import call_command
from django.test import Client

from stablepay.ingest import health
from stablepay.models import Chain, Cursor, Merchant, PaymentRequest
from tests.support.local_chain import LocalChain, create_request
from tests.support.services import free_port


def make_request(merchant: Merchant) -> PaymentRequest:
    return create_request(merchant, amount="88.00", metadata={"internal": "merchant-only note"})


def test_scan_once_command_pays_a_request(local_chain: LocalChain, merchant: Merchant, capsys) -> None:  # type: ignore[no-untyped-def]
    request = make_request(merchant)
    local_chain.pay(request.pay_to, int(request.amount_due_base_units))
    local_chain.mine(3)
    call_command("stablepay_scan", "--once")
    call_command("stablepay_scan", "--once")
    request.refresh_from_db()
    assert request.status == "paid"
    assert "chain 31337: head" in capsys.readouterr().out


def test_payment_page_and_public_status(local_chain: LocalChain, merchant: Merchant) -> None:
    request = make_request(merchant)
    client = Client()
    page = client.get(f"/pay/{request.pk}/")
    assert page.status_code == 200
    body = page.content.decode()
    assert request.pay_to in body and "88.000000" in body and "<svg" in body
    assert "Simulate wallet payment" not in body  # demo mode is off
    status = client.get(f"/pay/{request.pk}/status/").json()
    assert status["status"] == "open" and status["required_confirmations"] == 3
    assert "metadata" not in status and "merchant-only note" not in str(status)
    assert client.get("/pay/not-a-uuid/").status_code == 404
    assert client.post(f"/pay/{request.pk}/simulate/").status_code in (403, 404)


def test_a_compliance_hold_is_a_plain_review_on_the_payment_page(local_chain: LocalChain, merchant: Merchant) -> None:
    """No tipping-off: the shopper's page and its JSON never say `held`."""
    request = make_request(merchant)
    PaymentRequest.objects.filter(pk=request.pk).update(status="needs_review", exception="held")
    client = Client()
    status = client.get(f"/pay/{request.pk}/status/").json()
    assert (status["status"], status["exception"], status["state"]) == ("needs_review", None, "needs_review")
    body = client.get(f"/pay/{request.pk}/").content.decode()
    assert "needs a review" in body
    for word in ("held", "Held", "screening", "compliance"):
        assert word not in body and word not in str(status), word


def test_healthz_reports_each_chain(local_chain: LocalChain) -> None:
    local_chain.scan()
    health.clear_cache()
    answer = Client().get("/healthz")
    assert answer.status_code == 200
    chain = answer.json()["chains"][0]
    assert chain["chain_id"] == 31337 and chain["lag_blocks"] == 0 and chain["head"] == chain["scanned"]


def test_payment_page_speaks_traditional_chinese(local_chain: LocalChain, merchant: Merchant) -> None:
    request = make_request(merchant)
    for language in ("zh-HK", "zh-MO", "zh-Hant"):
        body = Client().get(f"/pay/{request.pk}/", headers={"Accept-Language": language}).content.decode()
        assert 'lang="zh-hant"' in body
        assert "請準確轉帳" in body and "至此地址" in body and "等待你的付款" in body


def test_healthz_measures_lag_against_the_node_not_the_last_pass(local_chain: LocalChain) -> None:
    """A watcher that stopped must not read as caught up: the head is the node's, read live."""
    local_chain.scan()
    local_chain.mine(5)  # the watcher does not run: these blocks are not read
    health.clear_cache()
    chain = Client().get("/healthz").json()["chains"][0]
    assert chain["head"] == local_chain.anvil.w3.eth.block_number
    assert chain["lag_blocks"] == 5 and chain["node_error"] == ""


def test_healthz_keeps_answering_when_the_node_does_not(local_chain: LocalChain) -> None:
    local_chain.scan()
    scanned = Cursor.objects.get(chain__chain_id=31337).scanned_block
    Chain.objects.filter(chain_id=31337).update(rpc_urls=[f"http://127.0.0.1:{free_port()}"])
    health.clear_cache()
    answer = Client().get("/healthz")
    assert answer.status_code == 200
    chain = answer.json()["chains"][0]
    assert chain["scanned"] == scanned and chain["head"] == scanned  # the last head the watcher saw
    assert "127.0.0.1" in chain["node_error"]
