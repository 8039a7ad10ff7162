"""Issue 14 part 1: one `stablepay_scan --once` pass takes a transfer that is already deep enough all the
way: recorded, confirmed, reconciled (CONTRACT §7). Each case: the request is made through the API, the
shopper pays, 4 blocks are mined over the payment (5 of 3 confirmations), exactly ONE pass runs, and the
outcome is read through `GET /api/v1/payment-requests/{id}/`. No pass is needed before the payment: the
scan starts at the head `stablepay_setup` saw. Coins: HKDX (the TestStablecoin double), Circle's USDC
(Circle's contracts) and USDT, our TetherLikeToken: our own contract reproducing the ABI and events of
Tether's USDT, not Tether's bytecode (tests/support/real_coins.py); each request is 10.00 = 10_000_000
base units due. The USDT fee cases (`setParams`) and the look-alike probe's on-chain `decimals()` read
(a uint256 there) close the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from eth_typing import HexStr
from rest_framework.test import APIClient
from web3.exceptions import TransactionNotFound

from stablepay.dev import chain as devchain
from stablepay.ledger import services
from stablepay.models import Chain, Merchant, Transfer
from stablepay.ops import lookalikes
from tests.support import real_coins
from tests.support.local_chain import setup_document
from tests.support.services import Anvil

DUE = 10_000_000  # 10.00 in a 6-decimal coin
CONFIRMATIONS = 3  # the chain's, in setup_document
DEEP = 4  # blocks mined over the payment: it has 5 confirmations when the pass runs
PAYERS = (1, 2)
FUNDED = 10**12  # base units of each coin per payer
CURRENCY = {"HKDX": "HKD", "USDC": "USD", "USDT": "USD"}
COINS = ["HKDX", "USDC", "USDT"]  # HKDX: the test double; USDC: Circle's contracts; USDT: Tether-like
OTHER_COIN = {"HKDX": "USDC", "USDC": "USDT", "USDT": "USDC"}  # another registered coin, for wrong_token


@dataclass
class RealCoinChain:
    """Anvil with HKDX, Circle's USDC and the Tether-like USDT registered through `stablepay_setup`."""

    anvil: Anvil
    tokens: dict[str, str]
    api: APIClient
    merchant_slug: str = "acme"
    passes: list[str] = field(default_factory=list)

    @property
    def merchant(self) -> Merchant:
        return Merchant.objects.get(slug=self.merchant_slug)

    def create(self, coin: str, reference: str = "ONE-1") -> dict[str, Any]:
        body = {"order_reference": reference, "amount": "10.00", "currency": CURRENCY[coin], "chain_id": 31337}
        response = self.api.post(
            "/api/v1/payment-requests/", json.dumps({**body, "token": coin}), content_type="application/json"
        )
        assert response.status_code == 201, response.content
        data: dict[str, Any] = response.json()
        assert data["amount_due_base_units"] == str(DUE)
        return data

    def read(self, request_id: str) -> dict[str, Any]:
        response = self.api.get(f"/api/v1/payment-requests/{request_id}/")
        assert response.status_code == 200, response.content
        data: dict[str, Any] = response.json()
        return data

    def pay(self, coin: str, to: str, amount: int, *, sender_index: int = 1) -> str:
        return real_coins.transfer(self.anvil.w3, self.tokens[coin], to, amount, sender_index=sender_index)

    def mine(self, n: int) -> None:
        self.anvil.mine(n)

    def one_pass(self) -> None:
        """`manage.py stablepay_scan --once`, as ops or cron run it."""
        call_command("stablepay_scan", "--once")
        self.passes.append("--once")


@dataclass(frozen=True)
class CoinState:
    """A chain with the three coins deployed and the payers funded, as `anvil_dumpState` gives it."""

    state: str
    tokens: dict[str, str]


@pytest.fixture(scope="session")
def coin_state() -> CoinState:
    """Deploy once per session; each test loads the state into an anvil of its own (same addresses)."""
    with Anvil() as node:
        w3 = node.w3
        tokens: dict[str, str] = {
            "HKDX": devchain.deploy_token(w3, name="HKD Stablecoin", symbol="HKDX", decimals=6),
            "USDC": real_coins.deploy_circle_usdc(w3),
            "USDT": real_coins.deploy_tether_like_usdt(w3),
        }
        fund: dict[str, Callable[[str, int], object]] = {
            "HKDX": lambda to, amount: devchain.mint(w3, tokens["HKDX"], to, amount),
            "USDC": lambda to, amount: real_coins.mint_circle_usdc(w3, tokens["USDC"], to, amount),
            "USDT": lambda to, amount: real_coins.fund_tether_like_usdt(w3, tokens["USDT"], to, amount),
        }
        for coin in COINS:
            for payer in PAYERS:
                fund[coin](devchain.dev_account(payer).address, FUNDED)
        return CoinState(state=node.rpc("anvil_dumpState"), tokens=tokens)


