"""P4's server settings: the production settings unchanged, plus the benchmark-only URL conf.

gunicorn runs with DJANGO_SETTINGS_MODULE=bench.p4_settings so that the framework-floor endpoint is
mounted next to the real API without shipping it in shop.urls.
"""

from shop.settings import *  # noqa: F403

ROOT_URLCONF = "bench.p4_urls"
