"""The periodic work, one list for both ways stablepay runs: every SCAN_INTERVAL_SECONDS, each chain is
scanned (stablepay.ingest.watcher), then each job of `periodic_jobs` runs, in that order.

- Plain (embedded) mode: `manage.py stablepay_scan` (stablepay.ingest.watch_loop) scans each chain, then
  `run_periodic_jobs` calls every job's service in the process, once per interval; `stablepay_scan --once`
  does one such pass.
- Celery mode: the host's beat schedule is `beat_schedule()`, one tick (`stablepay.tasks.scan_all_chains_task`)
  every interval, which sends one scan task per chain and then each job's task (`PeriodicJob.task`), so the
  workers run the same services.

A host plugs the beat tick into its Celery app with `beat_schedule()` (shop/celery.py). This module
imports nothing that needs Django's apps until a job is asked for, so a host's celery.py or settings.py may
import it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from stablepay.conf import app_settings

BEAT_ENTRY = "stablepay-scan-all-chains"
TICK_TASK = "stablepay.tasks.scan_all_chains_task"


@dataclass(frozen=True)
class PeriodicJob:
    name: str  # what a log line calls it
    task: str  # the Celery task the beat tick sends for it (a stable name: workers and queues refer to it)
    run: Callable[..., object]  # the service both modes call; it takes `now` (None: the current time)


def periodic_jobs() -> tuple[PeriodicJob, ...]:
    """What runs after the chains are scanned, in order: the expiry sweep, the webhooks that are due, the
    tokens' contract checks, and the payers whose screening had no answer."""
    from stablepay.compliance import screening
    from stablepay.ledger import services
    from stablepay.registry import token_health
    from stablepay.webhooks import delivery

    return (
        PeriodicJob("expiry sweep", "stablepay.tasks.expire_requests_task", services.payment_requests_expire),
        PeriodicJob("webhook delivery", "stablepay.tasks.deliver_webhooks_task", delivery.deliver_due),
        PeriodicJob("token checks", "stablepay.tasks.check_tokens_task", token_health.check_due),
        PeriodicJob("payer re-screening", "stablepay.tasks.rescreen_payers_task", screening.rescreen_due),
    )


def run_periodic_jobs(*, now: datetime | None = None) -> None:
    """Every job, in this process (plain mode), in order; an error propagates (the watch loop logs it and
    runs them all again at the next interval)."""
    for job in periodic_jobs():
        job.run(now=now)


def beat_schedule(*, interval_seconds: float | None = None) -> dict[str, dict[str, Any]]:
    """The Celery beat entries stablepay needs (for CELERY_BEAT_SCHEDULE / `app.conf.beat_schedule`): its
    tick every `interval_seconds` (default: SCAN_INTERVAL_SECONDS)."""
    if interval_seconds is None:
        interval_seconds = app_settings.SCAN_INTERVAL_SECONDS
    return {BEAT_ENTRY: {"task": TICK_TASK, "schedule": timedelta(seconds=interval_seconds)}}
