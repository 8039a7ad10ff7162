"""Deposit addresses: watch-only derivation equals eth-account's, and indexes never repeat under load."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection

from stablepay.chain.addresses import XpubError, derive_address, parse_xpub
from stablepay.ledger import services
from stablepay.models import Merchant, PaymentRequest
from tests.support.local_chain import MERCHANT_MNEMONIC, LocalChain, account_xpub, mnemonic_address


@pytest.mark.parametrize("index", [0, 1, 2, 19, 1000, 2**31 - 1])
def test_derivation_matches_eth_account(index: int) -> None:
    assert derive_address(account_xpub(MERCHANT_MNEMONIC), index) == mnemonic_address(MERCHANT_MNEMONIC, index)


def test_private_or_wrong_depth_keys_are_refused() -> None:
    from bip_utils import Bip32Secp256k1, Bip39SeedGenerator

    root = Bip32Secp256k1.FromSeed(Bip39SeedGenerator(MERCHANT_MNEMONIC).Generate())
    with pytest.raises(XpubError, match="private"):
        parse_xpub(root.DerivePath("m/44'/60'/0'").PrivateKey().ToExtended())
    with pytest.raises(XpubError, match="depth"):
        parse_xpub(root.PublicKey().ToExtended())
    with pytest.raises(XpubError):
        parse_xpub("xpub-not-a-key")


@pytest.mark.django_db(transaction=True)
def test_concurrent_checkouts_never_share_an_index(local_chain: LocalChain) -> None:
    assert connection.vendor == "postgresql"
    merchant = Merchant.objects.get(slug="acme")

    def create(i: int) -> int:
        try:
            request, _ = services.payment_request_create(
                merchant=merchant,
                order_reference=f"T-{i}",
                amount=Decimal("10.00"),
                currency="HKD",
                chain_id=31337,
                token_symbol="HKDX",
            )
            return request.derivation_index
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=16) as pool:
        indexes = list(pool.map(create, range(1000)))
    assert sorted(indexes) == list(range(1000))
    assert PaymentRequest.objects.values("pay_to").distinct().count() == 1000
    merchant.refresh_from_db()
    assert merchant.next_address_index == 1000


@pytest.mark.django_db(transaction=True)
def test_an_allocation_on_its_own_does_not_wait_for_the_disk_nor_change_the_session(local_chain: LocalChain) -> None:
    from stablepay.chain.addresses import allocate_index

    merchant = Merchant.objects.get(slug="acme")
    assert [allocate_index(merchant) for _ in range(3)] == [0, 1, 2]
    with connection.cursor() as cursor:  # SET LOCAL: only the allocation's own transaction ran without fsync
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)
    merchant.refresh_from_db()
    assert merchant.next_address_index == 3
