"""The ledger: chains, tokens, merchants, payment requests, on-chain transfers and what happened to them.

Models carry fields and database invariants only; the workflows live in services.py.
Token amounts are integer base units in BaseUnitsField (stablepay/fields.py): numeric(78, 0) on PostgreSQL,
zero-padded digits on SQLite; exact on both.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models
from django.db.models import F, Q
from django.db.models.functions import Lower

from stablepay.fields import BaseUnitsField
from stablepay.secret_box import EncryptedTextField


class LedgerAppendOnlyError(IntegrityError):
    """A ledger row (transfer, event, ops action) may not be deleted, nor its recorded facts changed."""


class AppendOnlyQuerySet(models.QuerySet):
    def delete(self) -> tuple[int, dict[str, int]]:
        raise LedgerAppendOnlyError(
            f"{self.model._meta.label} rows are append-only: only stablepay_purge_ledger deletes them, "
            "past the retention period"
        )


class AppendOnly(models.Model):
    """Ledger rows: no delete through the ORM; the database triggers of migration 0010 guard the rest
    (UPDATE of a recorded fact and DELETE, from any client). Only stablepay_purge_ledger deletes, past
    STABLEPAY["LEDGER_RETENTION_YEARS"] (see stablepay/ledger/retention.py)."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def delete(self, using: str | None = None, keep_parents: bool = False) -> tuple[int, dict[str, int]]:
        raise LedgerAppendOnlyError(f"{self._meta.label} {self.pk} is append-only and may not be deleted")


class Currency(models.TextChoices):
    HKD = "HKD", "Hong Kong dollar"
    MOP = "MOP", "Macau pataca"
    USD = "USD", "US dollar"
    CNH = "CNH", "Offshore renminbi"


TOKEN_CURRENCIES = (Currency.HKD, Currency.USD, Currency.CNH)


class LicenceStatus(models.TextChoices):
    """An issuer's licence under Hong Kong's Stablecoins Ordinance (Cap. 656), as the operator records it."""

    LICENSED = "licensed"
    PENDING = "pending"
    UNLICENSED = "unlicensed"


def all_licence_statuses() -> list[str]:
    """A merchant's default policy: accept every status (setup files older than the registry keep working)."""
    return list(LicenceStatus.values)


