"""The production stack as the README's Production section runs it, on loopback: the README's environment
(DEBUG=false, SECRET_KEY, STABLEPAY_SECRETS_KEY, ALLOWED_HOSTS, HTTPS=true, STABLEPAY_BASE_URL, PostgreSQL
and Redis), `manage.py migrate`, `manage.py collectstatic --noinput`, then `gunicorn shop.wsgi --workers 4`.

Two stand-ins, and nothing else differs:

- the TLS proxy in front of gunicorn (the README's HTTPS=true) is gunicorn's own TLS, with a self-signed
  certificate for 127.0.0.1 made here (`--certfile`/`--keyfile`): the browser and the app see HTTPS as
  they would behind the proxy (secure cookies, HSTS, `upgrade-insecure-requests`);
- STATIC_ROOT points at a folder of the caller's instead of the checkout's `staticfiles/`, and gunicorn
  runs with `--no-control-socket` (gunicorn 27's control socket is one path per user), so that stacks
  side by side on one machine share neither.

Used by tests/security/test_production_stack.py and the page-weight benchmark (bench/page_weight.py).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import ipaddress
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import requests
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.services import _die_with_parent, free_port, stop_process

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
# The README's command line, bound to loopback on a free port instead of 0.0.0.0:8000.
GUNICORN_ARGS = ["shop.wsgi", "--workers", "4"]


def gunicorn_command() -> list[str]:
    """The `gunicorn` script of this interpreter's environment (the venv's), as the README calls it."""
    script = Path(sys.executable).with_name("gunicorn")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gunicorn"]


def self_signed_certificate(folder: Path) -> tuple[Path, Path, str]:
    """(certificate, key, SPKI pin) for 127.0.0.1: the pin is what Chromium's
    --ignore-certificate-errors-spki-list takes, so the browser trusts this certificate and no other."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert_path, key_path, base64.b64encode(hashlib.sha256(spki).digest()).decode()


def collectstatic(static_root: Path) -> float:
    """The README's `python manage.py collectstatic --noinput` into `static_root` (it reads no database); seconds.
    What it writes depends only on the code, so a test session collects once (tests/security/conftest.py)."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    env.update(DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50), STATIC_ROOT=str(static_root), LOG_LEVEL="WARNING")
    started = time.monotonic()
    command = [sys.executable, "manage.py", "collectstatic", "--noinput"]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"collectstatic failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return time.monotonic() - started


class ProductionStack:
    """`with ProductionStack(database_url=..., redis_url=..., workdir=...) as stack:` runs the README's steps
    (migrate, collectstatic, gunicorn) and serves at `stack.url` (https://127.0.0.1:PORT) until the block ends.
    `run_manage("stablepay_setup", path)` runs another management command in the same environment."""

    def __init__(
        self,
        *,
        database_url: str,
        redis_url: str,
        workdir: Path,
        extra_env: dict[str, str] | None = None,
        migrate: bool = True,
        static_root: Path | None = None,
        niceness: int = 0,
    ) -> None:
        """`static_root`: where collectstatic already wrote (then it is not run again); by default
        start() collects into `workdir`/staticfiles. `niceness`: gunicorn's scheduling priority change
        (negative: ahead of other work on the machine; needs root, else ignored)."""
        self.niceness = niceness
        self.workdir = workdir
        self.collect = static_root is None
        self.static_root = static_root or workdir / "staticfiles"
        self.port = free_port()
        self.url = f"https://{HOST}:{self.port}"
        self.cert, self.key, self.spki_pin = self_signed_certificate(workdir / "tls")
        self.log = workdir / "gunicorn.log"
        self.migrate = migrate
        self.collectstatic_seconds = 0.0
        self.proc: subprocess.Popen[bytes] | None = None
        # Only what the README exports, plus STATIC_ROOT; nothing inherited that would change the settings.
        inherited = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
        self.env = {
            **inherited,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "STABLEPAY_SECRETS_KEY": Fernet.generate_key().decode(),
            "DEBUG": "false",
            "ALLOWED_HOSTS": HOST,
            "HTTPS": "true",
            "STABLEPAY_BASE_URL": self.url,
            "STATIC_ROOT": str(self.static_root),
            "LOG_LEVEL": "WARNING",
            **(extra_env or {}),
        }

    def run_manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=self.env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        return done.stdout

    def start(self) -> Self:
        if self.migrate:
            self.run_manage("migrate", "--noinput")
        if self.collect:
            started = time.monotonic()
            self.run_manage("collectstatic", "--noinput")
            self.collectstatic_seconds = time.monotonic() - started
        tls = ["--certfile", str(self.cert), "--keyfile", str(self.key)]
        with self.log.open("wb") as sink:
            self.proc = subprocess.Popen(
                [*gunicorn_command(), *GUNICORN_ARGS, "--bind", f"{HOST}:{self.port}", "--no-control-socket", *tls],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                preexec_fn=self._child_setup,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.session().get(f"{self.url}/healthz", timeout=10).status_code in (200, 503):
                    return self
            except requests.RequestException:  # not listening yet, or a worker still booting
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gunicorn did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def _child_setup(self) -> None:  # in gunicorn's process, before exec; its workers inherit the priority
        _die_with_parent()  # no gunicorn outlives an interrupted run
        if self.niceness:
            with contextlib.suppress(OSError):
                os.nice(self.niceness)

    def session(self) -> requests.Session:
        """A client that trusts this stack's certificate only."""
        client = requests.Session()
        client.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would replace `verify`; no proxies
        client.verify = str(self.cert)
        return client

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc, timeout_s=15)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
