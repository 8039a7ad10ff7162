"""Audit bundles: one payment request's evidence as a signed JSON document, and its verification.

The document is `{"bundle": {...}, "signature": {...}}`. `bundle` holds the quote, the deposit address
(derivation path and the account xpub's fingerprint, never the xpub), every transfer, the screening
results, the timeline with actors, the ops actions and a webhook summary. `signature` is Ed25519 over the
canonical serialization of `bundle`:

    json.dumps(bundle, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

(sorted keys, no whitespace, UTF-8; no floats anywhere, amounts are strings, so this is also the RFC 8785
form of the body). The served file is the canonical serialization of the whole document, so a verifier
also refuses a file whose bytes differ from that form: any changed byte fails verification.

The key: STABLEPAY_AUDIT_SIGNING_KEY (a PEM private key or the base64 of a raw 32-byte seed); unset, a
key derived from SECRET_KEY with HKDF (so changing SECRET_KEY changes it: set the variable to keep one
key across such a change; old bundles stay verifiable with their public key). The public key is
published at GET /api/v1/audit-key/ and inside every signature.

Chain verification re-reads each transfer's receipt by transaction hash and checks the block, the log
and the Transfer it holds against the bundle.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone

from stablepay.chain import forwarder
from stablepay.chain.addresses import XpubError, derive_address, parse_xpub
from stablepay.chain.reader import TRANSFER_TOPIC
from stablepay.conf import app_settings
from stablepay.models import Cursor, PaymentRequest, Transfer, TransferState

FORMAT = "stablepay.ingest.chain_audit-bundle/1"
ALGORITHM = "Ed25519"
CANONICALIZATION = "json-sorted-keys-no-whitespace-utf8"
SIGNATURE_FIELDS = {"algorithm", "canonicalization", "public_key", "key_id", "value"}
SCREENING_NOTE = (
    "Each transfer's payer (`from`) was screened once, before the transfer was recorded, by the server's "
    "screening backend. outcome: clear (answered, not flagged), hit (flagged: the request was held for "
    "compliance review), failed_closed (the backend did not answer and the amount was at or above the "
    "fail-open limit: held), failed_open (did not answer, below the limit: passed), not_screened (recorded "
    "before screening existed). An unanswered screening is retried; `detail` then keeps the first outcome."
)
CONFIRMATIONS_NOTE = (
    "`confirmations_at_settlement`: head_block_at_settlement - block_number + 1, for each transfer the "
    "watcher had confirmed by `payment_request.paid_at`; head_block_at_settlement is the watcher's head "
    "when the last of those was confirmed (when ops accepted the payment, that is a lower bound). Null for "
    "a transfer confirmed after settlement, or none when the request was never paid. Each transfer's "
    "`confirmed_at` / `confirmed_at_head_block` say when the watcher confirmed it; `confirmations_now` is "
    "counted from `head_block`, the newest block the watcher had seen when this bundle was made."
)
FX_SOURCE = (
    "stablepay's FX table (stablepay_setup `fx`, else the built-in HKD/MOP 1.03 and USD/HKD 7.80), read at "
    "quote time; `rate` is the rate stored on the request then, and `amount_due_base_units` was computed from "
    "the exact ratio (rounded up). `fx_rates` is that FX table as stored with the request (null for a request "
    "made before it was stored); refunds and accepts are valued with it, never with a later table."
)


class BundleError(ValueError):
    """A signing key that cannot be read."""


# canonical form and keys --------------------------------------------------------------------------------
def canonical(value: Any) -> bytes:
    """The one serialization that is signed (and served): sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _derived_seed() -> str:
    """Unset: a seed derived from SECRET_KEY with HKDF-SHA256, so every host that shares SECRET_KEY (as
    they must already) signs with the same key, and nothing is written to disk."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"stablepay audit bundles", info=b"ed25519 seed v1")
    return base64.b64encode(hkdf.derive(settings.SECRET_KEY.encode())).decode()


@lru_cache(maxsize=8)
def parse_signing_key(text: str) -> Ed25519PrivateKey:
    """A PEM Ed25519 private key, or the base64 of a raw 32-byte seed."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise BundleError(f"not a readable PEM private key ({exc})") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise BundleError("the PEM key is not an Ed25519 key")
        return key
    try:
        seed = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BundleError("neither a PEM key nor base64") from exc
    if len(seed) != 32:
        raise BundleError(f"a raw seed is 32 bytes, got {len(seed)}")
    return Ed25519PrivateKey.from_private_bytes(seed)


def configured_key_text() -> str:
    return app_settings.AUDIT_SIGNING_KEY.strip()


