"""Settings for the fault suite's and load test's processes: shop's own, plus the signal probe.

The probe (tests.chaos.probe) records every status signal stablepay sends, so the suite can count the
`paid` signals per request; stablepay itself has no test-only code path.
"""

from shop.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.chaos.probe"]  # noqa: F405
