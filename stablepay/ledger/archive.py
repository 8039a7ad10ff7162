"""Ledger archives: export a date range as gzip JSON Lines, verify one, re-import it into another copy.

Format `stablepay-ledger/1`, one JSON object per line, keys sorted:
- a header: {"kind": "header", "format", "from", "to", "created_at", "counts"};
- one line per row, {"kind": <model>, "key": <natural key>, "data": <fields>}, in this order: chains,
  tokens, merchants, users, then the payment requests, transfers, events and ops actions of the range
  (rows whose own time, block_timestamp / at / requested_at, or the request's created_at, falls in
  [from, to] inclusive), with the registry rows and requests they reference;
- a trailer: {"kind": "trailer", "lines": N, "sha256": hex}: SHA-256 over the bytes of every line
  before it, so a changed, added or removed line is detected.
Rows are keyed by natural keys (chain id; chain id + token address; merchant slug; username; request
UUID; chain id + tx hash + log index; an event's whole content; request + requested_at + action +
requester for an ops action), never by database ids, so another copy can take them. Money stays
exact: integer base units and Decimals are strings, datetimes ISO 8601 in UTC.

Import is idempotent: a row already there with the same content is skipped; one with different content
is an error naming the row, and nothing is written (one transaction). Merchants and users created by
an import cannot sign in (a random API key hash; an unusable password, inactive). The SHA-256 protects
against damage and edits in transit; keep the printed digest apart from the file to detect a forger
who recomputes it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets
import uuid
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Model, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from stablepay.models import Chain, Event, Merchant, OpsAction, PaymentRequest, Token, Transfer

FORMAT = "stablepay-ledger/1"
KINDS = ("chain", "token", "merchant", "user", "payment_request", "transfer", "event", "ops_action")


class ArchiveError(Exception):
    """The archive is damaged, tampered with, or conflicts with this database."""


# --- values ---------------------------------------------------------------------------------------


def _dump(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


# Exported fields per model (database ids and foreign keys are replaced by natural keys).
CHAIN_FIELDS = ("name", "confirmations", "block_time_seconds", "explorer_tx_url", "use_finalized_tag", "start_block")
TOKEN_FIELDS = ("symbol", "decimals", "currency")
MERCHANT_FIELDS = ("name", "xpub")
REQUEST_FIELDS = (
    "order_reference",
    "amount",
    "currency",
    "rate",
    "fx_rates",
    "amount_due_base_units",
    "amount_paid_base_units",
    "pay_to",
    "derivation_index",
    "status",
    "exception",
    "resolution",
    "metadata",
    "idempotency_key",
    "request_fingerprint",
    "created_at",
    "expires_at",
    "paid_at",
    "watch_until",
    "refund_address",
    "refund_tx_hash",
)
TRANSFER_FIELDS = (
    "block_number",
    "block_hash",
    "block_timestamp",
    "from_address",
    "to_address",
    "amount_base_units",
    "state",
    "reviewed",
    "confirmed_at",
    "confirmed_head_block",
    "screening",
    "screening_detail",
    "screened_at",
    "created_at",
)
# Fields added after the first archives were written, with the value an older archive means. A request
# from an archive older than `fx_rates` imports with none recorded (NULL: see PaymentRequest.fx_rates);
# a request already here is compared only on the fields the archive has.
REQUEST_DEFAULTS: dict[str, Any] = {"fx_rates": None}
TRANSFER_DEFAULTS = {
    "confirmed_at": None,
    "confirmed_head_block": None,
    "screening": "",
    "screening_detail": "",
    "screened_at": None,
}
OPS_FIELDS = ("note", "exception", "refund_address", "refund_tx_hash", "state", "decided_at", "decision_note")


def _fields(obj: Model, names: Iterable[str]) -> dict[str, Any]:
    return {name: _dump(getattr(obj, name)) for name in names}


def _token_key(token: Token) -> list[Any]:
    return [token.chain.chain_id, token.address]


def _row(kind: str, key: Any, data: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "key": key, "data": data}


# --- export ---------------------------------------------------------------------------------------


def _window(start: date, end: date) -> tuple[datetime, datetime]:
    return (
        datetime.combine(start, time.min, tzinfo=UTC),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
    )


def export_rows(start: date, end: date) -> Iterator[dict[str, Any]]:
    """The row objects of the range, registry first, each kind in a stable order."""
    lo, hi = _window(start, end)
    transfers = list(
        Transfer.objects.filter(block_timestamp__gte=lo, block_timestamp__lt=hi)
        .select_related("chain", "token__chain")
        .order_by("chain__chain_id", "tx_hash", "log_index")
    )
    events = list(Event.objects.filter(at__gte=lo, at__lt=hi).order_by("payment_request_id", "at", "id"))
    ops = list(
        OpsAction.objects.filter(requested_at__gte=lo, requested_at__lt=hi)
        .select_related("requested_by", "decided_by")
        .order_by("payment_request_id", "requested_at", "id")
    )
    request_ids = (
        {t.payment_request_id for t in transfers if t.payment_request_id}
        | {e.payment_request_id for e in events}
        | {o.payment_request_id for o in ops}
    )
    requests = list(
        PaymentRequest.objects.filter(Q(pk__in=request_ids) | Q(created_at__gte=lo, created_at__lt=hi))
        .select_related("merchant", "token__chain")
        .order_by("id")
    )
    tokens = {t.token_id: t.token for t in transfers} | {r.token_id: r.token for r in requests}
    chains = {t.chain_id: t.chain for t in tokens.values()}
    merchants = {r.merchant_id: r.merchant for r in requests}
    users = {o.requested_by_id: o.requested_by for o in ops} | {
        o.decided_by_id: o.decided_by for o in ops if o.decided_by
    }

    for chain in sorted(chains.values(), key=lambda c: c.chain_id):
        yield _row("chain", chain.chain_id, _fields(chain, CHAIN_FIELDS))
    for token in sorted(tokens.values(), key=lambda t: (t.chain.chain_id, t.address)):
        yield _row("token", _token_key(token), _fields(token, TOKEN_FIELDS))
    for merchant in sorted(merchants.values(), key=lambda m: m.slug):
        yield _row("merchant", merchant.slug, _fields(merchant, MERCHANT_FIELDS))
    for user in sorted(users.values(), key=lambda u: u.get_username()):
        yield _row("user", user.get_username(), {})
    for r in requests:
        data = _fields(r, REQUEST_FIELDS) | {"merchant": r.merchant.slug, "token": _token_key(r.token)}
        yield _row("payment_request", str(r.pk), data)
    for t in transfers:
        data = _fields(t, TRANSFER_FIELDS) | {
            "token": _token_key(t.token),
            "payment_request": str(t.payment_request_id) if t.payment_request_id else None,
        }
        yield _row("transfer", [t.chain.chain_id, t.tx_hash, t.log_index], data)
    for e in events:
        key = {
            "payment_request": str(e.payment_request_id),
            "at": _dump(e.at),
            "status": e.status,
            "exception": e.exception,
            "note": e.note,
            "actor": e.actor,
        }
        yield _row("event", key, {})
    for o in ops:
        op_key = [str(o.payment_request_id), _dump(o.requested_at), o.action, o.requested_by.get_username()]
        data = _fields(o, OPS_FIELDS) | {"decided_by": o.decided_by.get_username() if o.decided_by else None}
        yield _row("ops_action", op_key, data)


def export(start: date, end: date, out: IO[bytes], *, now: datetime | None = None) -> dict[str, Any]:
    """Write the gzip archive to `out`; returns the trailer (line count and SHA-256)."""
    rows = list(export_rows(start, end))
    counts = {kind: sum(1 for r in rows if r["kind"] == kind) for kind in KINDS}
    header = {
        "kind": "header",
        "format": FORMAT,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "created_at": _dump(now or timezone.now()),
        "counts": counts,
    }
    digest = hashlib.sha256()
    lines = 0
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        for obj in [header, *rows]:
            line = _line(obj)
            digest.update(line)
            gz.write(line)
            lines += 1
        trailer = {"kind": "trailer", "lines": lines, "sha256": digest.hexdigest()}
        gz.write(_line(trailer))
    return trailer


# --- read and verify ------------------------------------------------------------------------------


def read(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """Header, rows and trailer of a verified archive; ArchiveError says what is wrong otherwise."""
    try:
        with gzip.open(path, "rb") as gz:
            raw = gz.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"{path}: not a readable gzip archive ({exc}): damaged or tampered with") from exc
    if not raw.endswith(b"\n"):
        raise ArchiveError(f"{path}: the archive is truncated (no final newline)")
    lines = raw[:-1].split(b"\n")
    if len(lines) < 2:
        raise ArchiveError(f"{path}: the archive is truncated (no header or no trailer)")
    try:
        objs = [json.loads(line) for line in lines]
    except ValueError as exc:
        raise ArchiveError(f"{path}: a line is not valid JSON ({exc}): damaged or tampered with") from exc
    header, rows, trailer = objs[0], objs[1:-1], objs[-1]
    if header.get("kind") != "header" or header.get("format") != FORMAT:
        raise ArchiveError(f"{path}: the first line is not a {FORMAT} header")
    if trailer.get("kind") != "trailer":
        raise ArchiveError(f"{path}: the last line is not the trailer: the archive is truncated or tampered with")
    digest = hashlib.sha256()
    for line in lines[:-1]:
        digest.update(line + b"\n")
    if trailer.get("lines") != len(lines) - 1:
        raise ArchiveError(
            f"{path}: the trailer counts {trailer.get('lines')} lines, the archive has {len(lines) - 1}: "
            "lines were added or removed"
        )
    if trailer.get("sha256") != digest.hexdigest():
        raise ArchiveError(
            f"{path}: SHA-256 mismatch (trailer {trailer.get('sha256')}, content {digest.hexdigest()}): "
            "the archive was changed after export"
        )
    counts = {kind: sum(1 for r in rows if r.get("kind") == kind) for kind in KINDS}
    if counts != header.get("counts"):
        raise ArchiveError(f"{path}: the header counts {header.get('counts')} do not match the rows {counts}")
    return header, rows, trailer


# --- import ---------------------------------------------------------------------------------------


def _when(value: str) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        raise ArchiveError(f"not a datetime: {value!r}")
    return parsed


DATETIME_FIELDS = {
    "created_at",
    "expires_at",
    "paid_at",
    "watch_until",
    "block_timestamp",
    "decided_at",
    "screened_at",
    "confirmed_at",
}


def _parse(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in DATETIME_FIELDS:
        return parse_datetime(value)
    if name in {"amount", "rate", "amount_due_base_units", "amount_paid_base_units", "amount_base_units"}:
        return Decimal(value)
    return value


def _compare(kind: str, key: Any, existing: dict[str, Any], archived: dict[str, Any]) -> None:
    diff = sorted(name for name in archived if existing.get(name) != archived[name])
    if diff:
        detail = "; ".join(f"{n}: database {existing.get(n)!r}, archive {archived[n]!r}" for n in diff)
        raise ArchiveError(f"conflict: {kind} {json.dumps(key)} differs from this database ({detail})")


class _Importer:
    def __init__(self) -> None:
        self.created = dict.fromkeys(KINDS, 0)
        self.chains: dict[int, Chain] = {}
        self.tokens: dict[tuple[int, str], Token] = {}
        self.merchants: dict[str, Merchant] = {}
        self.users: dict[str, Any] = {}

    def _new(self, kind: str, obj: Model) -> None:
        obj.save_base(raw=True, force_insert=True)  # raw: keep the archived created_at (no auto_now_add)
        self.created[kind] += 1

    def chain(self, key: int, data: dict[str, Any]) -> None:
        chain = Chain.objects.filter(chain_id=key).first()
        if chain is None:
            chain = Chain(chain_id=key, rpc_urls=[], created_at=timezone.now(), **data)
            self._new("chain", chain)
        else:
            _compare("chain", key, _fields(chain, ["name"]), {"name": data["name"]})
        self.chains[key] = chain

    def token(self, key: list[Any], data: dict[str, Any]) -> None:
        chain = self.chains[key[0]]
        token = Token.objects.filter(chain=chain, address=key[1]).first()
        if token is None:
            token = Token(chain=chain, address=key[1], active=False, **data)
            self._new("token", token)
        else:
            _compare("token", key, _fields(token, TOKEN_FIELDS), data)
        self.tokens[(key[0], key[1])] = token

    def merchant(self, key: str, data: dict[str, Any]) -> None:
        merchant = Merchant.objects.filter(slug=key).first()
        if merchant is None:
            merchant = Merchant(
                slug=key,
                api_key_hash=hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
                created_at=timezone.now(),
                **data,
            )
            self._new("merchant", merchant)
        else:
            _compare("merchant", key, _fields(merchant, ["xpub"]), {"xpub": data["xpub"]})
        self.merchants[key] = merchant

    def user(self, key: str, data: dict[str, Any]) -> None:
        model = get_user_model()
        user = model.objects.filter(**{model.USERNAME_FIELD: key}).first()
        if user is None:
            user = model(**{model.USERNAME_FIELD: key}, is_active=False)
            user.set_unusable_password()
            user.save()
            self.created["user"] += 1
        self.users[key] = user

    def payment_request(self, key: str, data: dict[str, Any]) -> None:
        existing = PaymentRequest.objects.filter(pk=key).select_related("merchant", "token__chain").first()
        if existing is not None:
            mine = _fields(existing, REQUEST_FIELDS) | {
                "merchant": existing.merchant.slug,
                "token": _token_key(existing.token),
            }
            _compare("payment_request", key, mine, data)
            return
        fields = {n: _parse(n, data[n] if n in data else REQUEST_DEFAULTS[n]) for n in REQUEST_FIELDS}
        request = PaymentRequest(
            pk=key,
            merchant=self.merchants[data["merchant"]],
            token=self.tokens[tuple(data["token"])],
            updated_at=timezone.now(),
            **fields,
        )
        self._new("payment_request", request)

    def transfer(self, key: list[Any], data: dict[str, Any]) -> None:
        data = TRANSFER_DEFAULTS | data
        chain = self.chains[key[0]]
        existing = (
            Transfer.objects.filter(chain=chain, tx_hash=key[1], log_index=key[2])
            .select_related("token__chain")
            .first()
        )
        if existing is not None:
            mine = _fields(existing, TRANSFER_FIELDS) | {
                "token": _token_key(existing.token),
                "payment_request": str(existing.payment_request_id) if existing.payment_request_id else None,
            }
            _compare("transfer", key, mine, data)
            return
        fields = {n: _parse(n, data[n]) for n in TRANSFER_FIELDS}
        transfer = Transfer(
            chain=chain,
            tx_hash=key[1],
            log_index=key[2],
            token=self.tokens[tuple(data["token"])],
            payment_request_id=data["payment_request"],
            updated_at=timezone.now(),
            **fields,
        )
        self._new("transfer", transfer)

    def event(self, key: dict[str, Any], data: dict[str, Any]) -> None:
        fields = {n: _parse(n, v) for n, v in key.items() if n not in {"payment_request", "at"}}
        at = _when(key["at"])
        match = Event.objects.filter(payment_request_id=key["payment_request"], at=at, **fields)
        if not match.exists():
            self._new("event", Event(payment_request_id=key["payment_request"], at=at, **fields))

    def ops_action(self, key: list[Any], data: dict[str, Any]) -> None:
        request_id, requested_at, action, requester = key
        at = _when(requested_at)
        existing = (
            OpsAction.objects.filter(
                payment_request_id=request_id, requested_at=at, action=action, requested_by=self.users[requester]
            )
            .select_related("decided_by")
            .first()
        )
        if existing is not None:
            mine = _fields(existing, OPS_FIELDS) | {
                "decided_by": existing.decided_by.get_username() if existing.decided_by else None
            }
            _compare("ops_action", key, mine, data)
            return
        fields = {n: _parse(n, data[n]) for n in OPS_FIELDS}
        op = OpsAction(
            payment_request_id=request_id,
            requested_at=at,
            action=action,
            requested_by=self.users[requester],
            decided_by=self.users[data["decided_by"]] if data["decided_by"] else None,
            **fields,
        )
        self._new("ops_action", op)


def import_archive(path: Path, *, verify_only: bool = False) -> dict[str, Any]:
    """Verify the archive, then (unless verify_only) write what this database lacks, all or nothing."""
    header, rows, trailer = read(path)
    result: dict[str, Any] = {"format": header["format"], "sha256": trailer["sha256"], "rows": header["counts"]}
    if verify_only:
        return result | {"verified": True}
    importer = _Importer()
    with transaction.atomic():
        for row in rows:
            getattr(importer, row["kind"])(row["key"], row["data"])
        # Read every row back: a database that cannot hold a value exactly (SQLite keeps numbers beyond
        # 64-bit integers as floats) is caught here, and the whole import rolls back.
        check = _Importer()
        for row in rows:
            try:
                getattr(check, row["kind"])(row["key"], row["data"])
            except ArchiveError as exc:
                raise ArchiveError(f"{exc}: this database did not store the archived value exactly") from exc
        if any(check.created.values()):
            raise ArchiveError(f"rows not found after import: {check.created}")
    return result | {"verified": True, "created": importer.created}
