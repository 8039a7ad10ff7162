"""Celery tasks: thin wrappers that take ids, hold a per-chain Redis lock and call one service.

The beat tick (`scan_all_chains_task`, scheduled by stablepay.ingest.schedule.beat_schedule) sends one scan
per chain and then the task of each periodic job (stablepay.ingest.schedule.periodic_jobs): the same list
the plain watcher runs in process. New webhook deliveries come from the outbox's `webhooks_queued` signal
(stablepay.ledger.outbox), which `connect_outbox` hooks up from `AppConfig.ready` in Celery mode: nothing
below this module imports it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import redis
from celery import shared_task
from django.conf import settings

from stablepay.chain.factory import reader_for_chain
from stablepay.chain.reader import ChainError
from stablepay.compliance import screening
from stablepay.ingest import schedule, watcher
from stablepay.ledger import outbox, services
from stablepay.models import Chain
from stablepay.registry import token_health
from stablepay.webhooks import delivery as webhooks

logger = logging.getLogger(__name__)

# The per-chain scan lock lives LOCK_SECONDS and a running scan renews it every LOCK_RENEW_SECONDS, so a
# worker that dies mid-scan (SIGKILL, OOM, lost machine) blocks that chain for LOCK_SECONDS at most, not
# for as long as the longest scan could take. The lock only saves duplicate work: two scanners are safe
# (the watcher re-checks the cursor under a row lock), so a lock that lapses under load costs nothing.
LOCK_SECONDS = 5
LOCK_RENEW_SECONDS = 1
MAX_PASSES_PER_TASK = 10  # back-to-back passes one task may run for heads announced while it scanned
_FOLLOWED = "stablepay:followed:{}"


@lru_cache(maxsize=1)
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


@contextmanager
def chain_scan_lock(chain_pk: int) -> Iterator[bool]:
    """Yield True while this process holds the chain's scan lock (kept alive by a renewer thread),
    False when another scanner has it."""
    # thread_local=False: the token must be visible to the renewer thread.
    lock = _redis().lock(f"stablepay:scan:{chain_pk}", timeout=LOCK_SECONDS, thread_local=False)
    if not lock.acquire(blocking=False):
        yield False
        return
    done = threading.Event()

    def renew() -> None:
        while not done.wait(LOCK_RENEW_SECONDS):
            try:
                lock.reacquire()
            except (redis.RedisError, redis.exceptions.LockError) as exc:
                logger.warning("chain pk %s: scan lock not renewed: %s", chain_pk, exc)
                return

    renewer = threading.Thread(target=renew, name=f"scan-lock-{chain_pk}", daemon=True)
    renewer.start()
    try:
        yield True
    finally:
        done.set()
        renewer.join()
        try:
            lock.release()
        except (redis.RedisError, redis.exceptions.LockError) as exc:  # lapsed: it is someone else's now
            logger.warning("chain pk %s: scan lock lost before release: %s", chain_pk, exc)


@shared_task(acks_late=True, ignore_result=True)
def scan_chain_task(chain_pk: int) -> None:
    """One pass over one chain; a Redis lock keeps it to one scanner per chain across all workers.

    A task that finds the lock taken leaves a "scan again" mark, and the holder runs one more pass
    when it finishes: a head announced mid-scan is read at once, not at the next tick.
    """
    again = f"stablepay:scan-again:{chain_pk}"
    with chain_scan_lock(chain_pk) as held:
        if not held:
            _redis().set(again, 1, ex=LOCK_SECONDS)
            return
        for _ in range(MAX_PASSES_PER_TASK):
            _redis().delete(again)
            chain = Chain.objects.get(pk=chain_pk)
            try:
                watcher.scan_chain(chain=chain, reader=reader_for_chain(chain, shared=True))
            except ChainError as exc:
                watcher.record_error(chain, exc)
                return
            if not _redis().exists(again):
                return


@shared_task(acks_late=True, ignore_result=True)
def scan_all_chains_task() -> None:
    """The beat tick: fan out one scan per chain, then one task per periodic job (stablepay.ingest.schedule).

    A chain whose newHeads follower (`stablepay_scan --dispatch`) announced a head lately is skipped:
    each head already brings a scan, and the poll is only the fallback for when the socket goes quiet.
    """
    for chain_pk in Chain.objects.values_list("pk", flat=True):
        if not _redis().exists(_FOLLOWED.format(chain_pk)):
            scan_chain_task.delay(chain_pk)
    for job in schedule.periodic_jobs():
        scan_all_chains_task.app.tasks[job.task].delay()


def forward_head(chain: Chain) -> None:
    """What the follower does with a new head: mark the chain followed for three block times (the beat
    poll stands down meanwhile) and enqueue its scan."""
    _redis().set(_FOLLOWED.format(chain.pk), 1, ex=max(3, 3 * chain.block_time_seconds))
    scan_chain_task.delay(chain.pk)


@shared_task(acks_late=True, ignore_result=True)
def expire_requests_task() -> None:
    services.payment_requests_expire()


@shared_task(acks_late=True, ignore_result=True)
def check_tokens_task() -> None:
    """The tokens' contract checks (each at most every TOKEN_CHECK_SECONDS): paused, blocked, upgraded."""
    token_health.check_due()


@shared_task(acks_late=True, ignore_result=True)
def rescreen_payers_task() -> None:
    """Screen again the payers whose screening had no answer (each at most every SCREENING_RETRY_SECONDS)."""
    screening.rescreen_due()


@shared_task(acks_late=True, ignore_result=True)
def deliver_webhooks_task() -> None:
    webhooks.deliver_due()


@shared_task(acks_late=True, ignore_result=True)
def deliver_webhook_task(delivery_pk: int) -> None:
    """One delivery, enqueued on commit of the change it reports; retries come from the sweep."""
    webhooks.deliver(delivery_pk)


def deliver_queued(sender: object, *, delivery_ids: list[int] | None, **kwargs: object) -> None:
    """The outbox's receiver in Celery mode: each new delivery goes to a worker as soon as its change
    commits (after a bulk write, one sweep of what is due), not at the next tick."""
    if delivery_ids is None:
        deliver_webhooks_task.delay()
        return
    for delivery_pk in delivery_ids:
        deliver_webhook_task.delay(delivery_pk)


def connect_outbox() -> None:
    """Called from `AppConfig.ready` when Celery runs the background work (REDIS_URL is set)."""
    outbox.webhooks_queued.connect(deliver_queued, dispatch_uid="stablepay.tasks.deliver_queued")
