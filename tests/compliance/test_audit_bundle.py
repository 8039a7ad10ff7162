"""Audit bundles (issue 8 part 3) on a real anvil chain and PostgreSQL: a paid request's bundle verifies
offline and against the chain; any change to it fails with a named reason; a reorged-away transfer
fails the chain check; another merchant gets 404; both dashboards download the same signed bundle."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from bip_utils import Bip32Secp256k1, Bip39SeedGenerator
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.contrib.auth.models import Permission, User
from django.test import Client
from rest_framework.test import APIClient

from stablepay.compliance import audit_bundle
from stablepay.models import Merchant, PaymentRequest
from tests.support.audit_bundles import download, verify, write
from tests.support.auth import login_as
from tests.support.local_chain import MERCHANT_MNEMONIC, LocalChain, create_request

DUE = 10_000_000  # 10.00 HKD in HKDX (6 decimals) at HKD/HKD 1


@pytest.fixture
def paid(local_chain: LocalChain, merchant: Merchant) -> tuple[PaymentRequest, str]:
    pr = create_request(merchant, order_reference="AUD-1")
    tx = local_chain.pay(pr.pay_to, DUE)
    local_chain.settle()
    pr.refresh_from_db()
    assert pr.status == "paid"
    return pr, tx


def resigned(document: dict[str, Any]) -> bytes:
    """The document with its original signature, re-serialized canonically (so only the signature can object)."""
    return audit_bundle.canonical(document)


# what a bundle holds ----------------------------------------------------------------------------------
def test_a_paid_requests_bundle_holds_the_evidence_and_verifies_offline_and_on_chain(
    api: APIClient, paid: tuple[PaymentRequest, str], merchant: Merchant, tmp_path: Path
) -> None:
    pr, tx = paid
    data = download(api, pr)
    document = json.loads(data)
    assert data == audit_bundle.canonical(document)  # served in the canonical form
    bundle = document["bundle"]

    assert bundle["quote"]["amount"] == "10.00" and bundle["quote"]["currency"] == "HKD"
    assert bundle["quote"]["rate"] == "1" and bundle["quote"]["amount_due_base_units"] == str(DUE)
    assert bundle["quote"]["quoted_at"] == bundle["payment_request"]["created_at"]
    # The FX table the quote was made with, as stored on the request (what refunds are valued with).
    pr.refresh_from_db()
    assert bundle["quote"]["fx_rates"] == pr.fx_rates and pr.fx_rates["HKD/MOP"] == "1.03"
    assert bundle["deposit"]["address"] == pr.pay_to
    assert bundle["deposit"]["derivation_path"] == f"m/44'/60'/0'/0/{pr.derivation_index}"
    account = Bip32Secp256k1.FromSeed(Bip39SeedGenerator(MERCHANT_MNEMONIC).Generate()).DerivePath("m/44'/60'/0'")
    assert bundle["deposit"]["xpub_fingerprint"] == account.FingerPrint().ToBytes().hex()
    assert merchant.xpub not in data.decode()  # the xpub itself would reveal every deposit address

    [transfer] = bundle["transfers"]
    assert transfer["tx_hash"] == tx.lower() and transfer["chain_id"] == 31337
    assert transfer["amount_base_units"] == str(DUE) and transfer["state"] == "confirmed"
    assert transfer["to"].lower() == pr.pay_to.lower()
    assert transfer["confirmations_now"] >= bundle["chain"]["confirmations_required"] == 3
    settled_at = bundle["chain"]["head_block_at_settlement"]
    assert transfer["confirmed_at_head_block"] == settled_at and transfer["confirmed_at"]
    assert transfer["confirmations_at_settlement"] == settled_at - transfer["block_number"] + 1 >= 3
    [screened] = bundle["screening"]
    assert (screened["tx_hash"], screened["address"]) == (transfer["tx_hash"], transfer["from"])
    assert screened["outcome"] == "clear" and screened["detail"] == "screening list: not listed"
    assert screened["screened_at"] and "failed_open" in bundle["screening_note"]
    assert (bundle["timeline"][0]["status"], bundle["timeline"][0]["actor"]) == ("open", "api")
    assert bundle["timeline"][-1]["status"] == "paid"
    assert bundle["payment_request"]["status"] == "paid" and bundle["payment_request"]["paid_at"]

    path = write(tmp_path, data)
    code, report = verify(path, "--offline")
    assert (code, report["ok"], report["signature_ok"], report["problems"]) == (0, True, True, [])
    code, report = verify(path)
    assert (code, report["ok"], report["problems"]) == (0, True, [])
    [checked] = report["chain"]["transfers"]
    assert checked["ok"] and checked["tx_hash"] == tx.lower() and checked["confirmations_now"] >= 4


def test_the_merchants_xpub_re_derives_the_deposit_address(
    api: APIClient, paid: tuple[PaymentRequest, str], merchant: Merchant, tmp_path: Path
) -> None:
    from tests.support.local_chain import OTHER_MNEMONIC, account_xpub

    pr, _ = paid
    path = write(tmp_path, download(api, pr))
    assert verify(path, "--offline", "--xpub", merchant.xpub)[0] == 0
    code, report = verify(path, "--offline", "--xpub", account_xpub(OTHER_MNEMONIC))
    assert code == 1 and len(report["problems"]) == 2
    assert report["problems"][0].startswith("deposit: this xpub's fingerprint is ")
    assert report["problems"][1].startswith(f"deposit: m/44'/60'/0'/0/{pr.derivation_index} of this xpub is 0x")
    code, report = verify(path, "--offline", "--xpub", "xpub-not-a-key")
    assert code == 1 and report["problems"][0].startswith("xpub: not a valid extended public key")


def test_the_published_key_is_the_one_that_signs(api: APIClient, paid: tuple[PaymentRequest, str]) -> None:
    pr, _ = paid
    key = APIClient().get("/api/v1/audit-key/").json()  # public: no API key needed
    signature = json.loads(download(api, pr))["signature"]
    assert (key["algorithm"], key["public_key"], key["key_id"]) == (
        signature["algorithm"],
        signature["public_key"],
        signature["key_id"],
    )


# tampering ----------------------------------------------------------------------------------------------
def test_tampered_bundles_fail_with_a_named_reason(
    api: APIClient, paid: tuple[PaymentRequest, str], tmp_path: Path
) -> None:
    pr, _ = paid
    data = download(api, pr)
    original = json.loads(data)

    amount = json.loads(data)
    amount["bundle"]["transfers"][0]["amount_base_units"] = str(DUE * 10)
    removed = json.loads(data)
    removed["bundle"]["transfers"] = []
    flipped = json.loads(data)
    raw = bytearray(base64.b64decode(flipped["signature"]["value"]))
    raw[10] ^= 0x01
    flipped["signature"]["value"] = base64.b64encode(bytes(raw)).decode()
    for name, document in [("amount", amount), ("removed", removed), ("flipped", flipped)]:
        code, report = verify(write(tmp_path, resigned(document), f"{name}.json"), "--offline")
        assert code == 1 and report["ok"] is False, name
        assert report["problems"] == [
            "signature: does not match the bundle (the bundle or the signature was changed)"
        ], name

    # Re-signed by someone else's key: the signature is valid, the key is not this server's.
    forged = audit_bundle.canonical(audit_bundle.sign(amount["bundle"], Ed25519PrivateKey.generate()))
    code, report = verify(write(tmp_path, forged, "forged.json"), "--offline")
    assert code == 1 and any("is not a trusted key" in p for p in report["problems"])
    # ...unless that key is the one the verifier is told to trust.
    public = json.loads(forged)["signature"]["public_key"]
    code, report = verify(write(tmp_path, forged, "forged.json"), "--offline", "--public-key", public)
    assert code == 0, report

    # Reformatted (same content, other bytes): the file is no longer what was served.
    pretty = json.dumps(original, indent=2).encode()
    code, report = verify(write(tmp_path, pretty, "pretty.json"), "--offline")
    assert code == 1 and report["problems"][0].startswith("file: its bytes differ from the canonical")


def test_changing_any_single_byte_fails_verification(api: APIClient, paid: tuple[PaymentRequest, str]) -> None:
    pr, _ = paid
    data = download(api, pr)
    trusted = [audit_bundle.public_key_raw(audit_bundle.signing_key().public_key())]

    def problems(blob: bytes) -> list[str]:
        document, found = audit_bundle.parse_document(blob)
        if document is None:
            return found
        return found + audit_bundle.verify_signature(document, trusted_public_keys=trusted)

    assert problems(data) == []
    passed = []
    for i in range(len(data)):
        changed = bytearray(data)
        changed[i] ^= 0x01
        if not problems(bytes(changed)):
            passed.append(i)
    assert passed == [], f"single-byte changes at {passed[:10]} still verified"

    # Base64 with other unused bits decodes to the same signature bytes: refused as well.
    document = json.loads(data)
    value = document["signature"]["value"]
    assert value.endswith("==")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    document["signature"]["value"] = value[:-3] + alphabet[alphabet.index(value[-3]) ^ 0x01] + "=="
    assert base64.b64decode(document["signature"]["value"]) == base64.b64decode(value)
    assert problems(audit_bundle.canonical(document)) == ["signature: public_key or value is not in canonical base64"]


# the chain check ----------------------------------------------------------------------------------------
def test_a_bundle_whose_transfer_was_reorged_away_fails_the_chain_check(
    api: APIClient, paid: tuple[PaymentRequest, str], local_chain: LocalChain, tmp_path: Path
) -> None:
    pr, tx = paid
    path = write(tmp_path, download(api, pr))
    assert verify(path)[0] == 0
    mined_in = json.loads(path.read_bytes())["bundle"]["transfers"][0]["block_number"]
    local_chain.anvil.reorg(local_chain.anvil.w3.eth.block_number - mined_in + 1, [])  # drops the payment

    assert verify(path, "--offline")[0] == 0  # the signature still holds: the bundle is what the server said
    code, report = verify(path)
    assert code == 1 and report["ok"] is False
    assert report["problems"] == [
        f"transfer {tx.lower()}:{report['chain']['transfers'][0]['log_index']}: transaction not found on chain"
        " (reorged away or never mined)"
    ]


def test_a_transfer_that_differs_from_the_chain_is_named(
    paid: tuple[PaymentRequest, str], local_chain: LocalChain
) -> None:
    """The chain check compares each field, not just the signature (a bundle signed by a faulty ledger)."""
    pr, _ = paid
    bundle = audit_bundle.build_bundle(pr)
    bundle["transfers"][0]["amount_base_units"] = str(DUE + 1)
    bundle["transfers"][0]["from"] = "0x" + "11" * 20
    reader = audit_bundle_reader(local_chain)
    problems = audit_bundle.verify_against_chain(bundle, reader)["problems"]
    assert len(problems) == 2
    assert "amount is 10000000 on chain, 10000001 in the bundle" in problems[1]
    assert f"from is {local_chain_payer()} on chain" in problems[0]


def audit_bundle_reader(local_chain: LocalChain) -> Any:
    from stablepay.chain.rpc import RpcChainReader

    return RpcChainReader([local_chain.anvil.url])


def local_chain_payer() -> str:
    from stablepay.dev import chain as devchain

    return str(devchain.dev_account(1).address).lower()


# access -------------------------------------------------------------------------------------------------
def test_another_merchants_request_answers_404(
    other_api: APIClient, api: APIClient, paid: tuple[PaymentRequest, str]
) -> None:
    pr, _ = paid
    response = other_api.get(f"/api/v1/payment-requests/{pr.pk}/audit/")
    assert response.status_code == 404 and response.json() == {"detail": "no such payment request"}
    assert api.get("/api/v1/payment-requests/00000000-0000-0000-0000-000000000000/audit/").status_code == 404
    assert APIClient().get(f"/api/v1/payment-requests/{pr.pk}/audit/").status_code == 401


def _user(username: str, *permissions: str, merchant: Merchant | None = None) -> Client:
    user = User.objects.create_user(username, password="correct-horse-battery-staple-42")
    for name in permissions:
        app_label, codename = name.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    if merchant is not None:
        merchant.members.add(user)
    client = Client()
    login_as(client, User.objects.get(pk=user.pk))
    return client


def test_the_dashboard_and_ops_buttons_download_the_signed_bundle(
    paid: tuple[PaymentRequest, str], merchant: Merchant, tmp_path: Path
) -> None:
    pr, _ = paid
    member = _user("mia", merchant=merchant)
    page = member.get(f"/merchant/payments/{pr.pk}/")
    assert f'href="/merchant/payments/{pr.pk}/audit/"' in page.content.decode()
    assert "Download audit bundle" in page.content.decode()
    zh = member.get(f"/merchant/payments/{pr.pk}/", HTTP_ACCEPT_LANGUAGE="zh-Hant")
    assert "下載審計資料包" in zh.content.decode()
    response = member.get(f"/merchant/payments/{pr.pk}/audit/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="stablepay-audit-{pr.pk}.json"'
    assert verify(write(tmp_path, response.content, "merchant.json"))[0] == 0

    outsider = _user("bob", merchant=Merchant.objects.get(slug="other"))
    assert outsider.get(f"/merchant/payments/{pr.pk}/audit/").status_code == 404

    ops = _user("olivia", "stablepay.ops_console")
    page = ops.get(f"/ops/requests/{pr.pk}/")
    assert f'href="/ops/requests/{pr.pk}/audit/"' in page.content.decode()
    response = ops.get(f"/ops/requests/{pr.pk}/audit/")
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment;")
    ops_bundle = json.loads(response.content)["bundle"]
    assert ops_bundle["payment_request"]["id"] == str(pr.pk)
    assert verify(write(tmp_path, response.content, "ops.json"))[0] == 0

    assert member.get(f"/ops/requests/{pr.pk}/audit/").status_code == 403  # no ops permission
    assert Client().get(f"/ops/requests/{pr.pk}/audit/").status_code == 302  # to the login page


def test_a_signing_key_from_the_environment_is_used(
    api: APIClient, paid: tuple[PaymentRequest, str], settings: Any, tmp_path: Path
) -> None:
    pr, _ = paid
    seed = bytes(range(32))
    settings.STABLEPAY = {**settings.STABLEPAY, "AUDIT_SIGNING_KEY": base64.b64encode(seed).decode()}
    expected = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    signature = json.loads(download(api, pr))["signature"]
    assert base64.b64decode(signature["public_key"]) == audit_bundle.public_key_raw(expected)
    assert verify(write(tmp_path, download(api, pr)), "--offline")[0] == 0  # the CLI trusts the configured key


def test_a_refunded_requests_bundle_holds_the_ops_action_and_its_timeline(
    api: APIClient, local_chain: LocalChain, merchant: Merchant, tmp_path: Path
) -> None:
    from stablepay.dev import chain as devchain
    from stablepay.ops import services as ops_services
    from tests.support.ops import Exceptions

    pr = Exceptions(local_chain, merchant).overpaid()  # 20 HKDX for a 10.00 HKD request
    _user("olivia", "stablepay.ops_console")
    olivia = User.objects.get(username="olivia")
    payer = str(devchain.dev_account(1).address)
    refund_tx = local_chain.pay(payer, DUE, sender_index=2)  # stands in for the merchant's refund transfer
    ops_services.ops_action_request(
        request_id=pr.pk, action="refund", note="excess sent back", user=olivia, refund_address=payer
    )
    ops_services.ops_refund_tx_record(request_id=pr.pk, tx_hash=refund_tx, user=olivia)

    data = download(api, pr)
    bundle = json.loads(data)["bundle"]
    [action] = bundle["ops_actions"]
    assert (action["action"], action["state"], action["requested_by"], action["note"]) == (
        "refund",
        "done",
        "olivia",
        "excess sent back",
    )
    assert action["refund_address"].lower() == payer.lower()
    assert bundle["payment_request"]["refund_tx_hash"] == refund_tx.lower() == action["refund_tx_hash"]
    assert bundle["payment_request"]["resolution"] == "refund"
    assert any("olivia" in e["actor"] and e["note"] for e in bundle["timeline"])
    [transfer] = bundle["transfers"]
    assert transfer["amount_base_units"] == str(2 * DUE)
    code, report = verify(write(tmp_path, data))
    assert (code, report["problems"]) == (0, [])


def test_keys_from_a_pem_a_seed_or_the_development_file(settings: Any, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    raw = audit_bundle.public_key_raw(key.public_key())
    assert audit_bundle.public_key_raw(audit_bundle.parse_signing_key(pem).public_key()) == raw
    for bad, reason in [("bm90IGEga2V5", "a raw seed is 32 bytes, got 9"), ("%%%", "neither a PEM key nor base64")]:
        with pytest.raises(audit_bundle.BundleError, match=reason):
            audit_bundle.parse_signing_key(bad)

    # Unset: derived from SECRET_KEY, so hosts sharing it agree, another SECRET_KEY gives another key.
    settings.STABLEPAY = {**settings.STABLEPAY, "AUDIT_SIGNING_KEY": ""}
    first = audit_bundle.public_key_raw(audit_bundle.signing_key().public_key())
    assert audit_bundle.public_key_raw(audit_bundle.signing_key().public_key()) == first
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    assert audit_bundle.public_key_raw(audit_bundle.signing_key().public_key()) != first
