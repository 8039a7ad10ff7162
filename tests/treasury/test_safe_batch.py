"""Safe Transaction Builder files (stablepay/treasury/safe_batch.py): the format the Safe web app imports,
with its checksum rule (the file without the checksum, `meta.name` ignored)."""

from __future__ import annotations

import json

from eth_utils import to_checksum_address

from stablepay.treasury.safe_batch import batch_file, canonical, checksum

SAFE = "0x" + "ab" * 20
TXS = [{"to": "0x" + "cd" * 20, "value": 0, "data": "0x1234"}, {"to": "0x" + "ef" * 20, "value": 5, "data": "0x"}]


def test_the_file_has_the_transaction_builder_fields() -> None:
    batch = batch_file(chain_id=31337, safe_address=SAFE, transactions=TXS, name="Sweep", created_at_ms=1)
    assert batch["version"] == "1.0" and batch["chainId"] == "31337" and batch["createdAt"] == 1
    assert batch["meta"]["createdFromSafeAddress"] == to_checksum_address(SAFE)  # EIP-55, as the app shows
    assert [tx["to"] for tx in batch["transactions"]] == [to_checksum_address(tx["to"]) for tx in TXS]
    assert [tx["value"] for tx in batch["transactions"]] == ["0", "5"]  # decimal strings, as the app writes
    assert all(tx["contractMethod"] is None and tx["contractInputsValues"] is None for tx in batch["transactions"])
    json.dumps(batch)  # plain JSON


def test_the_checksum_covers_everything_but_the_name() -> None:
    batch = batch_file(chain_id=1, safe_address=SAFE, transactions=TXS, name="Sweep", created_at_ms=1)
    assert batch["meta"]["checksum"] == checksum(batch)
    renamed = {**batch, "meta": {**batch["meta"], "name": "Another name"}}
    assert checksum(renamed) == batch["meta"]["checksum"]
    changed = json.loads(json.dumps(batch))
    changed["transactions"][0]["data"] = "0x1235"
    assert checksum(changed) != batch["meta"]["checksum"]


def test_the_canonical_form_sorts_keys_and_keeps_arrays_in_order() -> None:
    assert canonical({"b": [1, "x", None], "a": {"z": True}}) == '{["a","b"]{["z"]true,},[1,"x",null],}'
