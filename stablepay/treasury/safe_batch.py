"""Safe Transaction Builder batch files (the JSON the Safe web app's Transaction Builder imports).

A batch is {"version": "1.0", "chainId", "createdAt", "meta": {...}, "transactions": [{"to", "value",
"data", "contractMethod", "contractInputsValues"}]}. `meta.checksum` is the Transaction Builder's own:
keccak256 of its canonical serialisation of the file without the checksum and with `meta.name` null
(objects as their sorted key list followed by each value and a comma; arrays and scalars as JSON), so the
app imports the file without a warning. The Safe runs several transactions as one MultiSendCallOnly call.
"""

from __future__ import annotations

import json
import time
from typing import Any

from eth_utils import keccak, to_checksum_address

TX_BUILDER_VERSION = "1.18.0"


def _scalar(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def canonical(value: Any) -> str:
    """The Transaction Builder's serialisation of a JSON value."""
    if isinstance(value, list):
        return "[" + ",".join(canonical(item) for item in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value)
        return "{" + _scalar(keys) + "".join(canonical(value[key]) + "," for key in keys) + "}"
    return _scalar(value)


def checksum(batch: dict[str, Any]) -> str:
    meta = {key: value for key, value in batch["meta"].items() if key != "checksum"}
    return "0x" + keccak(canonical({**batch, "meta": {**meta, "name": None}}).encode()).hex()


def batch_file(
    *,
    chain_id: int,
    safe_address: str,
    transactions: list[dict[str, Any]],
    name: str,
    description: str = "",
    created_at_ms: int | None = None,
) -> dict[str, Any]:
    """A Transaction Builder file that `safe_address` can import and execute as one batch."""
    batch: dict[str, Any] = {
        "version": "1.0",
        "chainId": str(chain_id),
        "createdAt": int(time.time() * 1000) if created_at_ms is None else created_at_ms,
        "meta": {
            "name": name,
            "description": description,
            "txBuilderVersion": TX_BUILDER_VERSION,
            "createdFromSafeAddress": to_checksum_address(safe_address),
            "createdFromOwnerAddress": "",
        },
        "transactions": [
            {
                "to": to_checksum_address(tx["to"]),
                "value": str(int(tx["value"])),
                "data": tx["data"],
                "contractMethod": None,
                "contractInputsValues": None,
            }
            for tx in transactions
        ],
    }
    batch["meta"]["checksum"] = checksum(batch)
    return batch