@pytest.fixture
def coins(anvil: Anvil, coin_state: CoinState, tmp_path: Path, db: None) -> RealCoinChain:
    anvil.rpc("anvil_loadState", [coin_state.state])
    tokens = coin_state.tokens
    for coin, address in tokens.items():
        assert real_coins.balance_of(anvil.w3, address, devchain.dev_account(PAYERS[-1]).address) == FUNDED, coin
    document = setup_document(anvil.url, tokens, confirmations=CONFIRMATIONS)  # HKDX and USDC
    document["tokens"].append(
        {"chain_id": 31337, "address": tokens["USDT"], "symbol": "USDT", "decimals": 6, "currency": "USD"}
    )
    path = tmp_path / "setup.json"
    path.write_text(json.dumps(document))
    call_command("stablepay_setup", str(path))  # the chain's scan starts at today's head
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {document['merchants'][0]['api_key']}")
    return RealCoinChain(anvil=anvil, tokens=tokens, api=client)


def live(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in data["transfers"] if t["state"] != "orphaned"]


def assert_final(data: dict[str, Any], status: str, exception: str | None, paid: int) -> None:
    """The request's outcome as the API tells it, once one pass has run over deep-enough transfers."""
    summary = {t["tx_hash"]: (t["state"], t["confirmations"]) for t in data["transfers"]}
    assert (data["status"], data["exception"]) == (status, exception), summary
    assert data["amount_paid_base_units"] == str(paid)
    assert data["amount_paid"] == format(Decimal(paid).scaleb(-data["decimals"]), "f")
    assert data["timeline"][-1]["status"] == status
    for transfer in live(data):
        assert transfer["confirmations"] >= CONFIRMATIONS
        assert transfer["state"] == "confirmed", summary


# paying enough in time --------------------------------------------------------------------------------
@pytest.mark.parametrize("coin", COINS)
def test_an_exact_payment_is_paid_after_one_pass(coins: RealCoinChain, coin: str) -> None:
    request = coins.create(coin)
    tx = coins.pay(coin, request["pay_to"], DUE)
    coins.mine(DEEP)
    coins.one_pass()

    data = coins.read(request["id"])
    assert_final(data, "paid", None, DUE)
    assert data["paid_at"] is not None
    assert [(t["tx_hash"], t["token"]) for t in data["transfers"]] == [(tx, coin)]
    assert [e["status"] for e in data["timeline"]].count("paid") == 1
    assert coins.passes == ["--once"]


@pytest.mark.parametrize("scanned_between", [False, True], ids=["together", "scanned-between"])
@pytest.mark.parametrize("coin", COINS)
def test_two_transfers_topping_up_to_the_amount_are_paid_after_one_pass(
    coins: RealCoinChain, coin: str, scanned_between: bool
) -> None:
    """The shopper pays 4.00, then tops up 6.00 from another wallet; with `scanned-between` a pass has
    already seen the first transfer (1 confirmation, request `open`) before the top-up."""
    request = coins.create(coin)
    first = coins.pay(coin, request["pay_to"], 4_000_000, sender_index=1)
    if scanned_between:
        coins.one_pass()
        data = coins.read(request["id"])
        assert (data["status"], data["amount_paid_base_units"]) == ("open", "4000000")
    second = coins.pay(coin, request["pay_to"], DUE - 4_000_000, sender_index=2)
    coins.mine(DEEP)
    coins.one_pass()

    data = coins.read(request["id"])
    assert_final(data, "paid", None, DUE)
    assert {t["tx_hash"] for t in live(data)} == {first, second}
    assert coins.passes == ["--once"] * (2 if scanned_between else 1)


@pytest.mark.parametrize("coin", COINS)
def test_a_payment_short_by_less_than_the_tolerance_is_paid_after_one_pass(coins: RealCoinChain, coin: str) -> None:
    short = DUE - 40_000  # 0.4 % short; the merchant's tolerance is 0.5 %
    request = coins.create(coin)
    coins.pay(coin, request["pay_to"], short)
    coins.mine(DEEP)
    coins.one_pass()

    assert_final(coins.read(request["id"]), "paid", None, short)


