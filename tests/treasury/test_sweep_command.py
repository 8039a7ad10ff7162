"""Forwarder deposit addresses end to end (issue 18, CONTRACT §7), as a merchant meets them: a setup file with
`settlement_addresses`, a request made through the API, a shopper's transfer, one `stablepay_scan --once`,
then `stablepay_sweep` run exactly as the contract writes it: its unsigned file executed by an account that
is neither the merchant nor stablepay, and a send with a gas-only sweeper key. The money ends on the
settlement address and nowhere else; the audit bundle's deposit fields recompute the address."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from eth_utils import keccak, to_checksum_address
from rest_framework.test import APIClient
from web3 import Web3

from stablepay.compliance import audit_bundle
from stablepay.dev import chain as devchain
from stablepay.models import Merchant, PaymentRequest
from tests.support.local_chain import LocalChain, setup_document

SETTLEMENT = devchain.dev_account(6).address  # the merchant's Safe or cold wallet: never signs here
STRANGER = 7  # anyone: sends the unsigned sweep
SWEEPER = 8  # holds gas only


@pytest.fixture
def forwarder_store(local_chain: LocalChain, tmp_path: Path) -> APIClient:
    """`acme` takes payments on the local chain through forwarders fixed to SETTLEMENT (its xpub stays for
    other chains); `other` has no xpub and no settlement address here."""
    document = setup_document(local_chain.anvil.url, local_chain.tokens)
    document["merchants"][0]["settlement_addresses"] = {"31337": SETTLEMENT.lower()}
    document["merchants"][1].pop("xpub")
    document["merchants"][1]["settlement_addresses"] = {"8453": SETTLEMENT}
    path = tmp_path / "setup.json"
    path.write_text(json.dumps(document))
    call_command("stablepay_setup", str(path))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {local_chain.api_keys['acme']}")
    return client


def create2(deployer: str, salt: bytes, code_hash: bytes) -> str:
    """EIP-1014, written out here: the address a CREATE2 with this salt and init-code hash makes."""
    return to_checksum_address(keccak(b"\xff" + bytes.fromhex(deployer[2:]) + salt + code_hash)[12:])


def balance(w3: Web3, token: str, holder: str) -> int:
    return int(devchain.token_contract(w3, token).functions.balanceOf(to_checksum_address(holder)).call())


def pay_and_settle(local_chain: LocalChain, api: APIClient, reference: str, amount: str) -> dict[str, Any]:
    created = api.post(
        "/api/v1/payment-requests/",
        {"order_reference": reference, "amount": amount, "currency": "HKD", "chain_id": 31337, "token": "HKDX"},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    local_chain.pay(body["pay_to"], int(body["amount_due_base_units"]))
    local_chain.mine(3)
    call_command("stablepay_scan", "--once")
    return api.get(f"/api/v1/payment-requests/{body['id']}/").json()


def sweep(*args: str, capsys: Any) -> dict[str, Any]:
    call_command("stablepay_sweep", "--chain-id", "31337", *args)
    out = capsys.readouterr().out
    return json.loads(out[out.index("{") :])


def test_a_forwarder_payment_is_paid_and_swept_to_the_settlement_address_only(
    local_chain: LocalChain, forwarder_store: APIClient, tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    w3 = local_chain.anvil.w3
    hkdx = local_chain.tokens["HKDX"]
    nothing = sweep("--unsigned", str(tmp_path / "none.json"), capsys=capsys)  # no forwarder holds anything yet
    assert nothing["tokens"] == [] and not (tmp_path / "none.json").exists()

    first = pay_and_settle(local_chain, forwarder_store, "F-1", "100.00")
    second = pay_and_settle(local_chain, forwarder_store, "F-2", "0.50")
    assert first["status"] == second["status"] == "paid"
    assert first["pay_to"] != second["pay_to"]
    assert not w3.eth.get_code(first["pay_to"])  # nothing was deployed for the request: an address, computed
    request = PaymentRequest.objects.get(pk=first["id"])

    # Anyone can recompute the deposit address from the audit bundle's fields, without stablepay's code.
    deposit = audit_bundle.build_bundle(request)["deposit"]
    assert deposit["mode"] == "forwarder" and deposit["settlement_address"] == SETTLEMENT
    salt = bytes.fromhex(deposit["salt"][2:])
    assert salt[:20] == bytes.fromhex(SETTLEMENT[2:])
    assert create2(deposit["factory"], salt, bytes.fromhex(deposit["init_code_hash"][2:])) == first["pay_to"]
    assert audit_bundle.verify_forwarder({"deposit": deposit}) == []
    downloaded = forwarder_store.get(f"/api/v1/payment-requests/{first['id']}/audit/")
    assert downloaded.status_code == 200
    (tmp_path / "bundle.json").write_bytes(downloaded.content)
    capsys.readouterr()
    call_command("stablepay_verify_bundle", str(tmp_path / "bundle.json"), "--offline")  # exits 1 on any problem
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert audit_bundle.verify_forwarder({"deposit": {**deposit, "settlement_address": SETTLEMENT[:-1] + "0"}})

    # --min-amount in token units leaves the 0.50 payment where it is; the file is for any wallet or a Safe.
    out_file = tmp_path / "sweep.json"
    written = sweep("--token", "HKDX", "--min-amount", "1", "--unsigned", str(out_file), capsys=capsys)
    assert written["tokens"] == [{"token": hkdx, "addresses": 1, "base_units": "100000000"}]
    unsigned = json.loads(out_file.read_text())
    assert unsigned["chain_id"] == 31337 and set(unsigned) == {"chain_id", "transactions", "safe_batch"}
    assert len(unsigned["transactions"]) == 2  # the factory's deployment (missing on this chain), the sweep
    assert unsigned["safe_batch"]["transactions"][1]["data"] == unsigned["transactions"][1]["data"]
    stranger = devchain.dev_account(STRANGER)
    for tx in unsigned["transactions"]:
        sent = w3.eth.send_transaction(
            {"from": stranger.address, "to": tx["to"], "data": tx["data"], "value": int(tx["value"])}
        )
        assert w3.eth.wait_for_transaction_receipt(sent)["status"] == 1
    assert balance(w3, hkdx, SETTLEMENT) == 100_000_000
    assert balance(w3, hkdx, first["pay_to"]) == 0
    assert balance(w3, hkdx, second["pay_to"]) == 500_000

    # With the gas-only sweeper key the command sends; the second address now goes too, the first has nothing.
    monkeypatch.setenv("STABLEPAY_SWEEPER_KEY", devchain.dev_account(SWEEPER).key.hex())
    settlement_before, sweeper_tokens = (
        balance(w3, hkdx, SETTLEMENT),
        balance(w3, hkdx, devchain.dev_account(SWEEPER).address),
    )
    sent = sweep(capsys=capsys)
    assert [t["addresses"] for t in sent["tokens"]] == [1] and len(sent["transactions"]) == 1
    assert sent["transactions"][0]["gas_used"] > 0
    assert balance(w3, hkdx, SETTLEMENT) == settlement_before + 500_000
    assert balance(w3, hkdx, devchain.dev_account(SWEEPER).address) == sweeper_tokens  # it only paid gas
    assert sweep(capsys=capsys)["tokens"] == []  # swept twice: nothing left, exit 0


def test_a_token_sent_by_mistake_is_swept_by_its_address(
    local_chain: LocalChain, forwarder_store: APIClient, tmp_path: Path, capsys: Any
) -> None:
    paid = pay_and_settle(local_chain, forwarder_store, "F-3", "10.00")
    fake = local_chain.fake_hkdx  # an ERC-20 the merchant never registered
    local_chain.pay(paid["pay_to"], 1234, symbol="FAKE")
    out_file = tmp_path / "fake.json"
    written = sweep("--token", fake, "--unsigned", str(out_file), capsys=capsys)
    assert written["tokens"] == [{"token": to_checksum_address(fake), "addresses": 1, "base_units": "1234"}]
    w3 = local_chain.anvil.w3
    for tx in json.loads(out_file.read_text())["transactions"]:
        sent = w3.eth.send_transaction(
            {"from": devchain.dev_account(STRANGER).address, "to": tx["to"], "data": tx["data"]}
        )
        assert w3.eth.wait_for_transaction_receipt(sent)["status"] == 1
    assert balance(w3, fake, SETTLEMENT) == 1234


def test_setup_and_creation_rules(local_chain: LocalChain, forwarder_store: APIClient, tmp_path: Path) -> None:
    acme, other = Merchant.objects.get(slug="acme"), Merchant.objects.get(slug="other")
    assert acme.settlement_addresses == {"31337": SETTLEMENT} and acme.xpub
    assert other.xpub == ""
    other_api = APIClient()
    other_api.credentials(HTTP_AUTHORIZATION=f"Bearer {local_chain.api_keys['other']}")
    refused = other_api.post(
        "/api/v1/payment-requests/",
        {"order_reference": "N-1", "amount": "5.00", "currency": "HKD", "chain_id": 31337, "token": "HKDX"},
        format="json",
    )
    assert refused.status_code == 400 and "chain_id" in refused.content.decode()
    for bad in ({"31337": "0x1234"}, {"chain": SETTLEMENT}, {"31337": "0x" + "00" * 20}, ["0x"]):
        document = setup_document(local_chain.anvil.url, local_chain.tokens)
        document["merchants"][0]["settlement_addresses"] = bad
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(document))
        with pytest.raises(Exception, match=r"merchants\[0\]\.settlement_addresses"):
            call_command("stablepay_setup", str(path))
    assert Merchant.objects.get(slug="acme").settlement_addresses == {"31337": SETTLEMENT}  # nothing changed
