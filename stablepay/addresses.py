"""Deposit addresses: watch-only derivation of child /0/i from a merchant's account-level xpub.

The server never sees a private key. Index allocation is atomic: an UPDATE ... +1 on the merchant row
takes the row lock (the write lock on SQLite) before the index is read, and a unique constraint on
(merchant, derivation_index) backs it up.
"""

from __future__ import annotations

from functools import lru_cache

from bip_utils import Bip32Secp256k1, EthAddrEncoder
from bip_utils.bip.bip32.base import Bip32Base
from django.db import transaction
from django.db.models import F

from stablepay.models import Merchant

ACCOUNT_DEPTH = 3  # m/44'/60'/0'


class XpubError(ValueError):
    """Not a usable account-level extended public key."""


@lru_cache(maxsize=256)
def _external_chain(xpub: str) -> Bip32Base:
    """The xpub's /0 (external) branch; parsed once per process."""
    return parse_xpub(xpub).ChildKey(0)


def parse_xpub(xpub: str) -> Bip32Base:
    try:
        key = Bip32Secp256k1.FromExtendedKey(xpub.strip())
    except Exception as exc:  # bip_utils raises several error types for malformed keys
        raise XpubError(f"not a valid extended public key ({exc})") from exc
    if not key.IsPublicOnly():
        raise XpubError("an extended private key was given: supply the xpub, never the xprv")
    if key.Depth().ToInt() != ACCOUNT_DEPTH:
        raise XpubError(f"expected an account-level key at depth 3 (m/44'/60'/0'), got depth {key.Depth().ToInt()}")
    return key


def derive_address(xpub: str, index: int) -> str:
    """The checksummed address at m/44'/60'/0'/0/index."""
    child = _external_chain(xpub).ChildKey(index)
    return str(EthAddrEncoder.EncodeKey(child.PublicKey().KeyObject()))


def allocate_index(merchant: Merchant) -> int:
    """Take the merchant's next derivation index; never handed out twice, even under concurrency."""
    with transaction.atomic():
        Merchant.objects.filter(pk=merchant.pk).update(next_address_index=F("next_address_index") + 1)
        return Merchant.objects.values_list("next_address_index", flat=True).get(pk=merchant.pk) - 1