def signing_key() -> Ed25519PrivateKey:
    return parse_signing_key(configured_key_text() or _derived_seed())


def public_key_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_raw: bytes) -> str:
    """The first 16 hex digits of the SHA-256 of the raw public key."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def public_key_info() -> dict[str, str]:
    """What a third party needs to verify: the algorithm, the raw public key (base64, and PEM) and its id."""
    public = signing_key().public_key()
    raw = public_key_raw(public)
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return {
        "algorithm": ALGORITHM,
        "public_key": base64.b64encode(raw).decode(),
        "public_key_pem": pem.decode(),
        "key_id": key_id(raw),
        "canonicalization": CANONICALIZATION,
    }


# building -----------------------------------------------------------------------------------------------
def _time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _xpub_identity(xpub: str) -> dict[str, str]:
    key = parse_xpub(xpub)
    return {
        "xpub_fingerprint": key.FingerPrint().ToBytes().hex(),
        "xpub_key_identifier": key.PublicKey().KeyIdentifier().hex(),
        "xpub_parent_fingerprint": key.ParentFingerPrint().ToBytes().hex(),
    }


def _confirmed_by(transfer: Transfer, paid_at: datetime | None) -> bool:
    """Confirmed by the watcher at or before the request was paid (its confirmation is recorded)."""
    return (
        paid_at is not None
        and transfer.confirmed_at is not None
        and transfer.confirmed_head_block is not None
        and transfer.confirmed_at <= paid_at
    )


def build_bundle(payment_request: PaymentRequest, *, now: datetime | None = None) -> dict[str, Any]:
    """The unsigned body: what the ledger holds about one request, read in a handful of queries."""
    pr = PaymentRequest.objects.select_related("merchant", "token__chain").get(pk=payment_request.pk)
    token, chain = pr.token, pr.token.chain
    cursor = Cursor.objects.filter(chain=chain).first()
    head = cursor.head_block if cursor is not None and cursor.head_block else None
    rows = list(pr.transfers.select_related("token", "chain").order_by("block_number", "log_index", "pk"))
    settled = {t.pk for t in rows if _confirmed_by(t, pr.paid_at)}
    settlement_head = max((t.confirmed_head_block or 0 for t in rows if t.pk in settled), default=None)
    transfers, screening = [], []
    for t in rows:
        screening.append(
            {
                "chain_id": t.chain.chain_id,
                "tx_hash": t.tx_hash,
                "log_index": t.log_index,
                "address": t.from_address,
                "outcome": t.screening or "not_screened",
                "detail": t.screening_detail,
                "screened_at": _time(t.screened_at),
            }
        )
        transfers.append(
            {
                "chain_id": t.chain.chain_id,
                "tx_hash": t.tx_hash,
                "log_index": t.log_index,
                "block_number": t.block_number,
                "block_hash": t.block_hash,
                "block_timestamp": _time(t.block_timestamp),
                "from": t.from_address,
                "to": t.to_address,
                "token_symbol": t.token.symbol,
                "token_address": t.token.address,
                "amount_base_units": str(int(t.amount_base_units)),
                "state": t.state,
                "reviewed": t.reviewed,
                "recorded_at": _time(t.created_at),
                "confirmed_at": _time(t.confirmed_at),
                "confirmed_at_head_block": t.confirmed_head_block,
                "confirmations_at_settlement": (
                    settlement_head - t.block_number + 1 if settlement_head and t.pk in settled else None
                ),
                "confirmations_now": t.confirmations_at(head),
            }
        )
    actions = [
        {
            "id": a.pk,
            "action": a.action,
            "exception": a.exception,
            "state": a.state,
            "note": a.note,
            "refund_address": a.refund_address,
            "refund_tx_hash": a.refund_tx_hash,
            "requested_by": a.requested_by.get_username(),
            "requested_at": _time(a.requested_at),
            "decided_by": a.decided_by.get_username() if a.decided_by is not None else None,
            "decided_at": _time(a.decided_at),
            "decision_note": a.decision_note,
        }
        for a in pr.ops_actions.select_related("requested_by", "decided_by").order_by("requested_at", "pk")
    ]
    return {
        "format": FORMAT,
        "generated_at": _time(now or timezone.now()),
        "merchant": {"slug": pr.merchant.slug, "name": pr.merchant.name},
        "payment_request": {
            "id": str(pr.pk),
            "order_reference": pr.order_reference,
            "status": pr.status,
            "exception": pr.exception,
            "resolution": pr.resolution,
            "created_at": _time(pr.created_at),
            "expires_at": _time(pr.expires_at),
            "paid_at": _time(pr.paid_at),
            "amount_paid_base_units": str(int(pr.amount_paid_base_units)),
            "refund_address": pr.refund_address,
            "refund_tx_hash": pr.refund_tx_hash,
        },
        "quote": {
            "amount": format(pr.amount, "f"),
            "currency": pr.currency,
            "token_currency": token.currency,
            "rate": format(pr.rate.normalize(), "f"),
            "rate_meaning": f"{token.symbol} per 1 {pr.currency}",
            "amount_due_base_units": str(int(pr.amount_due_base_units)),
            "fx_source": FX_SOURCE,
            "fx_rates": pr.fx_rates,
            "quoted_at": _time(pr.created_at),
        },
        "token": {
            "chain_id": chain.chain_id,
            "symbol": token.symbol,
            "address": token.address,
            "decimals": token.decimals,
            "currency": token.currency,
        },
        "chain": {
            "chain_id": chain.chain_id,
            "name": chain.name,
            "confirmations_required": chain.confirmations,
            "head_block": head,
            "head_block_at_settlement": settlement_head,
            "confirmations_note": CONFIRMATIONS_NOTE,
        },
        "deposit": _deposit(pr),
        "transfers": transfers,
        "screening": screening,
        "screening_note": SCREENING_NOTE,
        "timeline": [
            {"at": _time(e.at), "status": e.status, "exception": e.exception, "note": e.note, "actor": e.actor}
            for e in pr.events.order_by("at", "pk")
        ],
        "ops_actions": actions,
        "webhooks": [
            {
                "event_id": str(w.event_id),
                "type": w.type,
                "created_at": _time(w.created_at),
                "attempts": w.attempts,
                "delivered_at": _time(w.delivered_at),
                "last_status_code": w.last_status_code,
            }
            for w in pr.webhooks.order_by("created_at", "pk")
        ],
    }


def sign(bundle: dict[str, Any], key: Ed25519PrivateKey | None = None) -> dict[str, Any]:
    key = key or signing_key()
    raw = public_key_raw(key.public_key())
    return {
        "bundle": bundle,
        "signature": {
            "algorithm": ALGORITHM,
            "canonicalization": CANONICALIZATION,
            "public_key": base64.b64encode(raw).decode(),
            "key_id": key_id(raw),
            "value": base64.b64encode(key.sign(canonical(bundle))).decode(),
        },
    }


def signed_bundle_bytes(payment_request: PaymentRequest) -> bytes:
    """The file a merchant downloads: the canonical serialization of {bundle, signature}."""
    return canonical(sign(build_bundle(payment_request)))


def filename(payment_request: PaymentRequest) -> str:
    return f"stablepay-audit-{payment_request.pk}.json"


def download_response(payment_request: PaymentRequest) -> HttpResponse:
    """The bundle as a file download: the same bytes from the API and from both dashboards."""
    response = HttpResponse(signed_bundle_bytes(payment_request), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{filename(payment_request)}"'
    response["Cache-Control"] = "no-store"
    return response


# verifying ----------------------------------------------------------------------------------------------
def parse_document(data: bytes) -> tuple[dict[str, Any] | None, list[str]]:
    """The document, or the reasons it is not one (bad UTF-8/JSON, wrong shape, not the canonical bytes)."""
    try:
        document = json.loads(data.decode("utf-8"), parse_float=_no_float, parse_constant=_no_float)
    except (UnicodeDecodeError, ValueError) as exc:
        return None, [f"file: not valid UTF-8 JSON ({exc})"]
    if not isinstance(document, dict) or set(document) != {"bundle", "signature"}:
        return None, ["file: expected an object with exactly `bundle` and `signature`"]
    if not isinstance(document["bundle"], dict) or not isinstance(document["signature"], dict):
        return None, ["file: `bundle` and `signature` must be objects"]
    problems = []
    if canonical(document) != data.rstrip(b"\n"):
        problems.append("file: its bytes differ from the canonical serialization (changed after signing?)")
    return document, problems


def _no_float(value: str) -> Any:
    raise ValueError(f"non-integer number {value!r}: a bundle holds none")


def verify_signature(document: dict[str, Any], *, trusted_public_keys: Sequence[bytes]) -> list[str]:
    """[] when `signature` is a valid Ed25519 signature of `bundle` by one of the trusted keys."""
    signature = document["signature"]
    if set(signature) != SIGNATURE_FIELDS:
        return [f"signature: expected exactly the fields {', '.join(sorted(SIGNATURE_FIELDS))}"]
    if signature["algorithm"] != ALGORITHM:
        return [f"signature: algorithm {signature['algorithm']!r} is not {ALGORITHM}"]
    if signature["canonicalization"] != CANONICALIZATION:
        return [f"signature: canonicalization {signature['canonicalization']!r} is not {CANONICALIZATION}"]
    try:
        public_raw = base64.b64decode(str(signature.get("public_key", "")), validate=True)
        value = base64.b64decode(str(signature.get("value", "")), validate=True)
        public = Ed25519PublicKey.from_public_bytes(public_raw)
    except (binascii.Error, ValueError):
        return ["signature: public_key or value is not valid base64 of the right length"]
    if base64.b64encode(public_raw).decode() != signature["public_key"] or (
        base64.b64encode(value).decode() != signature["value"]
    ):
        return ["signature: public_key or value is not in canonical base64"]  # other bytes, same decoding
    problems = []
    if signature.get("key_id") != key_id(public_raw):
        problems.append("signature: key_id does not match public_key")
    if public_raw not in trusted_public_keys:
        problems.append(f"signature: public key {key_id(public_raw)} is not a trusted key")
    try:
        public.verify(value, canonical(document["bundle"]))
    except InvalidSignature:
        problems.append("signature: does not match the bundle (the bundle or the signature was changed)")
    return problems


def _deposit(pr: PaymentRequest) -> dict[str, Any]:
    """How the deposit address was made: child /0/i of the merchant's xpub (its fingerprint, never the xpub), or
    a CREATE2 forwarder, which anyone can recompute from the fields given (verify_forwarder)."""
    if pr.deposit_salt:
        salt = bytes.fromhex(pr.deposit_salt[2:])
        settlement = forwarder.settlement_of(salt)
        return {
            "address": pr.pay_to,
            "mode": "forwarder",
            "factory": forwarder.factory_address(),
            "salt": pr.deposit_salt,
            "init_code_hash": "0x" + forwarder.init_code_hash(settlement).hex(),
            "settlement_address": settlement,
        }
    return {
        "address": pr.pay_to,
        "mode": "xpub",
        "derivation_index": pr.derivation_index,
        "derivation_path": f"m/44'/60'/0'/0/{pr.derivation_index}",
        **_xpub_identity(pr.merchant.xpub),
    }


def verify_forwarder(bundle: dict[str, Any]) -> list[str]:
    """[] unless the bundle's forwarder deposit address is not CREATE2(factory, salt, init_code_hash), the salt
    does not name the settlement address, or the init-code hash is not the Forwarder's for that address."""
    deposit = bundle.get("deposit") or {}
    if deposit.get("mode") != "forwarder":
        return []
    try:
        salt = bytes.fromhex(str(deposit.get("salt", ""))[2:])
        code_hash = bytes.fromhex(str(deposit.get("init_code_hash", ""))[2:])
        recomputed = forwarder.create2_address(str(deposit.get("factory", "")), salt, code_hash)
        settlement = forwarder.settlement_of(salt)
    except (ValueError, forwarder.ForwarderError) as exc:
        return [f"deposit: the forwarder fields do not parse ({exc})"]
    problems = []
    if recomputed.lower() != str(deposit.get("address", "")).lower():
        problems.append(
            f"deposit: CREATE2(factory, salt, init_code_hash) is {recomputed}, the bundle says {deposit.get('address')}"
        )
    if settlement.lower() != str(deposit.get("settlement_address", "")).lower():
        problems.append(
            f"deposit: the salt names settlement address {settlement}, "
            f"the bundle says {deposit.get('settlement_address')}"
        )
    elif code_hash != forwarder.init_code_hash(settlement):
        problems.append("deposit: init_code_hash is not the Forwarder's for that settlement address")
    if str(deposit.get("factory", "")).lower() != forwarder.factory_address().lower():
        problems.append(
            f"deposit: the factory is {deposit.get('factory')}, stablepay's is {forwarder.factory_address()}"
        )
    return problems


