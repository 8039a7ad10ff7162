"""An early pytest plugin (`-p tests.support.env`): point Django at real PostgreSQL and Redis.

It runs before Django's settings are read, so DATABASE_URL and REDIS_URL are set first: from the
environment when given, else the machine's services on their default ports, else throwaway ones.
"""

import os

from tests.support.services import postgres_url, redis_url

os.environ["DATABASE_URL"] = postgres_url()
os.environ["REDIS_URL"] = redis_url()
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API next to live_server
os.environ.setdefault("STABLEPAY_BASE_URL", "http://testserver")
# Tests write tokens and FX rates and roll them back: read them fresh (tests/registry/test_refdata.py
# covers the cache itself).
os.environ.setdefault("STABLEPAY_REFERENCE_CACHE_SECONDS", "0")
# Creation rate limits (issue 6) high enough that no ordinary test trips them; the rate-limit tests
# (tests/security/test_ratelimit*.py) set low ones.
for _limit in ("PER_MERCHANT", "PER_IP", "PER_API_IP"):
    os.environ.setdefault(f"STABLEPAY_RATE_LIMIT_{_limit}", "100000000/60")
# The suites' webhook receivers listen on 127.0.0.1 (CONTRACT §2: the test suites admit their local receivers);
# the SSRF tests (tests/security/test_webhook_ssrf.py) and the refusal cases clear it where they need to.
os.environ.setdefault("STABLEPAY_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1")
