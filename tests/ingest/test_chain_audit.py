"""`stablepay_audit` re-reads the chain on its own and finds what the ledger lacks, adds or misstates."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.management import call_command

from stablepay.models import Merchant, Transfer
from tests.support.ledger_triggers import ledger_unguarded
from tests.support.local_chain import LocalChain, create_request


def audit(local_chain: LocalChain, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:  # type: ignore[type-arg]
    head = local_chain.anvil.w3.eth.block_number
    code = 0
    try:
        call_command("stablepay_audit", "--chain-id", "31337", "--from-block", "0", "--to-block", str(head))
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def paid_ledger(local_chain: LocalChain, merchant: Merchant) -> LocalChain:
    for i in range(3):
        request = create_request(merchant, order_reference=f"A-{i}")
        local_chain.pay(request.pay_to, int(request.amount_due_base_units))
    local_chain.pay("0x000000000000000000000000000000000000dEaD", 5)  # not ours: never audited
    local_chain.mine(3)
    local_chain.scan()
    local_chain.scan()
    return local_chain


def test_a_faithful_ledger_is_clean(paid_ledger: LocalChain, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = audit(paid_ledger, capsys)
    assert code == 0
    assert report["transfers_on_chain"] == report["transfers_in_ledger"] == 3
    assert report["missing"] == report["extra"] == report["mismatched"] == []


def test_missing_extra_and_mismatched_are_reported(paid_ledger: LocalChain, capsys: pytest.CaptureFixture[str]) -> None:
    first, second, third = Transfer.objects.order_by("block_number")
    with ledger_unguarded():  # a tamperer with owner rights: the ledger's triggers refuse both otherwise
        Transfer.objects.filter(pk=first.pk)._raw_delete(first._state.db)
        Transfer.objects.filter(pk=second.pk).update(amount_base_units=Decimal(1))
    Transfer.objects.create(
        chain=third.chain,
        token=third.token,
        payment_request=third.payment_request,
        tx_hash="0x" + "ab" * 32,
        log_index=0,
        block_number=third.block_number,
        block_hash=third.block_hash,
        block_timestamp=third.block_timestamp,
        from_address=third.from_address,
        to_address=third.to_address,
        amount_base_units=Decimal(7),
    )
    code, report = audit(paid_ledger, capsys)
    assert code == 1
    assert [row["tx_hash"] for row in report["missing"]] == [first.tx_hash]
    assert [row["tx_hash"] for row in report["extra"]] == ["0x" + "ab" * 32]
    assert [row["tx_hash"] for row in report["mismatched"]] == [second.tx_hash]
    assert report["mismatched"][0]["ledger"]["amount_base_units"] == "1"


def test_unknown_chain_is_an_error(local_chain: LocalChain) -> None:
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="chain-id"):
        call_command("stablepay_audit", "--chain-id", "999", "--from-block", "0", "--to-block", "1")