@pytest.mark.parametrize("coin", COINS)
def test_an_overpayment_is_paid_and_overpaid_after_one_pass(coins: RealCoinChain, coin: str) -> None:
    over = DUE * 120 // 100  # 20 % over
    request = coins.create(coin)
    coins.pay(coin, request["pay_to"], over)
    coins.mine(DEEP)
    coins.one_pass()

    assert_final(coins.read(request["id"]), "paid", "overpaid", over)


# paying the wrong coin, or too late ---------------------------------------------------------------------
@pytest.mark.parametrize("coin", COINS)
def test_another_registered_coin_is_wrong_token_after_one_pass(coins: RealCoinChain, coin: str) -> None:
    other = OTHER_COIN[coin]
    request = coins.create(coin)
    tx = coins.pay(other, request["pay_to"], DUE)
    coins.mine(DEEP)
    coins.one_pass()

    data = coins.read(request["id"])
    assert_final(data, "needs_review", "wrong_token", 0)  # never counted towards the request's own coin
    assert [(t["tx_hash"], t["token"], t["amount_base_units"]) for t in data["transfers"]] == [(tx, other, str(DUE))]


@pytest.mark.parametrize("coin", COINS)
def test_a_payment_after_expiry_is_late_after_one_pass(coins: RealCoinChain, coin: str) -> None:
    # Created 20 minutes ago with the merchant's 15-minute expiry: any block mined now is after expires_at.
    request, _ = services.payment_request_create(
        merchant=coins.merchant,
        order_reference="ONE-LATE",
        amount=Decimal("10.00"),
        currency=CURRENCY[coin],
        chain_id=31337,
        token_symbol=coin,
        now=timezone.now() - timedelta(minutes=20),
    )
    assert coins.read(str(request.pk))["status"] == "open"  # no pass has run the expiry sweep yet
    coins.pay(coin, request.pay_to, DUE)
    coins.mine(DEEP)
    coins.one_pass()

    assert_final(coins.read(str(request.pk)), "needs_review", "late", DUE)


# a reorg drops the payment, the shopper pays again --------------------------------------------------------
@pytest.mark.parametrize("again", ["rebroadcast", "new-payment"])
@pytest.mark.parametrize("coin", COINS)
def test_a_payment_orphaned_by_a_reorg_then_sent_again_is_paid_after_one_pass(
    coins: RealCoinChain, coin: str, again: str
) -> None:
    """A pass sees the payment (1 confirmation, `confirming`); a reorg then replaces its block with an
    empty one, so the payment is gone. The shopper's wallet broadcasts the same signed transaction again
    (`rebroadcast`), or the shopper pays again from another wallet (`new-payment`); 4 blocks later one
    pass must notice the reorg, orphan the old transfer and credit the payment that stands."""
    w3 = coins.anvil.w3
    request = coins.create(coin)
    raw = real_coins.signed_transfer(w3, coins.tokens[coin], request["pay_to"], DUE, sender_index=1)
    dropped = real_coins.broadcast(w3, raw)
    coins.one_pass()
    seen = coins.read(request["id"])
    assert (seen["status"], [t["state"] for t in seen["transfers"]]) == ("confirming", ["seen"])

    coins.anvil.reorg(1, [])  # the payment's block is replaced by an empty one at the same height
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction_receipt(dropped)
    tx: str
    if again == "rebroadcast":
        tx = real_coins.broadcast(w3, raw)
        assert tx == dropped
    else:
        tx = coins.pay(coin, request["pay_to"], DUE, sender_index=2)
    coins.mine(DEEP)
    coins.one_pass()

    data = coins.read(request["id"])
    assert_final(data, "paid", None, DUE)  # credited once, by the payment that stands
    (credited,) = live(data)
    assert credited["tx_hash"] == tx
    assert credited["block_hash"] != seen["transfers"][0]["block_hash"]
    if again == "new-payment":
        assert [t["state"] for t in data["transfers"] if t["tx_hash"] == dropped] == ["orphaned"]
    assert real_coins.balance_of(w3, coins.tokens[coin], request["pay_to"]) == DUE
    assert coins.passes == ["--once", "--once"]


# the Tether-like USDT's fee: the deposit address gets less than the call's value -------------------------------
FEE_BASIS_POINTS = 19  # 0.19 %: the most USDT's setParams allows (basis points < 20)
MAX_FEE_TOKENS = 49  # whole tokens (USDT's setParams scales it by 10^decimals; < 50): not reached here