class Chain(models.Model):
    chain_id = models.PositiveBigIntegerField(unique=True)
    name = models.CharField(max_length=64)
    rpc_urls = models.JSONField(default=list)
    ws_url = models.CharField(
        max_length=255, blank=True, default="", help_text="Optional ws(s):// URL: scan as each new head is announced."
    )
    confirmations = models.PositiveIntegerField(default=12)
    block_time_seconds = models.PositiveIntegerField(default=12)
    explorer_tx_url = models.CharField(max_length=255, blank=True, default="")
    use_finalized_tag = models.BooleanField(
        default=False, help_text="Treat a transfer as confirmed once the node's 'finalized' block covers it."
    )
    start_block = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="The head when the chain was registered; the first scan starts here."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["chain_id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.chain_id})"

    def explorer_link(self, tx_hash: str) -> str:
        """The explorer URL of a transaction: `{tx}` in the template is replaced, else the hash is appended."""
        if not self.explorer_tx_url:
            return ""
        if "{tx}" in self.explorer_tx_url:
            return self.explorer_tx_url.replace("{tx}", tx_hash)
        return self.explorer_tx_url.rstrip("/") + "/" + tx_hash


class Token(models.Model):
    chain = models.ForeignKey(Chain, on_delete=models.PROTECT, related_name="tokens")
    address = models.CharField(max_length=42, help_text="Checksummed contract address.")
    symbol = models.CharField(max_length=16)
    decimals = models.PositiveSmallIntegerField()
    currency = models.CharField(max_length=3, choices=[(c.value, c.label) for c in TOKEN_CURRENCIES])
    active = models.BooleanField(default=True)
    issuer = models.CharField(max_length=128, blank=True, default="", help_text="Who issues the coin.")
    licence_reference = models.CharField(
        max_length=64, blank=True, default="", help_text="The issuer's licence number, e.g. from the HKMA register."
    )
    licence_status = models.CharField(
        max_length=12, choices=LicenceStatus.choices, default=LicenceStatus.UNLICENSED, db_index=False
    )
    # Contract health (stablepay/registry/token_health.py), recorded by a periodic check, read by quotes.
    halted_reason = models.CharField(
        max_length=255, blank=True, default="", help_text="Why the last contract check failed; empty: healthy."
    )
    halted_at = models.DateTimeField(null=True, blank=True)
    health_checked_at = models.DateTimeField(null=True, blank=True)
    health_checked_block = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Upgraded(address) events are looked for after this block."
    )

    class Meta:
        ordering = ["chain__chain_id", "symbol"]
        constraints = [
            models.UniqueConstraint(fields=["chain", "address"], name="token_unique_address_per_chain"),
            models.UniqueConstraint(fields=["chain", "symbol"], name="token_unique_symbol_per_chain"),
            models.CheckConstraint(condition=Q(decimals__lte=36), name="token_decimals_at_most_36"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} on {self.chain.name}"


class Merchant(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=128)
    xpub = models.CharField(
        max_length=128,
        blank=True,
        help_text="Account-level extended public key (m/44'/60'/0'); empty: forwarder deposit addresses only.",
    )
    # Forwarder deposit addresses (issue 18): {"<chain_id>": "0x..."}, the merchant's Safe or cold wallet per
    # chain. On such a chain each request's deposit address is a CREATE2 forwarder fixed to that address
    # (stablepay/chain/forwarder.py); on other chains the xpub is used. Guarded like the xpub.
    settlement_addresses = models.JSONField(default=dict, blank=True)
    api_key_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the API key.")
    api_key_prefix = models.CharField(max_length=8, blank=True, default="")
    payment_tolerance_percent = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("0"))
    expiry_minutes = models.PositiveIntegerField(default=15)
    webhook_url = models.URLField(max_length=500, blank=True, default="")
    # Webhook signing secrets are encrypted at rest (stablepay/secret_box.py); the attributes are plaintext.
    webhook_secret = EncryptedTextField(blank=True, default="")
    # After a rotation the previous secret also signs deliveries until webhook_secret_previous_until.
    webhook_secret_previous = EncryptedTextField(blank=True, default="")
    webhook_secret_previous_until = models.DateTimeField(null=True, blank=True)
    next_address_index = models.PositiveIntegerField(default=0)
    # Token policy: the licence statuses accepted (default all) and the token currencies (empty: all).
    accepted_licence_statuses = models.JSONField(default=all_licence_statuses, blank=True)
    accepted_token_currencies = models.JSONField(default=list, blank=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="merchants")
    # Four-eyes limits of this merchant's ops decisions (stablepay/ops/selectors.py), HKD-equivalent; None:
    # the deployment-wide STABLEPAY setting, which only the deployer changes (environment). Guarded like the
    # xpub: changed only through stablepay.governance.change_control (propose, a second person approves).
    refund_four_eyes_above_hkd = models.DecimalField(
        max_digits=20,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="A refund worth more than this (HKD) needs a second approver; empty: the deployment's limit.",
    )
    accept_four_eyes_above_hkd = models.DecimalField(
        max_digits=20,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Accepting a shortfall worth this much (HKD) or more needs a second approver; empty: the"
        " deployment's limit.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=Q(payment_tolerance_percent__gte=0) & Q(payment_tolerance_percent__lt=100),
                name="merchant_tolerance_in_range",
            ),
            models.CheckConstraint(
                condition=Q(refund_four_eyes_above_hkd__isnull=True) | Q(refund_four_eyes_above_hkd__gte=0),
                name="merchant_refund_limit_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(accept_four_eyes_above_hkd__isnull=True) | Q(accept_four_eyes_above_hkd__gte=0),
                name="merchant_accept_limit_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class FxRate(models.Model):
    """1 unit of `base` = `rate` units of `quote`."""

    base = models.CharField(max_length=3, choices=Currency.choices)
    quote = models.CharField(max_length=3, choices=Currency.choices)
    rate = models.DecimalField(max_digits=24, decimal_places=12)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["base", "quote"], name="fx_unique_pair"),
            models.CheckConstraint(condition=Q(rate__gt=0), name="fx_rate_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.base}/{self.quote} {self.rate}"


class Status(models.TextChoices):
    OPEN = "open"
    CONFIRMING = "confirming"
    PAID = "paid"
    EXPIRED = "expired"
    NEEDS_REVIEW = "needs_review"
    REFUNDED = "refunded"
    CANCELED = "canceled"


class ExceptionType(models.TextChoices):
    NONE = "", "none"
    UNDERPAID = "underpaid"
    OVERPAID = "overpaid"
    LATE = "late"
    WRONG_TOKEN = "wrong_token"
    REORGED = "reorged"
    HELD = "held"


class Resolution(models.TextChoices):
    NONE = "", "none"
    ACCEPT = "accept"
    REFUND = "refund"
    VOID = "void"


class PaymentRequest(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: (merchant, order_reference) and (merchant, derivation_index) lead with it.
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="payment_requests", db_index=False)
    token = models.ForeignKey(Token, on_delete=models.PROTECT, related_name="payment_requests")
    order_reference = models.CharField(max_length=64)
    amount = models.DecimalField(max_digits=20, decimal_places=2)
    currency = models.CharField(max_length=3, choices=Currency.choices)
    rate = models.DecimalField(max_digits=40, decimal_places=18, help_text="Token units per 1 unit of currency.")
    # The FX table the quote was made with, {"USD/HKD": "7.80", ...} (stablepay.money.rates_as_json): ops
    # decisions value this request's refunds and shortfalls with it, never with the live table (issue 16).
    # NULL: not recorded (a row written outside payment_request_create, or imported from an archive older
    # than the column): such a request cannot be priced in HKD except HKD to HKD, so its decisions need four eyes.
    fx_rates = models.JSONField(null=True, blank=True, editable=False)
    amount_due_base_units = BaseUnitsField()
    amount_paid_base_units = BaseUnitsField(default=Decimal(0))
    pay_to = models.CharField(max_length=42)
    derivation_index = models.PositiveIntegerField()
    # Forwarder mode: the CREATE2 salt of pay_to ("0x" + 64 hex: settlement address ++ request number); "": xpub.
    deposit_salt = models.CharField(max_length=66, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)  # indexed in Meta
    exception = models.CharField(max_length=16, choices=ExceptionType.choices, blank=True, default="")
    resolution = models.CharField(max_length=16, choices=Resolution.choices, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 - NULL: no key
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(db_index=True)
    expires_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    watch_until = models.DateTimeField(db_index=True, help_text="Late payments are caught until then.")
    refund_address = models.CharField(max_length=42, blank=True, default="")
    refund_tx_hash = models.CharField(max_length=66, blank=True, default="")
    reconcile_pending = models.BooleanField(  # indexed in Meta, where true only
        default=False, help_text="Its transfers changed; the watcher reconciles it on its next pass."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "derivation_index"], name="pr_unique_index_per_merchant"),
            models.UniqueConstraint(fields=["pay_to"], name="pr_unique_deposit_address"),
            models.UniqueConstraint(
                fields=["merchant", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="pr_unique_idempotency_key",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="pr_amount_positive"),
            models.CheckConstraint(condition=Q(amount_due_base_units__gt=0), name="pr_due_positive"),
            models.CheckConstraint(condition=Q(amount_paid_base_units__gte=0), name="pr_paid_not_negative"),
        ]
        # Every index costs each status change an entry (a changed indexed column rules out a HOT update),
        # so: status without the LIKE twin Django adds to an indexed CharField, and the pending flag
        # only where it is set (bench P5).
        indexes = [
            models.Index(fields=["merchant", "order_reference"]),
            models.Index(fields=["status"], name="pr_status"),
            models.Index(
                fields=["reconcile_pending"], condition=Q(reconcile_pending=True), name="pr_reconcile_pending"
            ),
            # The watcher looks up a getLogs answer's lower-case recipients.
            models.Index(Lower("pay_to"), name="pr_pay_to_lower"),
        ]
        permissions = [
            ("ops_console", "Can work the ops exceptions queue"),
            ("ops_approve", "Can approve another ops user's refund (four-eyes)"),
        ]

    def __str__(self) -> str:
        return f"{self.order_reference} ({self.status})"


class ActionState(models.TextChoices):
    PENDING_APPROVAL = "pending_approval"
    DONE = "done"
    REJECTED = "rejected"


class OpsAction(AppendOnly):
    """An ops decision on a request's exception: append-only, with who, when and why.

    A refund above the four-eyes threshold waits in `pending_approval` until a second ops user
    approves it (then it is carried out) or rejects it.

    Append-only in the database (migration 0010): never deleted (except by the retention purge); the
    request (payment_request, action, note, exception, refund_address, requested_by, requested_at)
    never changes; the decision (state, decided_by, decided_at, decision_note) is written once, while
    the row is `pending_approval`; refund_tx_hash is written once, from empty.
    """

    payment_request = models.ForeignKey(PaymentRequest, on_delete=models.PROTECT, related_name="ops_actions")
    action = models.CharField(max_length=16, choices=[(r.value, r.label) for r in Resolution if r.value])
    note = models.TextField()
    exception = models.CharField(max_length=16, choices=ExceptionType.choices, help_text="What was resolved.")
    refund_address = models.CharField(max_length=42, blank=True, default="")
    refund_tx_hash = models.CharField(max_length=66, blank=True, default="")
    state = models.CharField(max_length=24, choices=ActionState.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="stablepay_requested_actions"
    )
    requested_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="stablepay_decided_actions",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["payment_request"],
                condition=Q(state="pending_approval"),
                name="ops_one_pending_action_per_request",
            ),
            models.CheckConstraint(condition=~Q(decided_by=models.F("requested_by")), name="ops_four_eyes_two_people"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.payment_request_id} ({self.state})"


