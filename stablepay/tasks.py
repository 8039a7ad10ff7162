"""Celery tasks: thin wrappers that take ids, hold a per-chain Redis lock and call one service."""

from __future__ import annotations

import logging
from functools import lru_cache

import redis
from celery import shared_task
from django.conf import settings

from stablepay import services, watcher, webhooks
from stablepay.chain.reader import ChainError
from stablepay.models import Chain

logger = logging.getLogger(__name__)

LOCK_SECONDS = 60


@lru_cache(maxsize=1)
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


@shared_task(acks_late=True, ignore_result=True)
def scan_chain_task(chain_pk: int) -> None:
    """One pass over one chain; a Redis lock keeps it to one scanner per chain across all workers."""
    lock = _redis().lock(f"stablepay:scan:{chain_pk}", timeout=LOCK_SECONDS)
    if not lock.acquire(blocking=False):
        return
    try:
        chain = Chain.objects.get(pk=chain_pk)
        try:
            watcher.scan_chain(chain=chain, reader=watcher.reader_for(chain))
        except ChainError as exc:
            watcher.record_error(chain, exc)
    finally:
        lock.release()


@shared_task(acks_late=True, ignore_result=True)
def scan_all_chains_task() -> None:
    """The beat tick: fan out one scan per chain, then the expiry sweep and due webhooks."""
    for chain_pk in Chain.objects.values_list("pk", flat=True):
        scan_chain_task.delay(chain_pk)
    expire_requests_task.delay()
    deliver_webhooks_task.delay()


@shared_task(acks_late=True, ignore_result=True)
def expire_requests_task() -> None:
    services.payment_requests_expire()


@shared_task(acks_late=True, ignore_result=True)
def deliver_webhooks_task() -> None:
    webhooks.deliver_due()


@shared_task(acks_late=True, ignore_result=True)
def deliver_webhook_task(delivery_pk: int) -> None:
    """One delivery, enqueued on commit of the change it reports; retries come from the sweep."""
    webhooks.deliver(delivery_pk)
