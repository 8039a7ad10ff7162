"""`stablepay_setup`: idempotent upsert; a bad file exits non-zero, names the field and changes nothing."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from stablepay.models import Chain, FxRate, Merchant, Token
from stablepay.registry.api_keys import hash_api_key
from tests.support.local_chain import LocalChain, setup_document

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, document: Any, name: str = "setup.json") -> Path:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def snapshot() -> list[Any]:
    return [
        list(Chain.objects.values().order_by("pk")),
        list(Token.objects.values().order_by("pk")),
        list(Merchant.objects.values().order_by("pk")),
        list(FxRate.objects.values("base", "quote", "rate").order_by("pk")),
    ]


def test_setup_is_idempotent_and_stores_hashed_keys(local_chain: LocalChain, tmp_path: Path) -> None:
    document = setup_document(local_chain.anvil.url, local_chain.tokens)
    before = snapshot()
    call_command("stablepay_setup", str(write(tmp_path, document)))
    assert snapshot() == before
    acme = Merchant.objects.get(slug="acme")
    assert acme.api_key_hash == hash_api_key(document["merchants"][0]["api_key"])
    assert document["merchants"][0]["api_key"] not in json.dumps(list(Merchant.objects.values()), default=str)
    chain = Chain.objects.get(chain_id=31337)
    assert chain.start_block is not None and chain.start_block <= local_chain.anvil.w3.eth.block_number


BAD_CASES = [
    (lambda d: d["chains"][0].update(chain_id="x"), "chains[0].chain_id"),
    (lambda d: d["chains"][0].update(rpc_urls=[]), "chains[0].rpc_urls"),
    (lambda d: d["chains"][0].update(confirmations=0), "chains[0].confirmations"),
    (lambda d: d["chains"][0].update(ws_url="http://127.0.0.1:8545"), "chains[0].ws_url"),
    (lambda d: d["tokens"][0].update(address="0x123"), "tokens[0].address"),
    (lambda d: d["tokens"][0].update(currency="EUR"), "tokens[0].currency"),
    (lambda d: d["tokens"][1].update(decimals=99), "tokens[1].decimals"),
    (lambda d: d["tokens"][1].update(chain_id=5), "tokens[1].chain_id"),
    (lambda d: d["merchants"][0].update(xpub="xpub-nope"), "merchants[0].xpub"),
    (lambda d: d["merchants"][1].update(api_key="short"), "merchants[1].api_key"),
    (lambda d: d["merchants"][0].update(payment_tolerance_percent="abc"), "merchants[0].payment_tolerance_percent"),
    (lambda d: d["merchants"][0].update(expiry_minutes=0), "merchants[0].expiry_minutes"),
    (lambda d: d["merchants"][0].update(webhook_url="https://example.test/hook"), "merchants[0].webhook_secret"),
    (lambda d: d["merchants"][1].update(slug="acme"), "merchants[1].slug"),
    (lambda d: d["fx"].update({"HKD/EUR": "8"}), "fx.HKD/EUR"),
    (lambda d: d["fx"].update({"USD/HKD": "-1"}), "fx.USD/HKD"),
]


@pytest.mark.parametrize(("spoil", "field"), BAD_CASES)
def test_bad_file_names_the_field_and_changes_nothing(
    local_chain: LocalChain, tmp_path: Path, spoil: Any, field: str
) -> None:
    document = copy.deepcopy(setup_document(local_chain.anvil.url, local_chain.tokens))
    document["merchants"][0]["name"] = "Renamed"  # a valid change that must not land either
    spoil(document)
    before = snapshot()
    with pytest.raises(CommandError, match=field.replace("[", r"\[").replace("]", r"\]")):
        call_command("stablepay_setup", str(write(tmp_path, document)))
    assert snapshot() == before


def test_not_json_is_refused(local_chain: LocalChain, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="file"):
        call_command("stablepay_setup", str(write(tmp_path, "{not json")))


def test_the_command_exits_non_zero_with_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, {"chains": [{"chain_id": 0, "name": "x", "rpc_urls": ["http://127.0.0.1:1"]}]})
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "manage.py", "stablepay_setup", str(path)], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "chains[0].chain_id" in done.stderr
