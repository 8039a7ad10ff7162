"""Deposit addresses: watch-only derivation of child /0/i from a merchant's account-level xpub.

The server never sees a private key. Index allocation is atomic: an UPDATE ... +1 ... RETURNING on the
merchant row takes the row lock (the write lock on SQLite) and reads the new value in one statement, and
a unique constraint on (merchant, derivation_index) backs it up. Every checkout of a merchant queues on
that row lock, so it is held as briefly as possible: see allocate_index. The parsed xpub's /0 branch is
cached per process, so deriving an address is one child-key step.
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


def _increment(merchant: Merchant, *, async_commit: bool = False) -> int:
    if _update_returning():  # one statement, one round trip
        quote, meta = connection.ops.quote_name, Merchant._meta
        table, column = quote(meta.db_table), quote(str(meta.get_field("next_address_index").column))
        # set_config(..., true) is SET LOCAL: it lasts until the end of this transaction, here the statement's own.
        lazy = " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit" if async_commit else ""
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {column} = {column} + 1{lazy}"  # noqa: S608
                f" WHERE {quote(str(meta.pk.column))} = %s RETURNING {column}",
                [merchant.pk],
            )
            row = cursor.fetchone()
        if row is None:
            raise Merchant.DoesNotExist(f"merchant {merchant.pk} is gone")
        return int(row[0]) - 1
    Merchant.objects.filter(pk=merchant.pk).update(next_address_index=F("next_address_index") + 1)
    return Merchant.objects.values_list("next_address_index", flat=True).get(pk=merchant.pk) - 1


def allocate_index(merchant: Merchant) -> int:
    """Take the merchant's next derivation index; never handed out twice, even under concurrency.

    Called inside a transaction, the increment is part of it and the merchant row stays locked until
    it ends.

    Called outside one (the API's case), the increment is its own short transaction, so the row is
    locked for the UPDATE alone rather than for the whole checkout: on PostgreSQL one autocommit
    statement (one round trip, no BEGIN/COMMIT) that commits without waiting for the disk
    (synchronous_commit off; ~1 ms of fsync saved while holding the lock). That is safe: the request
    that uses the index commits after it, normally, and that commit flushes the log up to and past
    the increment, so the index is durable before any answer carries its address; a crash before
    loses only indexes that no one was given, and the unique constraint would refuse a reused one
    anyway. An index whose request then fails (a replayed Idempotency-Key, say) is skipped:
    a gap, never a reuse.
    """
    if connection.in_atomic_block:
        return _increment(merchant)
    if connection.vendor == "postgresql" and connection.get_autocommit():
        return _increment(merchant, async_commit=True)
    with transaction.atomic():
        return _increment(merchant)
