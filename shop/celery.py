"""Celery application: broker and result backend are REDIS_URL; tasks come from stablepay.tasks.

The beat schedule is stablepay's (its tick every SCAN_INTERVAL_SECONDS: `beat_schedule`, from the one list of
periodic jobs the plain watcher runs too), joined by whatever the host lists in CELERY_BEAT_SCHEDULE.
"""

import os
from typing import Any

from celery import Celery

from stablepay.interface import beat_schedule

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def add_stablepay_schedule(sender: Celery, source: Any, **kwargs: Any) -> None:
    """Once the settings are read (the interval is one of them): stablepay's entries, then the host's own."""
    source.beat_schedule = {**beat_schedule(), **(source.beat_schedule or {})}
