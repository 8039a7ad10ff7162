"""Settings for the host project, read from the environment (CONTRACT §2).

DATABASE_URL defaults to SQLite; REDIS_URL switches on Celery and the Redis cache (unset: embedded
mode, the watcher runs as a plain process). Production sets SECRET_KEY, DEBUG=false, ALLOWED_HOSTS
and HTTPS=true.
"""

import secrets
from datetime import timedelta
from pathlib import Path

import environ

from shop.login_settings import webauthn_relying_party

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)


def _local_secret_key() -> str:
    """A per-checkout key for development, kept out of git; production sets SECRET_KEY."""
    path = BASE_DIR / ".secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", default="") or _local_secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # WhiteNoise serves /static/ under runserver too (DEBUG=true), as it does under gunicorn.
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "stablepay",
    "shop",
    # Logins (issue 16): lockout after failed passwords, and second factors (see "Logins" below).
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp_webauthn",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files, right after the security headers (so assets carry nosniff) and before anything that
    # would touch the session or the database; see STORAGES below.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Pages and JSON compressed when the browser accepts gzip (static files come pre-compressed from
    # WhiteNoise, above). BREACH: Django pads compressed responses with random bytes and masks the CSRF
    # token anew on every response, which makes reading a secret from response lengths impractical.
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): has this session passed a second factor (django-otp)?
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Signed in but not past the second factor: every page but the public ones goes to verify or enrol.
    "stablepay.accounts.second_factor.SecondFactorMiddleware",
    # Last, as django-axes requires: turns a locked-out login attempt into the lockout page (429).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "shop.context_processors.storefront",
            ],
        },
    },
]

DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded mode runs the web server and the watcher side by side: wait for the write lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"

# --- Logins (issue 16): lockout, and second factors for staff -------------------------------------
# django-axes counts failed passwords at /accounts/login/ and /admin/login/ (every authenticate() with a
# request), separately per user name and per client address (stablepay/accounts/lockout.py):
# - STABLEPAY_LOGIN_FAILURES_PER_USER (default 5) wrong passwords for one user name, from anywhere, lock that
#   name. An attacker can thus keep a user locked out (the usual price of a per-user lockout); they cannot
#   guess more than 5 passwords per cool-off for it, from any number of addresses.
# - STABLEPAY_LOGIN_FAILURES_PER_IP (default 50) failures from one client address, across all names, lock the
#   address (password spraying: one password tried on many names). Not 5: many Hong Kong users share one
#   carrier-NAT or office address, and one user's typos must not lock the others out. Each name stops at 5,
#   so 50 is ten people locked out behind one address in one cool-off, far above honest sign-ins to a
#   dashboard used by staff and merchants (shoppers never sign in), and far below what spraying needs.
# - A lockout lasts STABLEPAY_LOGIN_COOLOFF_MINUTES (default 15) after the last failure: failing again while
#   locked out restarts it. The right password during a lockout is refused like a wrong one.
# - A successful login clears that user name's failures (only its own: signing in to one's own account does
#   not clear the failures an address ran up against others).
# The client address is the one the rate limits use (STABLEPAY_TRUSTED_PROXIES, stablepay/ratelimit.py).
# An operator unlocks early with `manage.py axes_reset_username NAME` or in the admin (Axes > Access attempts).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out attempt before any password check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_HANDLER = "stablepay.accounts.lockout.LoginLockoutHandler"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own, not combined
AXES_FAILURE_LIMIT = env.int("STABLEPAY_LOGIN_FAILURES_PER_USER", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("STABLEPAY_LOGIN_COOLOFF_MINUTES", default=15.0))
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True
AXES_CLIENT_IP_CALLABLE = "stablepay.accounts.lockout.client_ip"
AXES_LOCKOUT_CALLABLE = "stablepay.accounts.lockout.lockout_response"  # registration/locked_out.html, 429
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False  # no banner on every start-up (management commands' output stays as it was)
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "password"]
# Second factors (django-otp): TOTP apps, passkeys (django-otp-webauthn) and one-time backup codes. Required
# for staff, ops users and anyone who can change where money goes; optional for merchant users. Who must,
# and which pages wait for it: stablepay/accounts/second_factor.py. Pages: /accounts/two-factor/ (verify) and
# /accounts/two-factor/setup/ (enrol).
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="stablepay")
# Wrong codes: each device waits 1, 2, 4, 8 ... seconds after each successive failure before it checks another
# code (django-otp's throttling, on for both code kinds); a right code resets it.
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1
# The admin lists devices (an administrator deletes those of a user who lost them) but never shows a TOTP key,
# its QR or a backup code: with them, one admin could pass another user's second factor.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# Passkeys: a second factor only, never a way in without the password (which axes guards).
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False
OTP_WEBAUTHN_RP_NAME = env.str("OTP_WEBAUTHN_RP_NAME", default="stablepay")
# The relying party is the site's host name; a passkey works only on it and its subdomains, and browsers
# refuse an IP address, so the demo (served on 127.0.0.1) offers passkeys at http://localhost:PORT/.
# Production: STABLEPAY_BASE_URL (https) or the first ALLOWED_HOSTS name with HTTPS=true, unless set.
OTP_WEBAUTHN_RP_ID, OTP_WEBAUTHN_ALLOWED_ORIGINS = webauthn_relying_party(
    base_url=env.str("STABLEPAY_BASE_URL", default="http://127.0.0.1:8000"),
    https=env.bool("HTTPS", default=False),
    allowed_hosts=ALLOWED_HOSTS,
    rp_id=env.str("OTP_WEBAUTHN_RP_ID", default=""),
    origins=env.list("OTP_WEBAUTHN_ALLOWED_ORIGINS", default=[]),
)

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hant", "繁體中文")]
LOCALE_PATHS = [BASE_DIR / "shop" / "locale"]  # the store's own; stablepay brings its own (stablepay/locale)
TIME_ZONE = "Asia/Hong_Kong"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default="") or BASE_DIR / "staticfiles")  # collectstatic writes here
# Static files as production serves them (issue 15): `collectstatic` copies every file under a content-hashed
# name (site.3f2a9c1e.css), with gzip and Brotli variants beside it, and writes staticfiles.json, which
# {% static %} reads. WhiteNoise serves them from the web process: the variant the browser accepts, with
# `Cache-Control: max-age=315360000, public, immutable` on hashed names. With DEBUG=false, a page
# naming a file that collectstatic did not write fails loudly (ValueError) instead of linking a 404; with
# DEBUG=true (`make demo`) files are served unhashed from the apps' static folders and need no collectstatic.
# The test suite renders pages without collectstatic and uses plain storage (tests/conftest.py); the tests
# that serve pages from gunicorn with the production settings collect first (tests/security/conftest.py),
# and tests/security/test_production_stack.py runs this set-up exactly as the README's Production says.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# The unhashed copies stay too (served with a 60-second cache): the admin's scripts build some icon URLs
# without {% static %}.

