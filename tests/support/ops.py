"""Helpers for the ops console's tests (tests/ops, and the browser, security, compliance and registry tests
that work the console): ops users, the state a request must reach, and payment requests driven into each
exception for real on the anvil chain (CONTRACT §4). The fixtures that wrap them are in tests/conftest.py
(used across directories) and tests/ops/conftest.py.

Chain: 3 confirmations. Merchant "acme": tolerance 0.5 %, expiry 15 minutes. A 10.00 HKD request in
HKDX (6 decimals) is due 10_000_000 base units.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import Permission, User
from django.utils import timezone

from stablepay.dev import chain as devchain
from stablepay.ledger import services
from stablepay.models import Merchant, PaymentRequest, ScreeningListKind
from tests.factories import ScreeningListEntryFactory
from tests.support.local_chain import LocalChain, create_request

PASSWORD = "correct-horse-battery-staple-42"
AFTER_EXPIRY = timedelta(minutes=16)
CONSOLE, APPROVE = "stablepay.ops_console", "stablepay.ops_approve"


def make_user(username: str, *permissions: str, merchant: Merchant | None = None) -> User:
    user = User.objects.create_user(username, password=PASSWORD)
    for name in permissions:
        app_label, codename = name.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    if merchant is not None:
        merchant.members.add(user)
    return User.objects.get(pk=user.pk)  # a fresh instance: no stale permission cache


# the ledger -------------------------------------------------------------------------------------------
def expect(pr: PaymentRequest, status: str, exception: str) -> PaymentRequest:
    pr.refresh_from_db()
    assert (pr.status, pr.exception) == (status, exception), (pr.status, pr.exception)
    return pr


def due(pr: PaymentRequest) -> int:
    return int(pr.amount_due_base_units)


# exceptions, made on the chain ---------------------------------------------------------------------------
class Exceptions:
    """Drives fresh requests into each exception with real transfers on anvil."""

    def __init__(self, local_chain: LocalChain, merchant: Merchant) -> None:
        self.chain = local_chain
        self.merchant = merchant
        self.count = 0

    def _ref(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}-{self.count:03d}"

    def underpaid_many(self, n: int, *, amount: str = "10.00") -> list[PaymentRequest]:
        """Half paid, confirmed, then the expiry sweep runs after expires_at."""
        requests = [create_request(self.merchant, amount=amount, order_reference=self._ref("UND")) for _ in range(n)]
        for pr in requests:
            self.chain.pay(pr.pay_to, due(pr) // 2)
        self.chain.settle()
        services.payment_requests_expire(now=timezone.now() + AFTER_EXPIRY)
        return [expect(pr, "needs_review", "underpaid") for pr in requests]

    def underpaid(self, *, amount: str = "10.00") -> PaymentRequest:
        return self.underpaid_many(1, amount=amount)[0]

    def overpaid(self, *, amount: str = "10.00", factor: int = 2) -> PaymentRequest:
        pr = create_request(self.merchant, amount=amount, order_reference=self._ref("OVR"))
        self.chain.pay(pr.pay_to, due(pr) * factor)
        self.chain.settle()
        return expect(pr, "paid", "overpaid")

    def late(self, *, amount: str = "10.00") -> PaymentRequest:
        pr = create_request(
            self.merchant,
            amount=amount,
            order_reference=self._ref("LATE"),
            now=timezone.now() - timedelta(minutes=20),
        )
        self.chain.pay(pr.pay_to, due(pr))
        self.chain.settle()
        return expect(pr, "needs_review", "late")

    def wrong_token(self, *, amount: str = "10.00") -> PaymentRequest:
        """USDC sent to an HKDX request."""
        pr = create_request(self.merchant, amount=amount, order_reference=self._ref("WRONG"), token="HKDX")
        self.chain.pay(pr.pay_to, 1_300_000, symbol="USDC")  # 1.30 USDC = 10.14 HKD at 7.80
        self.chain.settle()
        return expect(pr, "needs_review", "wrong_token")

    def reorged(self) -> PaymentRequest:
        """Paid, then a reorg deeper than the confirmations drops the paying transfer."""
        pr = create_request(self.merchant, order_reference=self._ref("REORG"))
        tx = self.chain.pay(pr.pay_to, due(pr))
        w3 = self.chain.anvil.w3
        mined_in = int(w3.eth.get_transaction_receipt(tx)["blockNumber"])
        self.chain.settle()
        expect(pr, "paid", "")
        self.chain.anvil.reorg(int(w3.eth.block_number) - mined_in + 1, [])
        self.chain.settle(blocks=0)
        return expect(pr, "needs_review", "reorged")


# payer screening ----------------------------------------------------------------------------------------
FLAGGED, UNLISTED = 2, 3  # dev accounts: 2 is on the deny list, 3 on no list
DOWN = "http://ops:pw@127.0.0.1:9/v1/addresses?api_key=k3y"  # the discard port: nothing answers


def payer(index: int) -> str:
    return str(devchain.dev_account(index).address)


class ScreenedPayments:
    """Requests paid in full on anvil, the watcher screening each payer with the backend configured then.

    A flagged payer is on the deny list (ListBackend). "The backend is down" is the HTTP backend pointed at a
    port nothing listens on, with a fail-open limit of HK$50.00: a 10.00 HKD payment passes unscreened
    (failed_open), a 100.00 HKD one is held (failed_closed)."""

    def __init__(self, local_chain: LocalChain, merchant: Merchant, settings: Any) -> None:
        self.chain, self.merchant, self.settings = local_chain, merchant, settings
        self.count = 0
        ScreeningListEntryFactory(
            address=payer(FLAGGED), kind=ScreeningListKind.DENY, reason="OFAC SDN list 2026-11-20"
        )

    def backend(self, *, down: bool) -> None:
        options = {"SCREENING_FAIL_OPEN_BELOW_HKD": "50.00", "SCREENING_RETRY_SECONDS": 60}
        if down:
            options |= {"SCREENING_BACKEND": "stablepay.compliance.screening.HttpBackend", "SCREENING_HTTP_URL": DOWN}
        else:
            options |= {"SCREENING_BACKEND": "stablepay.compliance.screening.ListBackend", "SCREENING_HTTP_URL": ""}
        self.settings.STABLEPAY = {**self.settings.STABLEPAY, **options}

    def paid(self, *, sender: int, amount: str = "10.00", down: bool = False) -> PaymentRequest:
        self.backend(down=down)
        self.count += 1
        pr = create_request(self.merchant, amount=amount, order_reference=f"SCR-{self.count:03d}")
        self.chain.pay(pr.pay_to, int(pr.amount_due_base_units), sender_index=sender)
        self.chain.settle()
        pr.refresh_from_db()
        return pr

    def hit(self) -> PaymentRequest:
        return expect(self.paid(sender=FLAGGED), "needs_review", "held")

    def clear(self) -> PaymentRequest:
        return expect(self.paid(sender=UNLISTED), "paid", "")

    def failed_open(self) -> PaymentRequest:
        return expect(self.paid(sender=UNLISTED, down=True), "paid", "")

    def failed_closed(self) -> PaymentRequest:
        return expect(self.paid(sender=UNLISTED, amount="100.00", down=True), "needs_review", "held")
