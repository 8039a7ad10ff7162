"""Settings for the fault suite's and load test's processes: shop's own, plus the signal probe.

The probe (tests.chaos.probe) records every status signal stablepay sends, so the suite can count the
`paid` signals per request; stablepay itself has no test-only code path.
"""

import os

from shop.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.chaos.probe"]  # noqa: F405

# A deployment may give the chain scans a worker of their own (`celery worker -Q scans`), so webhook
# deliveries and the expiry sweep never queue in front of a scan; the load test runs it that way.
if os.environ.get("CHAOS_SCAN_QUEUE"):
    CELERY_TASK_ROUTES = {"stablepay.tasks.scan_chain_task": {"queue": os.environ["CHAOS_SCAN_QUEUE"]}}
