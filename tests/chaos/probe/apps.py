"""Connects the probe's receivers when the suite's processes start (tests.chaos.settings)."""

from __future__ import annotations

import os
from typing import Any

from django.apps import AppConfig
from django.db import connection


def _record(request_id: object, previous: str, status: str, exception: str, via: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO chaos_signal_log (payment_request_id, previous_status, status, exception, via, pid)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            [str(request_id), previous, status, exception, via, os.getpid()],
        )


def one_changed(*, payment_request: Any, previous_status: str, status: str, exception: str, **kwargs: Any) -> None:
    _record(payment_request.pk, previous_status, status, exception, "per-row")


def batch_changed(*, changes: list[Any], **kwargs: Any) -> None:
    for change in changes:
        _record(change.payment_request_id, change.previous_status, change.status, change.exception, "batch")


class ProbeConfig(AppConfig):
    name = "tests.chaos.probe"
    label = "chaos_probe"

    def ready(self) -> None:
        from stablepay.ledger.signals import payment_request_status_changed, payment_requests_status_changed

        payment_request_status_changed.connect(one_changed, dispatch_uid="chaos.probe.one")
        payment_requests_status_changed.connect(batch_changed, dispatch_uid="chaos.probe.batch")