class ChangeState(models.TextChoices):
    PENDING = "pending"
    APPLIED = "applied"
    REJECTED = "rejected"


class ChangeProposal(AppendOnly):
    """A change to where a merchant's money goes (stablepay/governance/change_control.py): its xpub, its tolerance, its
    four-eyes limits (later its settlement addresses), or an FX rate. Proposed by one user, applied only
    once a second user holding `stablepay.approve_change` approves it; `stablepay_setup` (the deployer) and a
    merchant's own settings page record theirs as applied at once.

    `changes` is {field: {"from": old, "to": new}} with JSON values (decimals as strings, None for unset);
    an FX change names its pair in `fx_pair` ("HKD/MOP") and has one field, "rate" (None: no row).

    Append-only in the database (migration 0016): never deleted; what was proposed, by whom and when never
    changes; the decision (state, decided_by, decided_at, decision_note) is written once, while pending.
    """

    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="change_proposals", null=True, blank=True
    )
    fx_pair = models.CharField(max_length=7, blank=True, default="", help_text='An FX change: "BASE/QUOTE".')
    changes = models.JSONField()
    note = models.TextField()
    actor = models.CharField(max_length=150, help_text='Who proposed it: "ops:<user>", "setup", "merchant:<user>".')
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="stablepay_proposed_changes",
    )
    proposed_at = models.DateTimeField()
    state = models.CharField(max_length=16, choices=ChangeState.choices)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="stablepay_decided_changes",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-proposed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(decided_by=models.F("proposed_by")), name="change_four_eyes_two_people"
            ),
            models.CheckConstraint(
                condition=(Q(merchant__isnull=False) & Q(fx_pair="")) | (Q(merchant__isnull=True) & ~Q(fx_pair="")),
                name="change_merchant_or_fx_pair",
            ),
            models.UniqueConstraint(
                fields=["merchant"], condition=Q(state="pending"), name="change_one_pending_per_merchant"
            ),
            models.UniqueConstraint(
                fields=["fx_pair"], condition=Q(state="pending") & ~Q(fx_pair=""), name="change_one_pending_per_pair"
            ),
        ]
        permissions = [("approve_change", "Can approve another user's change to where money goes")]

    def __str__(self) -> str:
        return f"change {self.pk} to {self.fx_pair or self.merchant_id} ({self.state})"


