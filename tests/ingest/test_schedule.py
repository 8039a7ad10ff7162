"""One periodic job list (stablepay.ingest.schedule) for both ways stablepay runs: the plain watcher's
housekeeping calls each job's service in order, the Celery beat tick sends each job's task, each task runs
that same service, and the host's beat schedule is stablepay's."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stablepay import tasks
from stablepay.compliance import screening
from stablepay.ingest import schedule, watcher
from stablepay.ledger import services
from stablepay.registry import token_health
from stablepay.webhooks import delivery

pytestmark = pytest.mark.django_db

SERVICES = [
    (services, "payment_requests_expire"),
    (delivery, "deliver_due"),
    (token_health, "check_due"),
    (screening, "rescreen_due"),
]


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each job's service replaced by one that notes its name and the `now` it was given."""
    calls: list[str] = []
    for module, name in SERVICES:
        monkeypatch.setattr(module, name, lambda now=None, name=name: calls.append(f"{name}@{now}"))
    return calls


def test_the_plain_loop_runs_every_job_in_order(ran: list[str]) -> None:
    watcher.housekeeping(now=None)
    assert ran == [f"{name}@None" for _, name in SERVICES]


def test_the_beat_tick_sends_each_jobs_task_and_each_task_runs_that_jobs_service(
    ran: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    for job in schedule.periodic_jobs():
        task = tasks.scan_all_chains_task.app.tasks[job.task]
        monkeypatch.setattr(task, "delay", lambda name=job.task: sent.append(name))
    tasks.scan_all_chains_task()  # no chain registered: no scan task, only the jobs
    assert sent == [job.task for job in schedule.periodic_jobs()]
    for job, (_, name) in zip(schedule.periodic_jobs(), SERVICES, strict=True):
        getattr(tasks, job.task.rsplit(".", 1)[1])()  # the task, run in this process as a worker runs it
        assert ran[-1] == f"{name}@None"


def test_the_hosts_beat_schedule_is_stablepays_tick(settings) -> None:  # type: ignore[no-untyped-def]
    from shop.celery import app

    assert app.conf.beat_schedule[schedule.BEAT_ENTRY]["task"] == schedule.TICK_TASK == tasks.scan_all_chains_task.name
    settings.STABLEPAY = {**settings.STABLEPAY, "SCAN_INTERVAL_SECONDS": 2.5}
    assert schedule.beat_schedule()[schedule.BEAT_ENTRY]["schedule"] == timedelta(seconds=2.5)
    assert schedule.beat_schedule(interval_seconds=0.5)[schedule.BEAT_ENTRY]["schedule"] == timedelta(seconds=0.5)
