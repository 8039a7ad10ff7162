"""The local chain the real-service fixtures build (tests/conftest.py's `local_chain`): an anvil chain with
HKDX and USDC deployed and registered through `stablepay_setup`, merchants "acme" and "other" with xpubs from
known mnemonics; and the helpers the tests use with it (a request through the real service, the setup
document, the ledger's snapshot, the test database's URL for subprocesses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from bip_utils import Bip32Secp256k1, Bip39SeedGenerator
from django.db import connection
from eth_account import Account

from stablepay.chain.factory import reader_for_chain
from stablepay.dev import chain as devchain
from stablepay.ingest import watcher
from stablepay.ledger import services
from stablepay.models import Chain, Merchant, PaymentRequest, Token, Transfer
from tests.support.services import Anvil

Account.enable_unaudited_hdwallet_features()

MERCHANT_MNEMONIC = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
OTHER_MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"
FUNDED = 10**15  # base units minted to each payer account


def account_xpub(mnemonic: str) -> str:
    seed = Bip39SeedGenerator(mnemonic).Generate()
    return str(Bip32Secp256k1.FromSeed(seed).DerivePath("m/44'/60'/0'").PublicKey().ToExtended())


def mnemonic_address(mnemonic: str, index: int) -> str:
    return str(Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{index}").address)


def subprocess_database_url() -> str:
    """pytest-django's test database as a DATABASE_URL, for subprocesses that must see what a test commits."""
    s = connection.settings_dict
    auth = quote(s["USER"] or "", safe="")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"], safe="")
    host = s["HOST"] or "127.0.0.1"
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgresql://{auth}@{host}{port}/{quote(s['NAME'], safe='')}"


def create_request(
    merchant: Merchant,
    *,
    amount: str = "10.00",
    currency: str = "HKD",
    token: str = "HKDX",
    order_reference: str = "T-1",
    **kwargs: Any,
) -> PaymentRequest:
    """A payment request through the real service, as a store's checkout makes it."""
    request, _ = services.payment_request_create(
        merchant=merchant,
        order_reference=order_reference,
        amount=Decimal(amount),
        currency=currency,
        chain_id=31337,
        token_symbol=token,
        **kwargs,
    )
    return request


@dataclass
class LocalChain:
    """An anvil chain with HKDX and USDC registered, and a same-symbol fake HKDX that is not."""

    anvil: Anvil
    tokens: dict[str, str] = field(default_factory=dict)
    fake_hkdx: str = ""
    api_keys: dict[str, str] = field(default_factory=dict)

    @property
    def chain(self) -> Chain:
        return Chain.objects.get(chain_id=31337)

    def token(self, symbol: str) -> Token:
        return Token.objects.get(chain__chain_id=31337, symbol=symbol)

    def pay(self, to: str, amount: int, *, symbol: str = "HKDX", sender_index: int = 1) -> str:
        address = self.fake_hkdx if symbol == "FAKE" else self.tokens[symbol]
        return devchain.transfer(self.anvil.w3, address, to, amount, sender_index=sender_index)

    def scan(self, **kwargs: Any) -> watcher.ScanResult:
        chain = self.chain
        return watcher.scan_chain(chain=chain, reader=reader_for_chain(chain, shared=True), **kwargs)

    def mine(self, n: int = 1) -> None:
        self.anvil.mine(n)

    def settle(self, *, blocks: int = 3, now: datetime | None = None, max_passes: int = 8) -> None:
        """Mine `blocks`, then scan until a pass changes neither the requests nor the transfers."""
        if blocks:
            self.mine(blocks)
        before = ledger_snapshot()
        for _ in range(max_passes):
            self.scan(now=now)
            after = ledger_snapshot()
            if after == before:
                return
            before = after
        raise AssertionError(f"the ledger did not settle within {max_passes} passes")


def send_raw_transfer(local_chain: LocalChain, to: str, amount: int, *, sender_index: int = 1) -> tuple[str, str]:
    """Sign and send an HKDX transfer ourselves; returns (raw signed tx hex, tx hash) for re-inclusion."""
    w3 = local_chain.anvil.w3
    raw = devchain.send_transfer_raw(w3, local_chain.tokens["HKDX"], to, amount, sender_index=sender_index)
    tx_hash = local_chain.anvil.rpc("eth_sendRawTransaction", [raw])
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    assert receipt["status"] == 1
    return raw, tx_hash


def ledger_snapshot() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """What a scan may change about payments: the requests' status and amount paid, and the transfer rows."""
    requests = list(
        PaymentRequest.objects.order_by("pk").values_list("pk", "status", "exception", "amount_paid_base_units")
    )
    transfers = list(Transfer.objects.order_by("pk").values_list("pk", "tx_hash", "log_index", "block_hash", "state"))
    return requests, transfers


def setup_document(anvil_url: str, tokens: dict[str, str], *, confirmations: int = 3) -> dict[str, Any]:
    return {
        "chains": [
            {
                "chain_id": 31337,
                "name": "Local",
                "rpc_urls": [anvil_url],
                "confirmations": confirmations,
                "block_time_seconds": 1,
                "explorer_tx_url": None,
            }
        ],
        "tokens": [
            {"chain_id": 31337, "address": tokens["HKDX"], "symbol": "HKDX", "decimals": 6, "currency": "HKD"},
            {"chain_id": 31337, "address": tokens["USDC"], "symbol": "USDC", "decimals": 6, "currency": "USD"},
        ],
        "merchants": [
            {
                "slug": "acme",
                "name": "Acme HK",
                "xpub": account_xpub(MERCHANT_MNEMONIC),
                "api_key": "acme-test-key-0123456789abcdef0123456789",
                "payment_tolerance_percent": "0.5",
                "expiry_minutes": 15,
                "webhook_url": None,
                "webhook_secret": None,
            },
            {
                "slug": "other",
                "name": "Other Macau",
                "xpub": account_xpub(OTHER_MNEMONIC),
                "api_key": "other-test-key-0123456789abcdef012345678",
                "payment_tolerance_percent": "0",
                "expiry_minutes": 15,
                "webhook_url": None,
                "webhook_secret": None,
            },
        ],
        "fx": {"HKD/MOP": "1.03", "USD/HKD": "7.80"},
    }