class TransferState(models.TextChoices):
    SEEN = "seen"
    CONFIRMED = "confirmed"
    ORPHANED = "orphaned"


class ScreeningOutcome(models.TextChoices):
    """What the payer screening hook (stablepay/compliance/screening.py) made of a transfer's `from` address."""

    NOT_SCREENED = "", "not screened"  # recorded before screening existed
    CLEAR = "clear"
    HIT = "hit"
    FAILED_CLOSED = "failed_closed", "backend down: held"  # at or above the fail-closed amount
    FAILED_OPEN = "failed_open", "backend down: passed"  # below it


FLAGGED_OUTCOMES = (ScreeningOutcome.HIT, ScreeningOutcome.FAILED_CLOSED)


class Transfer(AppendOnly):
    """One ERC-20 Transfer log to a deposit address. Unique per (chain, tx_hash, log_index).

    Append-only in the database (migration 0010): never deleted (a reorg orphans, except the retention
    purge deletes); chain, tx_hash, log_index and created_at never change. The observation (token,
    payment_request, block_number, block_hash, block_timestamp, from/to, amount) changes only when the
    watcher re-records the same log mined again: the row was orphaned or the block hash changes.
    Lifecycle columns: state (seen -> confirmed -> orphaned -> seen) with confirmed_at and
    confirmed_head_block, reviewed (false -> true only), updated_at. The screening columns are written
    with the row and change only by a re-screen of an outcome that had no answer (failed_open /
    failed_closed -> clear / hit), migration 0012.
    """

    chain = models.ForeignKey(Chain, on_delete=models.PROTECT, related_name="transfers")
    token = models.ForeignKey(Token, on_delete=models.PROTECT, related_name="transfers")
    payment_request = models.ForeignKey(
        PaymentRequest, on_delete=models.PROTECT, related_name="transfers", null=True, blank=True
    )
    tx_hash = models.CharField(max_length=66)
    log_index = models.PositiveIntegerField()
    block_number = models.PositiveBigIntegerField(db_index=True)
    block_hash = models.CharField(max_length=66)
    block_timestamp = models.DateTimeField()
    from_address = models.CharField(max_length=42)
    to_address = models.CharField(max_length=42, db_index=True)
    amount_base_units = BaseUnitsField()
    state = models.CharField(max_length=16, choices=TransferState.choices, default=TransferState.SEEN)
    reviewed = models.BooleanField(default=False, help_text="Covered by an ops resolution.")
    # When the watcher confirmed it, and its head then: the audit bundle's confirmations at settlement.
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmed_head_block = models.PositiveBigIntegerField(null=True, blank=True)
    screening = models.CharField(max_length=16, choices=ScreeningOutcome.choices, blank=True, default="")
    screening_detail = models.TextField(blank=True, default="", help_text="Who answered, and why.")
    screened_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["block_number", "log_index"]
        constraints = [
            models.UniqueConstraint(fields=["chain", "tx_hash", "log_index"], name="transfer_unique_log"),
            models.CheckConstraint(condition=Q(amount_base_units__gte=0), name="transfer_amount_not_negative"),
        ]
        indexes = [
            # The re-screen sweep looks for the few transfers whose screening had no answer, every tick.
            models.Index(
                fields=["screened_at"],
                condition=Q(screening__in=["failed_open", "failed_closed"]),
                name="transfer_unanswered_screening",
            ),
            # The ops console's screening page: the (few) flagged or unanswered ones, newest first, and the
            # outcome counts of the last 24 hours and 7 days.
            models.Index(
                F("created_at").desc(),
                condition=Q(screening__in=["hit", "failed_closed", "failed_open"]),
                name="transfer_screening_not_clear",
            ),
            models.Index(fields=["created_at"], name="transfer_created_at"),
        ]

    def __str__(self) -> str:
        return f"{self.tx_hash}:{self.log_index}"

    def confirmations_at(self, head: int | None) -> int:
        """head - block_number + 1 (a transfer in the head block has 1); 0 once orphaned."""
        if self.state == TransferState.ORPHANED or head is None:
            return 0
        return max(head - self.block_number + 1, 0)