# --- Security headers, cookies and the Content Security Policy ------------------------------------
# HTTPS deployments (behind a TLS-terminating proxy that sets X-Forwarded-Proto) set HTTPS=true; then
# `manage.py check --deploy` is clean (tests/security/test_deploy_settings.py runs it).
HTTPS = env.bool("HTTPS", default=False)
SECURE_SSL_REDIRECT = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0  # one year
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
# Preloading is a promise for the whole registrable domain that takes months to undo: the operator
# opts in (HSTS_PRELOAD=true) once every subdomain serves HTTPS. Until then check --deploy's reminder
# about it (security.W021) is silenced on purpose.
SECURE_HSTS_PRELOAD = HTTPS and env.bool("HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Cookies: Secure over HTTPS; HttpOnly wherever no script reads them (the CSRF token is read from the
# form, never from the cookie); SameSite=Lax so that links from e-mails and wallets still arrive
# signed in, while cross-site POSTs carry no cookie.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = LANGUAGE_COOKIE_SECURE = HTTPS
SESSION_COOKIE_HTTPONLY = CSRF_COOKIE_HTTPONLY = LANGUAGE_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = LANGUAGE_COOKIE_SAMESITE = "Lax"
# Content Security Policy (django-csp 4): on every page. Scripts and styles only from our own static
# files (no inline code, no eval); the JSON data blocks (<script type="application/json">) are data,
# not script, and CSP does not block them. The payment page's live status polls the same origin.
INSTALLED_APPS.append("csp")
# After WhiteNoise: static files are not documents and need no policy.
MIDDLEWARE.insert(MIDDLEWARE.index("whitenoise.middleware.WhiteNoiseMiddleware") + 1, "csp.middleware.CSPMiddleware")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],  # the QR is inline SVG markup and the icons are files: no data: URLs needed
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        **({"upgrade-insecure-requests": True} if HTTPS else {}),
    },
}

# Celery (only used when REDIS_URL is set).
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
# Beat: stablepay's tick (every STABLEPAY_SCAN_INTERVAL seconds) is added by shop/celery.py from stablepay's
# schedule; entries this host schedules itself would go in CELERY_BEAT_SCHEDULE.

# stablepay: every setting, its default and its environment variable are in stablepay/conf.py; a deployment
# sets the STABLEPAY_* environment variables README lists. This host overrides only these:
STABLEPAY = {
    # The store's pages that need no login, open to a session that has not passed its second factor yet
    # (every other page, /ops/, /merchant/, /admin/ and the account pages included, sends such a session to
    # verify or enrol; the sign-in, sign-out, second-factor and passkey pages, static files and /i18n/ are
    # always open).
    "SECOND_FACTOR_OPEN_PATHS": ["/store/", "/orders/", "/pay/", "/api/", "/healthz"],
    # Rate-limit counters in this host's Redis when it has one (else in the database).
    "RATE_LIMIT_REDIS_URL": env.str("STABLEPAY_RATE_LIMIT_REDIS_URL", default="") or REDIS_URL,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"web3": {"level": "WARNING"}, "urllib3": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# --- Email (issue 16 part 3: changes to where money goes are emailed to the merchant's users) ---------
# EMAIL_BACKEND from the environment; by default the console backend (prints) in DEBUG and the demo, SMTP
# otherwise (EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS). Tests use
# Django's in-memory outbox.
_CONSOLE_EMAIL = "django.core.mail.backends.console.EmailBackend"
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default=_CONSOLE_EMAIL
    if DEBUG or env.bool("STABLEPAY_DEMO", default=False)
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="stablepay <noreply@localhost>")
# --- end of the email block ---------------------------------------------------------------------------