def verify_deposit(bundle: dict[str, Any], xpub: str) -> list[str]:
    """[] when the bundle's deposit address is child /0/i of `xpub` and its fingerprint is this xpub's
    (for a merchant, who holds the xpub the bundle leaves out)."""
    deposit = bundle.get("deposit") or {}
    index = deposit.get("derivation_index")
    if not isinstance(index, int) or deposit.get("derivation_path") != f"m/44'/60'/0'/0/{index}":
        return ["deposit: derivation_path and derivation_index disagree"]
    try:
        identity = _xpub_identity(xpub)
        address = derive_address(xpub, index)
    except XpubError as exc:
        return [f"xpub: {exc}"]
    problems = []
    if identity["xpub_fingerprint"] != deposit.get("xpub_fingerprint"):
        problems.append(
            f"deposit: this xpub's fingerprint is {identity['xpub_fingerprint']}, "
            f"the bundle's {deposit.get('xpub_fingerprint')}"
        )
    if address.lower() != str(deposit.get("address", "")).lower():
        problems.append(
            f"deposit: m/44'/60'/0'/0/{index} of this xpub is {address}, the bundle says {deposit.get('address')}"
        )
    return problems


def _receipt_problems(transfer: dict[str, Any], deposit: str, receipt: Any, block: Any) -> list[str]:
    where = f"transfer {transfer.get('tx_hash')}:{transfer.get('log_index')}"
    if receipt is None:
        return [f"{where}: transaction not found on chain (reorged away or never mined)"]
    problems = []
    if receipt.get("status") != "0x1":
        problems.append(f"{where}: the transaction failed on chain (status {receipt.get('status')})")
    block_number = int(receipt.get("blockNumber", "0x0"), 16)
    receipt_hash = str(receipt.get("blockHash", "")).lower()
    for name, on_chain, in_bundle in (
        ("block_number", block_number, transfer.get("block_number")),
        ("block_hash", receipt_hash, str(transfer.get("block_hash", "")).lower()),
    ):
        if on_chain != in_bundle:
            problems.append(f"{where}: {name} is {on_chain} on chain, {in_bundle} in the bundle")
    if block is None or str(block.get("hash", "")).lower() != receipt_hash:
        problems.append(f"{where}: block {block_number} of the canonical chain is not the receipt's block")
    wanted = transfer.get("log_index")
    log = next((x for x in receipt.get("logs") or [] if int(x.get("logIndex", "0x0"), 16) == wanted), None)
    if log is None:
        return [*problems, f"{where}: no log with log_index {wanted} in the transaction"]
    topics = [str(x).lower() for x in log.get("topics") or []]
    if len(topics) != 3 or topics[0] != TRANSFER_TOPIC:
        return [*problems, f"{where}: the log is not an ERC-20 Transfer"]
    expected = {
        "token contract": (str(log.get("address", "")).lower(), str(transfer.get("token_address", "")).lower()),
        "from": ("0x" + topics[1][-40:], str(transfer.get("from", "")).lower()),
        "to": ("0x" + topics[2][-40:], str(transfer.get("to", "")).lower()),
        "to (the deposit address)": ("0x" + topics[2][-40:], deposit.lower()),
        "amount": (str(int(log.get("data", "0x0"), 16)), str(transfer.get("amount_base_units"))),
    }
    for name, (on_chain, in_bundle) in expected.items():
        if on_chain != in_bundle:
            problems.append(f"{where}: {name} is {on_chain} on chain, {in_bundle} in the bundle")
    return problems


