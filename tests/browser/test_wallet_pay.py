"""Pay with a browser wallet, in real Chromium: a test EIP-1193 provider is injected into the page before
its scripts run, and its `request()` is answered in Python, which signs with an anvil dev key (eth-account)
and sends through the real anvil node. The page's own wallet.js runs unchanged under the site's CSP.

Covered: a Hong Kong storefront purchase paid in HKDX end to end (the wallet starts on another network that
does not know the chain: switch, 4902, add), the shopper declining (4001) then retrying, a wallet that
refuses to switch network, too little balance, topping up an underpaid request with the remainder, and a
browser without a wallet. Screenshots of each state at phone and desktop sizes go to test-artifacts/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.management import call_command
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from playwright.sync_api import Browser, Page, ViewportSize, expect
from web3 import Web3

from shop.models import Order
from stablepay.dev import chain as devchain
from stablepay.models import Chain, Merchant, PaymentRequest
from tests.browser.a11y import assert_accessible
from tests.support.browser import ARTIFACTS, CspWatch
from tests.support.local_chain import LocalChain, create_request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOCAL = 31337
MAINNET = 1
PHONE = ViewportSize(width=390, height=844)
DESKTOP = ViewportSize(width=1280, height=800)
EXPLORER = "https://explorer.example/tx/{tx}"

PROVIDER = """
(() => {
  const handlers = {};
  window.ethereum = {
    isStablepayTestWallet: true,
    request: async ({ method, params }) => {
      const reply = JSON.parse(await window.__testWalletRpc(JSON.stringify({ method, params: params || [] })));
      if (reply.error) {
        const error = new Error(reply.error.message);
        error.code = reply.error.code;
        throw error;
      }
      return reply.result;
    },
    on: (name, fn) => { (handlers[name] = handlers[name] || []).push(fn); },
    removeListener: (name, fn) => { handlers[name] = (handlers[name] || []).filter((f) => f !== fn); },
  };
})();
"""

USER_REJECTED = {"code": 4001, "message": "User rejected the request."}
UNRECOGNIZED_CHAIN = {"code": 4902, "message": "Unrecognized chain ID. Try adding the chain first."}
FORWARDED = {"eth_call", "eth_blockNumber", "eth_getBalance", "eth_estimateGas", "eth_getTransactionReceipt"}


@dataclass
class TestWallet:
    """An EIP-1193 wallet answered in Python: one anvil dev account, signing locally, sending through anvil."""

    w3: Web3
    account: LocalAccount
    chain_id: int = LOCAL
    known_chains: set[int] = field(default_factory=lambda: {LOCAL, MAINNET})
    refuse_switch: bool = False
    reject: dict[str, int] = field(default_factory=dict)  # method -> how many more times to answer 4001
    calls: list[str] = field(default_factory=list)
    added: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)

    __test__ = False  # not a pytest test class

    def rpc(self, payload: str) -> str:
        request = json.loads(payload)
        method, params = request["method"], request["params"]
        self.calls.append(method)
        try:
            return json.dumps({"result": self.answer(method, params)})
        except WalletError as e:
            return json.dumps({"error": e.error})

    def answer(self, method: str, params: list[Any]) -> Any:
        if self.reject.get(method, 0) > 0:
            self.reject[method] -= 1
            raise WalletError(USER_REJECTED)
        if method == "eth_chainId":
            return hex(self.chain_id)
        if method in ("eth_requestAccounts", "eth_accounts"):
            return [self.account.address]
        if method == "wallet_switchEthereumChain":
            wanted = int(params[0]["chainId"], 16)
            if self.refuse_switch:
                raise WalletError(USER_REJECTED)
            if wanted not in self.known_chains:
                raise WalletError(UNRECOGNIZED_CHAIN)
            self.chain_id = wanted
            return None
        if method == "wallet_addEthereumChain":
            self.added.append(params[0])
            self.known_chains.add(int(params[0]["chainId"], 16))
            self.chain_id = int(params[0]["chainId"], 16)
            return None
        if self.chain_id != LOCAL:
            raise WalletError({"code": -32603, "message": f"test wallet: no RPC for chain {self.chain_id}"})
        if method in FORWARDED:
            response = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
            if "error" in response:
                raise WalletError(dict(response["error"]))
            return response["result"]
        if method == "eth_sendTransaction":
            return self.send(params[0])
        raise WalletError({"code": 4200, "message": f"test wallet: {method} is not supported"})

    def send(self, tx: dict[str, Any]) -> str:
        assert tx["from"].lower() == self.account.address.lower()
        self.sent.append(tx)
        to = Web3.to_checksum_address(tx["to"])
        base = {"from": self.account.address, "to": to, "data": tx["data"], "value": int(tx.get("value", "0x0"), 16)}
        fee = self.w3.eth.gas_price
        signed = self.account.sign_transaction(
            {
                **base,
                "chainId": self.chain_id,
                "nonce": self.w3.eth.get_transaction_count(self.account.address, "pending"),
                "gas": self.w3.eth.estimate_gas(base),  # type: ignore[arg-type]
                "maxFeePerGas": fee * 2,
                "maxPriorityFeePerGas": fee,
            }
        )
        tx_hash = "0x" + self.w3.eth.send_raw_transaction(signed.raw_transaction).hex()
        self.hashes.append(tx_hash)
        return tx_hash


class WalletError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["message"])
        self.error = error


@dataclass
class Shopper:
    page: Page
    wallet: TestWallet | None
    csp: CspWatch
    name: str

    def shoot(self, state: str) -> None:
        """The page at phone and desktop sizes, after axe-core finds no serious or critical violation."""
        assert_accessible(self.page, f"wallet-{state}")
        ARTIFACTS.mkdir(exist_ok=True)
        for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
            self.page.set_viewport_size(size)
            self.page.evaluate("() => window.scrollTo(0, 0)")  # the sticky header stays on top
            self.page.screenshot(path=str(ARTIFACTS / f"wallet-{state}-{label}.png"), full_page=True)
        self.page.set_viewport_size(DESKTOP)

    def assert_no_csp_violations(self) -> None:
        assert self.csp.collect() == []


@pytest.fixture
def open_browser(browser: Browser) -> Iterator[Any]:
    """`open_browser(wallet, name)`: a page with the test provider installed (or none, for `None`)."""
    contexts = []

    def start(wallet: TestWallet | None, name: str, locale: str = "en-GB") -> Shopper:
        context = browser.new_context(viewport=DESKTOP, locale=locale)
        contexts.append(context)
        if wallet is not None:
            context.expose_function("__testWalletRpc", wallet.rpc)
            context.add_init_script(PROVIDER)
        page = context.new_page()
        return Shopper(page=page, wallet=wallet, csp=CspWatch(page), name=name)

    yield start
    for context in contexts:
        context.close()


@pytest.fixture
def store(local_chain: LocalChain) -> LocalChain:
    call_command("shop_seed", merchant="acme", verbosity=0)
    return local_chain


def wallet_for(local_chain: LocalChain, index: int, **kwargs: Any) -> TestWallet:
    return TestWallet(w3=local_chain.anvil.w3, account=devchain.dev_account(index), **kwargs)


def token_balance(local_chain: LocalChain, address: str, symbol: str = "HKDX") -> int:
    contract = devchain.token_contract(local_chain.anvil.w3, local_chain.tokens[symbol])
    return int(contract.functions.balanceOf(Web3.to_checksum_address(address)).call())


def wallet_message(page: Page) -> Any:
    return page.locator("#wallet-pay-message")


def test_hong_kong_purchase_paid_in_hkdx_with_the_browser_wallet(
    open_browser: Any, live_server: Any, store: LocalChain, running_watcher: None
) -> None:
    Chain.objects.filter(chain_id=LOCAL).update(explorer_tx_url=EXPLORER)
    # The wallet sits on Ethereum mainnet and has never heard of the local chain: switch, 4902, add.
    wallet = wallet_for(store, 2, chain_id=MAINNET, known_chains={MAINNET})
    shopper = open_browser(wallet, "hk-purchase")
    page = shopper.page
    page.goto(f"{live_server.url}/store/hk/")
    page.locator("form[action*='cart/add'] button[type=submit]").first.click()
    page.goto(f"{live_server.url}/store/hk/checkout/")
    page.locator("label.token-option", has_text="HKDX").locator("input[type=radio]").check()
    page.locator("form[data-submit-once] button[type=submit]").click()
    page.wait_for_url(re.compile(r"/pay/[0-9a-f-]+/$"))

    order = Order.objects.get()
    request = PaymentRequest.objects.get()
    assert order.currency == "HKD" and request.token.symbol == "HKDX"
    due = int(request.amount_due_base_units)
    pay_to = request.pay_to
    before = token_balance(store, pay_to), token_balance(store, wallet.account.address)

    # The QR/address path comes first; the wallet button after it.
    button = page.locator("#wallet-pay-button")
    expect(button).to_be_visible()
    expect(button).to_have_text("Pay with browser wallet")
    qr_box, wallet_box = page.locator(".pay-qr").bounding_box(), page.locator("#wallet-pay").bounding_box()
    assert qr_box is not None and wallet_box is not None and qr_box["y"] < wallet_box["y"]
    shopper.shoot("ready")

    button.click()
    expect(page.locator("#wallet-pay-tx")).to_be_visible(timeout=15_000)
    expect(wallet_message(page)).to_have_text(re.compile(r"^Payment sent from your wallet\."))
    assert wallet.added and wallet.added[0]["chainId"] == hex(LOCAL)
    assert wallet.added[0]["chainName"] == "Local" and wallet.added[0]["rpcUrls"] == [store.anvil.url]
    assert wallet.calls.index("wallet_switchEthereumChain") < wallet.calls.index("wallet_addEthereumChain")
    assert wallet.calls.index("eth_call") < wallet.calls.index("eth_sendTransaction")
    # Exactly one transfer(pay_to, due) to the token contract, encoded by hand in the page.
    assert len(wallet.sent) == 1
    sent = wallet.sent[0]
    assert sent["to"].lower() == store.tokens["HKDX"].lower() and int(sent["value"], 16) == 0
    assert sent["data"] == "0xa9059cbb" + pay_to.lower()[2:].rjust(64, "0") + format(due, "064x")
    tx_hash = wallet.hashes[0]
    link = page.locator("#wallet-pay-tx-link")
    expect(link).to_have_attribute("href", f"https://explorer.example/tx/{tx_hash}")
    expect(page.locator("#wallet-pay-tx-hash")).to_have_attribute("title", tx_hash)
    expect(button).to_be_hidden()
    shopper.shoot("sent")

    # The live status takes over: the watcher sees the transfer and confirms it.
    expect(page.locator("#pay")).to_have_attribute("data-status", "paid", timeout=30_000)
    expect(page.locator("#status-badge")).to_have_text("Paid")
    expect(page.locator("#transfers")).to_contain_text("Confirmed")
    expect(page.locator("#wallet-pay")).to_be_hidden()  # settled: the transfer list shows it now
    assert token_balance(store, pay_to) == before[0] + due
    assert token_balance(store, wallet.account.address) == before[1] - due
    shopper.shoot("paid")

    order.refresh_from_db()
    assert order.status == "paid" and order.paid_at is not None
    shopper.csp.collect()
    page.get_by_role("link", name="Back to your order").click()
    expect(page.locator("body")).to_contain_text(order.reference)
    expect(page.locator(".timeline")).to_contain_text("Paid")
    shopper.assert_no_csp_violations()


def test_declined_in_the_wallet_then_paid_on_retry(
    open_browser: Any, live_server: Any, local_chain: LocalChain, merchant: Merchant
) -> None:
    request = create_request(merchant, amount="128.00")
    wallet = wallet_for(local_chain, 1, reject={"eth_sendTransaction": 1})
    shopper = open_browser(wallet, "declined")
    page = shopper.page
    nonce = local_chain.anvil.w3.eth.get_transaction_count(wallet.account.address)
    page.goto(f"{live_server.url}/pay/{request.pk}/")

    page.locator("#wallet-pay-button").click()
    expect(wallet_message(page)).to_have_text(
        "You declined the request in your wallet. Nothing was sent; you can try again."
    )
    expect(wallet_message(page)).to_have_attribute("data-kind", "error")
    assert wallet.sent == [] and wallet.calls.count("eth_sendTransaction") == 1
    assert local_chain.anvil.w3.eth.get_transaction_count(wallet.account.address) == nonce
    expect(page.locator("#wallet-pay-button")).to_be_enabled()
    expect(page.locator("#wallet-pay-tx")).to_be_hidden()
    shopper.shoot("declined")

    page.locator("#wallet-pay-button").click()
    expect(page.locator("#wallet-pay-tx")).to_be_visible(timeout=15_000)
    assert len(wallet.hashes) == 1
    receipt = local_chain.anvil.w3.eth.wait_for_transaction_receipt(HexStr(wallet.hashes[0]), timeout=10)
    assert receipt["status"] == 1
    assert token_balance(local_chain, request.pay_to) == int(request.amount_due_base_units)
    expect(page.locator("#wallet-pay-tx-link")).to_be_hidden()  # the local chain has no explorer
    shopper.assert_no_csp_violations()


def test_a_wallet_that_refuses_to_switch_network(
    open_browser: Any, live_server: Any, local_chain: LocalChain, merchant: Merchant
) -> None:
    request = create_request(merchant, amount="50.00")
    wallet = wallet_for(local_chain, 1, chain_id=MAINNET, refuse_switch=True)
    shopper = open_browser(wallet, "wrong-chain")
    page = shopper.page
    page.goto(f"{live_server.url}/pay/{request.pk}/")
    page.locator("#wallet-pay-button").click()
    expect(wallet_message(page)).to_have_text(
        "Your wallet is on another network and could not switch to Local (chain id 31337). "
        "Switch it to Local and try again, or pay with the QR code above."
    )
    assert "wallet_switchEthereumChain" in wallet.calls
    assert wallet.sent == [] and "eth_call" not in wallet.calls and wallet.added == []
    expect(page.locator("#wallet-pay-button")).to_be_enabled()
    shopper.shoot("wrong-chain")
    shopper.assert_no_csp_violations()


def test_too_little_balance_is_refused_before_sending(
    open_browser: Any, live_server: Any, local_chain: LocalChain, merchant: Merchant
) -> None:
    request = create_request(merchant, amount="388.00")
    wallet = wallet_for(local_chain, 6)  # an anvil account with ether but no HKDX
    local_chain.pay(wallet.account.address, 1_500_000)  # 1.50 HKDX: far too little
    shopper = open_browser(wallet, "low-balance")
    page = shopper.page
    page.goto(f"{live_server.url}/pay/{request.pk}/")
    page.locator("#wallet-pay-button").click()
    due = int(request.amount_due_base_units)
    address = wallet.account.address
    expect(wallet_message(page)).to_have_text(
        f"Not enough HKDX: your account {address[:6]}…{address[-4:]} holds 1.500000 HKDX and this payment "
        f"needs {due // 10**6}.{due % 10**6:06d} HKDX. Nothing was sent."
    )
    assert "eth_call" in wallet.calls and "eth_sendTransaction" not in wallet.calls
    assert local_chain.anvil.w3.eth.get_transaction_count(address) == 0
    assert token_balance(local_chain, request.pay_to) == 0
    shopper.shoot("low-balance")
    shopper.assert_no_csp_violations()


def test_an_underpaid_request_is_topped_up_with_exactly_the_remainder(
    open_browser: Any, live_server: Any, local_chain: LocalChain, merchant: Merchant
) -> None:
    request = create_request(merchant, amount="200.00")
    due = int(request.amount_due_base_units)
    first = due // 3
    local_chain.pay(request.pay_to, first, sender_index=3)
    local_chain.settle()
    request.refresh_from_db()
    assert request.status == "open" and int(request.amount_paid_base_units) == first

    wallet = wallet_for(local_chain, 1)
    shopper = open_browser(wallet, "underpaid")
    page = shopper.page
    page.goto(f"{live_server.url}/pay/{request.pk}/")
    page.locator("#wallet-pay-button").click()
    expect(page.locator("#wallet-pay-tx")).to_be_visible(timeout=15_000)
    assert wallet.sent[0]["data"].endswith(format(due - first, "064x"))
    local_chain.anvil.w3.eth.wait_for_transaction_receipt(HexStr(wallet.hashes[0]), timeout=10)
    local_chain.settle()
    request.refresh_from_db()
    assert request.status == "paid" and request.exception == ""
    assert token_balance(local_chain, request.pay_to) == due
    expect(page.locator("#pay")).to_have_attribute("data-status", "paid", timeout=10_000)
    expect(page.locator("#wallet-pay-button")).to_be_hidden()
    shopper.assert_no_csp_violations()


def test_without_a_wallet_the_button_is_hidden_and_the_qr_path_intact(
    open_browser: Any, live_server: Any, local_chain: LocalChain, merchant: Merchant
) -> None:
    request = create_request(merchant, amount="88.00")
    shopper = open_browser(None, "no-wallet")
    page = shopper.page
    page.goto(f"{live_server.url}/pay/{request.pk}/")
    expect(page.locator("#wallet-pay")).to_have_attribute("data-ready", "true")
    assert page.evaluate("() => window.ethereum === undefined")
    expect(page.locator("#wallet-pay")).to_be_hidden()
    expect(page.locator("#wallet-pay-button")).to_be_hidden()
    expect(page.locator(".qr svg")).to_be_visible()
    expect(page.locator("#pay-to")).to_have_text(request.pay_to)
    expect(page.locator("#amount-copy")).to_be_visible()
    shopper.shoot("no-wallet")
    shopper.assert_no_csp_violations()


def test_the_wallet_speaks_traditional_chinese(
    open_browser: Any, live_server: Any, local_chain: LocalChain, merchant: Merchant
) -> None:
    request = create_request(merchant, amount="128.00")
    wallet = wallet_for(local_chain, 1, reject={"eth_requestAccounts": 1})
    shopper = open_browser(wallet, "zh-hant", locale="zh-HK")
    page = shopper.page
    page.goto(f"{live_server.url}/pay/{request.pk}/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hant")
    expect(page.locator("#wallet-pay-title")).to_have_text("用瀏覽器錢包付款")
    page.locator("#wallet-pay-button").click()
    declined = "你已在錢包中拒絕此請求，沒有發出任何款項；你可以再試一次。"  # noqa: RUF001
    expect(wallet_message(page)).to_have_text(declined)
    assert wallet.calls == ["eth_requestAccounts"]
    shopper.shoot("zh-hant-declined")
    shopper.assert_no_csp_violations()


def test_the_csp_watch_catches_a_violation(
    open_browser: Any, live_server: Any, local_chain: LocalChain, merchant: Merchant
) -> None:
    """The control for `assert_no_csp_violations` above: an inline script on the payment page is caught."""
    request = create_request(merchant, amount="10.00")
    shopper = open_browser(wallet_for(local_chain, 1), "csp-control")
    shopper.page.goto(f"{live_server.url}/pay/{request.pk}/")
    shopper.page.evaluate(
        """() => { const s = document.createElement("script"); s.textContent = "window.__ran = 1";
                   document.body.append(s); }"""
    )
    shopper.page.wait_for_function("() => window.__csp.length >= 1")
    assert shopper.page.evaluate("() => window.__ran === undefined")
    assert any(v.startswith("script-src") for v in shopper.csp.collect())
