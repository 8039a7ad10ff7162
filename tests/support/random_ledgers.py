"""Ledgers for the set-based pass and report tests: three chains, five tokens, three merchants, and
random requests with random transfers (exact, partial, over, late, wrong token, seen, orphaned, reviewed;
screened clear, flagged or unanswered) in every status, built straight through the ORM with the factories of
tests/factories.py (no chain needed). Every random value is drawn in the same order for a seed, so a seed
always gives the same ledger."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from stablepay.models import Merchant, Token
from tests.factories import (
    ChainFactory,
    CursorFactory,
    EventFactory,
    MerchantFactory,
    PaymentRequestFactory,
    TokenFactory,
    TransferFactory,
)

NOW = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)
STATUS_EXCEPTIONS = {
    "open": [""],
    "confirming": [""],
    "paid": ["", "", "", "overpaid", "wrong_token", "reorged", "held"],
    "expired": [""],
    "needs_review": ["underpaid", "late", "wrong_token", "reorged", "held"],
    "refunded": [""],
    "canceled": [""],
}

# What ops can have done: resolve only closes an exception (accept -> paid, refund -> refunded or paid,
# void -> canceled); a live request has no resolution.
RESOLUTIONS = {
    "open": [""],
    "confirming": [""],
    "paid": ["", "", "accept", "refund"],
    "expired": [""],
    "needs_review": ["", "", "accept", "refund"],
    "refunded": ["refund"],
    "canceled": ["", "void"],
}


@dataclass
class World:
    tokens: list[Token]
    merchants: list[Merchant]


def make_world() -> World:
    templated = ChainFactory(chain_id=1, name="One", explorer_tx_url="https://one.example/tx/{tx}?x=1")
    plain = ChainFactory(chain_id=2, name="Two", confirmations=12, explorer_tx_url="https://two.example/tx//")
    three = ChainFactory(chain_id=3, name="Three", confirmations=1)  # no explorer, no cursor yet
    CursorFactory(chain=templated, scanned_block=1_000)
    CursorFactory(chain=plain, scanned_block=5_000)
    tokens = [
        TokenFactory(chain=templated, address="0x" + "a1" * 20, symbol="HKDX"),
        TokenFactory(chain=templated, address="0x" + "a2" * 20, symbol="USDC", currency="USD"),
        TokenFactory(chain=plain, address="0x" + "b1" * 20, symbol="HKDW", decimals=18),
        TokenFactory(chain=plain, address="0x" + "b2" * 20, symbol="USDT", decimals=0, currency="USD"),
        TokenFactory(chain=three, address="0x" + "c1" * 20, symbol="HKDZ", decimals=2),
    ]
    merchants = [
        MerchantFactory(
            slug="hooked",
            name="Hooked",
            xpub="xpub-a",
            api_key_hash="a" * 64,
            payment_tolerance_percent=Decimal("0.5"),
            webhook_url="https://hooks.example/stablepay",
            webhook_secret="s" * 32,
        ),
        MerchantFactory(slug="exact", name="Exact", xpub="xpub-b", api_key_hash="b" * 64),
        MerchantFactory(
            slug="loose",
            name="Loose",
            xpub="xpub-c",
            api_key_hash="c" * 64,
            payment_tolerance_percent=Decimal("2.37"),
            webhook_url="https://loose.example/h",
        ),
    ]
    return World(tokens, merchants)


def random_ledger(world: World, rng: random.Random, n: int) -> None:
    log = 0
    for i in range(n):
        token = rng.choice(world.tokens)
        merchant = rng.choice(world.merchants)
        due = rng.choice([1, 7, 100_000_000, 123_456_789, 10**21 + 7])
        status = rng.choice(list(STATUS_EXCEPTIONS))
        created = NOW - timedelta(minutes=rng.randint(1, 60), microseconds=rng.choice([0, rng.randint(1, 999_999)]))
        expires = NOW + timedelta(minutes=rng.choice([-30, -1, 1, 30]))
        request = PaymentRequestFactory(
            merchant=merchant,
            token=token,
            order_reference=f"R-{i}",
            amount=Decimal(rng.randint(1, 99_999)) / 100,
            currency="HKD",
            rate=rng.choice([Decimal("1"), Decimal("0.128205128205128205"), Decimal("7.8"), Decimal("100")]),
            amount_due_base_units=Decimal(due),
            amount_paid_base_units=Decimal(rng.choice([0, 0, due, due // 2])),
            pay_to="0x" + f"{i:040x}",
            derivation_index=i,
            status=status,
            exception=rng.choice(STATUS_EXCEPTIONS[status]),
            resolution=rng.choice(RESOLUTIONS[status]),
            metadata=rng.choice([{}, {"order": i, "note": "茶餐廳", "nested": {"a": [1, 2]}}]),
            created_at=created,
            expires_at=expires,
            paid_at=rng.choice([None, created + timedelta(seconds=5)]) if status == "paid" else None,
            reconcile_pending=rng.random() < 0.2,
        )
        EventFactory(payment_request=request, at=created, status=status)
        siblings = [t for t in world.tokens if t.chain_id == token.chain_id]
        for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):
            log += 1
            paid_with = token if rng.random() < 0.85 else rng.choice(siblings)
            head = 1_000 if token.chain.chain_id == 1 else 5_000
            amount = rng.choice(
                [due, due, due // 2, due * 2, due - due // 400, due + due // 40, 0, max(due - due // 100, 0)]
            )
            TransferFactory(
                token=paid_with,
                payment_request=request,
                tx_hash="0x" + f"{log:064x}",
                log_index=log,  # unique per block, as on a chain: the payload orders by (block, log index)
                block_number=head - rng.randint(0, 20),
                block_hash="0x" + f"{log + 7:064x}",
                block_timestamp=expires + timedelta(seconds=rng.choice([-120, -1, 0, 1, 120])),
                from_address="0x" + "f" * 40,
                amount_base_units=Decimal(amount),
                state=rng.choice(["seen", "confirmed", "confirmed", "confirmed", "orphaned"]),
                reviewed=rng.random() < 0.2,
                screening=rng.choice(["clear"] * 6 + ["", "hit", "failed_closed", "failed_open"]),
            )
