"""Deposit addresses: watch-only derivation of child /0/i from a merchant's account-level xpub.

The server never sees a private key. Index allocation is atomic: an UPDATE ... +1 ... RETURNING on the
merchant row takes the row lock (the write lock on SQLite) and reads the new value in one statement; the
lock is held until the caller's transaction ends, and a unique constraint on (merchant,
derivation_index) backs it up. The parsed xpub's /0 branch is cached per process, so deriving an
address is one child-key step.
"""

from __future__ import annotations

import sqlite3
from functools import lru_cache

from bip_utils import Bip32Secp256k1, EthAddrEncoder
from bip_utils.bip.bip32.base import Bip32Base
from django.db import connection, transaction
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


def _update_returning() -> bool:
    if connection.vendor == "sqlite":
        return sqlite3.sqlite_version_info >= (3, 35)
    return connection.vendor == "postgresql"


def allocate_index(merchant: Merchant) -> int:
    """Take the merchant's next derivation index; never handed out twice, even under concurrency.

    Call it as late as possible in the caller's transaction: the merchant row stays locked until it ends.
    """
    if _update_returning():  # one statement, one round trip
        quote, meta = connection.ops.quote_name, Merchant._meta
        table, column = quote(meta.db_table), quote(str(meta.get_field("next_address_index").column))
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {column} = {column} + 1 WHERE {quote(str(meta.pk.column))} = %s"  # noqa: S608
                f" RETURNING {column}",
                [merchant.pk],
            )
            row = cursor.fetchone()
        if row is None:
            raise Merchant.DoesNotExist(f"merchant {merchant.pk} is gone")
        return int(row[0]) - 1
    with transaction.atomic():
        Merchant.objects.filter(pk=merchant.pk).update(next_address_index=F("next_address_index") + 1)
        return Merchant.objects.values_list("next_address_index", flat=True).get(pk=merchant.pk) - 1