@pytest.mark.parametrize(
    ("sent", "status"),
    [(DUE, "paid"), (DUE - 40_000, "open")],
    ids=["fee-leaves-it-within-tolerance", "fee-takes-it-beyond-tolerance"],
)
def test_a_transfer_with_a_fee_is_credited_with_what_arrived_after_one_pass(
    coins: RealCoinChain, sent: int, status: str
) -> None:
    """With fees on, the shopper's `transfer(pay_to, sent)` logs two Transfers: the fee to the token's
    owner FIRST, then sent - fee to the deposit address. The request is credited with what arrived, never
    with the call's value, and the fee log is credited to nothing. Sending DUE arrives 0.19 % short (paid:
    the merchant's tolerance is 0.5 %); sending 0.4 % short, which alone would be paid (see
    test_a_payment_short_by_less_than_the_tolerance_is_paid_after_one_pass), arrives 0.589 % short: open."""
    w3 = coins.anvil.w3
    token = coins.tokens["USDT"]
    real_coins.set_tether_like_fees(w3, token, FEE_BASIS_POINTS, MAX_FEE_TOKENS)
    owner = real_coins.tether_like_owner(w3, token)
    owner_before = real_coins.balance_of(w3, token, owner)
    payer = devchain.dev_account(1).address
    fee = min(sent * FEE_BASIS_POINTS // 10_000, MAX_FEE_TOKENS * 10**6)
    received = sent - fee

    request = coins.create("USDT")
    tx = coins.pay("USDT", request["pay_to"], sent)
    receipt = w3.eth.get_transaction_receipt(tx)  # type: ignore[arg-type]
    logged = real_coins.tether_like_usdt(w3, token).events.Transfer().process_receipt(receipt)
    assert [(e["address"], e["args"]["from"], e["args"]["to"], e["args"]["value"]) for e in logged] == [
        (token, payer, owner, fee),
        (token, payer, request["pay_to"], received),
    ]
    coins.mine(DEEP)
    coins.one_pass()

    data = coins.read(request["id"])
    assert_final(data, status, None, received)
    assert [(t["tx_hash"], t["amount_base_units"]) for t in data["transfers"]] == [(tx, str(received))]
    # The ledger holds the deposit's log alone: the fee log (to the owner, no deposit address) is not recorded.
    recorded = Transfer.objects.filter(tx_hash=tx)
    assert [(r.log_index, r.to_address.lower(), r.amount_base_units) for r in recorded] == [
        (logged[1]["logIndex"], request["pay_to"].lower(), received)
    ]
    assert real_coins.balance_of(w3, token, request["pay_to"]) == received
    assert real_coins.balance_of(w3, token, owner) == owner_before + fee


# decimals() as a uint256: the one on-chain read of decimals is the look-alike probe -------------------------
def test_the_lookalike_probe_reads_a_uint256_decimals(coins: RealCoinChain) -> None:
    """stablepay_setup and the token registry take `decimals` from the setup file and never ask the
    chain; only the ops look-alike probe calls `decimals()` (on unregistered contracts). A second,
    unregistered TetherLikeToken calling itself USDT pays a deposit address: the probe reads its uint256
    `decimals()` (the same 32-byte word a uint8 answer gives) and shows the amount in whole tokens."""
    w3 = coins.anvil.w3
    fake = real_coins.deploy_tether_like_usdt(w3)
    real_coins.fund_tether_like_usdt(w3, fake, devchain.dev_account(1).address, DUE)
    word = {
        coin: w3.eth.call({"to": address, "data": HexStr(lookalikes.DECIMALS)})
        for coin, address in (("fake", fake), ("HKDX", coins.tokens["HKDX"]), ("USDT", coins.tokens["USDT"]))
    }
    assert word["fake"] == word["USDT"] == word["HKDX"] == (6).to_bytes(32, "big")

    request = coins.create("USDT")
    tx = real_coins.transfer(w3, fake, request["pay_to"], DUE)
    report = lookalikes.lookalike_transfers(chain=Chain.objects.get(chain_id=31337), blocks=50)

    assert report.error == ""
    (seen,) = report.transfers
    assert (seen.contract, seen.log.tx_hash, seen.info.symbol, seen.info.decimals) == (fake, tx, "USDT", 6)
    assert seen.impersonates and seen.amount == "10.000000"
    assert seen.request is not None and str(seen.request.pk) == request["id"]
    coins.mine(DEEP)
    coins.one_pass()
    assert_final(coins.read(request["id"]), "open", None, 0)  # an unregistered contract is never credited