_LOWER_ADDRESS = re.compile(r"^0x[0-9a-f]{40}\Z")


class ScreeningListKind(models.TextChoices):
    DENY = "deny", "denylist: hold payments from it"
    ALLOW = "allow", "allowlist: never flag it"


class ScreeningListEntry(models.Model):
    """An address ops list by hand (in the admin): `deny` holds its payments, `allow` clears it even when
    an external screening service flags it (a known false positive). One entry per address, all chains;
    admin changes are in Django's admin log."""

    address = models.CharField(max_length=42, unique=True, help_text="0x + 40 hex digits; stored in lower case.")
    kind = models.CharField(max_length=8, choices=ScreeningListKind.choices)
    reason = models.CharField(max_length=255, help_text="Why, with the source (e.g. a sanctions list and its date).")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "screening list entry"
        verbose_name_plural = "screening list (allow / deny)"

    def __str__(self) -> str:
        return f"{self.kind} {self.address}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.clean()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        address = self.address.strip().lower()
        if not _LOWER_ADDRESS.match(address):
            raise ValidationError({"address": "must be 0x followed by 40 hex digits"})
        self.address = address


class Block(models.Model):
    """A header of the watcher's local header chain (stablepay.ingest.header_chain): the last blocks of the
    reorg window, each linked to the one below by its parent hash."""

    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="blocks")
    number = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=66)
    parent_hash = models.CharField(max_length=66, blank=True, default="")
    timestamp = models.DateTimeField()

    class Meta:
        ordering = ["chain", "number"]
        constraints = [models.UniqueConstraint(fields=["chain", "number"], name="block_unique_height")]

    def __str__(self) -> str:
        return f"{self.chain_id}#{self.number}"