def verify_against_chain(bundle: dict[str, Any], reader: Any) -> dict[str, Any]:
    """Re-read every transfer that the ledger has not orphaned, by its transaction hash.

    `reader` is an RpcChainReader (its `batch`, over its URLs with fail-over). Returns
    {"transfers": [{tx_hash, log_index, ok, problems, confirmations_now}], "skipped": [...], "problems": [...]}.
    """
    deposit = str(bundle.get("deposit", {}).get("address", ""))
    checked, skipped, problems = [], [], []
    transfers = [t for t in bundle.get("transfers", []) if isinstance(t, dict)]
    live = [t for t in transfers if t.get("state") != TransferState.ORPHANED]
    skipped = [
        {"tx_hash": t.get("tx_hash"), "log_index": t.get("log_index"), "reason": "orphaned in the ledger"}
        for t in transfers
        if t.get("state") == TransferState.ORPHANED
    ]
    calls: list[tuple[str, list[Any]]] = [("eth_blockNumber", [])]
    for t in live:
        calls.append(("eth_getTransactionReceipt", [t.get("tx_hash")]))
        calls.append(("eth_getBlockByNumber", [hex(int(t.get("block_number") or 0)), False]))
    results = reader.batch(calls)
    head = int(results[0], 16)
    for i, t in enumerate(live):
        receipt, block = results[1 + 2 * i], results[2 + 2 * i]
        found = _receipt_problems(t, deposit, receipt, block)
        problems.extend(found)
        number = t.get("block_number")
        checked.append(
            {
                "tx_hash": t.get("tx_hash"),
                "log_index": t.get("log_index"),
                "ok": not found,
                "problems": found,
                "confirmations_now": head - number + 1 if not found and isinstance(number, int) else 0,
            }
        )
    return {"head_block": head, "transfers": checked, "skipped": skipped, "problems": problems}
