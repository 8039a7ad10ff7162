"""The outward signals: payment requests changed status (paid, confirming, resolved, canceled...).

`payment_request_status_changed`, one request: sent by the per-row services inside the transaction
that made the change, so a receiver's writes (the store marking its order paid) commit or roll back
with it. Arguments: payment_request, previous_status, status, exception, actor.

`payment_requests_status_changed`, a batch: sent by the set-based status pass (bulk_reconcile) inside
its transaction, one call per batch of changes. Argument: changes, a list of `StatusChange`. A store
that connects to it takes the pass's changes from it alone; when nothing is connected to it, the pass
sends the per-row signal for each change instead, so a per-row receiver never misses one.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from django.dispatch import Signal


class StatusChange(NamedTuple):
    payment_request_id: UUID
    previous_status: str
    status: str
    exception: str
    paid_at: datetime | None
    actor: str


payment_request_status_changed = Signal()
payment_requests_status_changed = Signal()