class Cursor(models.Model):
    """Where the watcher is on a chain."""

    chain = models.OneToOneField(Chain, on_delete=models.CASCADE, related_name="cursor")
    scanned_block = models.PositiveBigIntegerField(help_text="Every block up to here has been read.")
    head_block = models.PositiveBigIntegerField(default=0)
    chunk_size = models.PositiveIntegerField(default=2000)
    chunk_ceiling = models.PositiveIntegerField(
        null=True, blank=True, help_text="The widest getLogs span the node accepts, once it has refused one."
    )
    last_scan_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.chain_id} at {self.scanned_block}"


class Event(AppendOnly):
    """The append-only timeline of a payment request: one row per change, with who and why.

    Append-only in the database (migration 0010): no column is ever updated, no row deleted (except
    by the retention purge).
    """

    payment_request = models.ForeignKey(PaymentRequest, on_delete=models.PROTECT, related_name="events")
    at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices)
    exception = models.CharField(max_length=16, choices=ExceptionType.choices, blank=True, default="")
    note = models.TextField(blank=True, default="")
    actor = models.CharField(max_length=150)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.status} by {self.actor}"


class WebhookDelivery(models.Model):
    """The webhook outbox: written with the change it reports, delivered after commit with retries."""

    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="webhook_deliveries")
    # NULL for an event about the merchant itself (merchant.change_*, stablepay/governance/change_control.py).
    payment_request = models.ForeignKey(
        PaymentRequest, on_delete=models.PROTECT, related_name="webhooks", null=True, blank=True
    )
    type = models.CharField(max_length=64)
    payload = models.JSONField()
    created_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class RateLimitCounter(models.Model):
    """A fixed-window counter for the database rate-limit backend (no Redis: see stablepay/ratelimit.py).

    Written only by one atomic INSERT ... ON CONFLICT DO UPDATE per hit; a row whose window has ended
    is restarted by the next hit and swept now and then.
    """

    key = models.CharField(max_length=200, primary_key=True)
    count = models.PositiveIntegerField()
    resets_at_ms = models.BigIntegerField(db_index=True)  # the window's end, Unix time in milliseconds

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"
