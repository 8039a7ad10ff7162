"""A whole stablepay stack on loopback, for the fault suite and the load test.

A THROWAWAY PostgreSQL cluster and Redis server on free ports (so a test may stop and restart them
without touching the machine's 5432/6379), anvil, a FaultProxy per RPC URL, a Celery worker and a
separate beat process (the worker alone can be `kill -9`ed), optionally the newHeads follower
(`stablepay_scan --dispatch`), gunicorn serving the app, and a webhook receiver that checks every
`Stablepay-Signature` and records each delivery.

The processes run with DJANGO_SETTINGS_MODULE=tests.chaos.settings: shop's settings plus a probe app
that writes every status signal stablepay sends into a table, in the same transaction.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import psycopg
import redis
import requests

from stablepay.dev import chain as devchain
from tests.support.local_chain import MERCHANT_MNEMONIC, account_xpub
from tests.support.rpc_proxy import FaultProxy
from tests.support.services import (
    REPO_ROOT,
    Anvil,
    ServiceError,
    _as_postgres,
    _die_with_parent,
    _postgres_bin_dir,
    free_port,
)

API_KEY = "chaos-test-key-0123456789abcdef0123456789"
WEBHOOK_SECRET = "whsec-chaos-" + "0123456789abcdef" * 2
CHAIN_ID = 31337
FUNDED = 10**15
SIGNAL_LOG_DDL = """
CREATE TABLE IF NOT EXISTS chaos_signal_log (
    id bigserial PRIMARY KEY,
    payment_request_id text NOT NULL,
    previous_status text NOT NULL,
    status text NOT NULL,
    exception text NOT NULL,
    via text NOT NULL,
    pid integer NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
)
"""


# PostgreSQL and Redis that the test owns ---------------------------------------------------------
class ThrowawayPostgres:
    """initdb + pg_ctl on a free port; `restart()` is a fast shutdown (backends killed) and a start."""

    def __init__(self) -> None:
        self.bin_dir, self.port = _postgres_bin_dir(), free_port()
        self.tmp = tempfile.mkdtemp(prefix="stablepay-chaos-pg-")
        self.data = os.path.join(self.tmp, "data")
        self.log = os.path.join(self.tmp, "postgres.log")
        if os.geteuid() == 0:
            shutil.chown(self.tmp, user="postgres", group="postgres")
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "--no-sync")
        self.start()
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE chaos")

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(_as_postgres([str(self.bin_dir / tool), *args]), capture_output=True, text=True)
        if done.returncode != 0:
            raise ServiceError(f"{tool} {args}: {done.stdout}{done.stderr}")

    def url(self, name: str = "chaos") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.tmp} -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", self.data, "-o", opts, "-l", self.log, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def restart(self, down_s: float = 1.0) -> None:
        self.stop("fast")
        time.sleep(down_s)
        self.start()

    def destroy(self) -> None:
        with contextlib.suppress(ServiceError):
            self.stop("immediate")
        shutil.rmtree(self.tmp, ignore_errors=True)


class ThrowawayRedis:
    """redis-server on a free port, no persistence: a restart loses every queued task and lock."""

    def __init__(self) -> None:
        self.port = free_port()
        self.tmp = tempfile.mkdtemp(prefix="stablepay-chaos-redis-")
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def start(self) -> None:
        args = ["--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.tmp, "--save", ""]
        subprocess.run(
            ["redis-server", *args, "--appendonly", "no", "--daemonize", "yes"],
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.RedisError):
                if self.client().ping():
                    return
            if time.monotonic() > deadline:
                raise ServiceError(f"redis-server on {self.port} did not answer")
            time.sleep(0.05)

    def stop(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"], capture_output=True, check=False)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self.client().ping()
            except redis.RedisError:
                return
            time.sleep(0.05)

    def restart(self, down_s: float = 1.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


# The merchant's webhook endpoint -----------------------------------------------------------------
@dataclass
class Delivery:
    event_id: str
    type: str
    request_id: str
    status: str
    signature_ok: bool
    answered: int


class WebhookReceiver:
    """Checks `Stablepay-Signature: t=..,v1=..` (HMAC-SHA256 of "<t>.<raw body>", CONTRACT §5) on every
    POST and records it. `fail_first` answers 500 to the first try of that many events (retries follow)."""

    def __init__(self, secret: str, *, fail_first: int = 0) -> None:
        self.secret = secret
        self.deliveries: list[Delivery] = []
        self.fail_first = fail_first
        self._failed: set[str] = set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver.receive(body, self.headers.get("Stablepay-Signature", ""))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/stablepay"
        threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True).start()

    def signature_ok(self, body: bytes, header: str, *, now: float) -> bool:
        """Checked here by hand, not with stablepay's own code. During a secret's rotation the header
        carries one v1 per valid secret: any one that matches ours will do."""
        try:
            parts = [item.split("=", 1) for item in header.split(",")]
            [timestamp] = [int(value) for key, value in parts if key == "t"]
        except ValueError:
            return False
        if abs(now - timestamp) > 300:
            return False
        expected = hmac.new(self.secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        return any(hmac.compare_digest(expected, value) for key, value in parts if key == "v1")

    def receive(self, body: bytes, header: str) -> int:
        ok = self.signature_ok(body, header, now=time.time())
        try:
            event = json.loads(body)
            event_id, kind, data = str(event["id"]), str(event["type"]), event["data"]
            request_id, status = str(data["id"]), str(data["status"])
        except (ValueError, KeyError, TypeError):
            event_id, kind, request_id, status = "", "malformed", "", ""
        with self._lock:
            answer = 200 if ok else 400
            if ok and len(self._failed) < self.fail_first and event_id not in self._failed:
                self._failed.add(event_id)
                answer = 500
            self.deliveries.append(Delivery(event_id, kind, request_id, status, ok, answer))
        return answer

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# Child processes ----------------------------------------------------------------------------------
def _niced(niceness: int) -> list[str]:
    """The command prefix that runs a child at lower priority (none for 0)."""
    return ["nice", "-n", str(niceness)] if niceness else []


class Process:
    """A child in its own process group (kill -9 takes its children too), logging to a file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            args,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Dies with the test process, however hard that one dies (only from the main thread).
            preexec_fn=_die_with_parent if threading.current_thread() is threading.main_thread() else None,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_path.read_text(errors="replace"):
                return
            if not self.alive():
                raise ServiceError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            time.sleep(0.05)
        raise ServiceError(f"{self.name}: no {text!r} within {timeout} s:\n{self.tail()}")

    def kill9(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()

    def stop(self, timeout_s: float = 10) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=timeout_s)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers (prefork children, an orphaned beat)
        self.proc.wait(timeout=10)
        self._log.close()

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class StackConfig:
    block_time: int | None = None  # None: automine (a block per transaction); else a block every N s
    confirmations: int = 3
    rpc_proxies: int = 2  # FaultProxies in front of anvil, one rpc_url each; 0: anvil's URL directly
    follower: bool = False  # newHeads follower (`stablepay_scan --dispatch`) with the chain's ws_url
    worker_args: list[str] = field(
        default_factory=lambda: ["--pool=solo", "--without-mingle", "--without-gossip", "--without-heartbeat"]
    )
    # With scan_worker_args, chain scans go to a queue of their own, served by a second worker with
    # these arguments; the first worker serves the rest (webhooks, expiry sweep, beat's fan-out).
    scan_worker_args: list[str] | None = None
    gunicorn_args: list[str] = field(default_factory=lambda: ["--worker-class", "gthread", "--workers", "2"])
    scan_interval_s: float = 0.5
    # Niceness of the web tier (gunicorn and the general Celery worker): a deployment runs the chain
    # scanner on CPU of its own, which one shared machine can only approximate by priority.
    web_nice: int = 0
    rpc_timeout_s: float = 2.0
    anvil_accounts: int = 10
    payers: int = 9  # dev accounts 1..payers get tokens
    webhook_fail_first: int = 0
    expiry_minutes: int = 15


class Stack:
    """Start with `with Stack(config, log_dir) as stack:`; everything it started stops on exit."""

    def __init__(self, config: StackConfig, log_dir: Path) -> None:
        self.config, self.log_dir = config, log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.pg: ThrowawayPostgres | None = None
        self.redis: ThrowawayRedis | None = None
        self.anvil: Anvil | None = None
        self.proxies: list[FaultProxy] = []
        self.receiver: WebhookReceiver | None = None
        self.worker: Process | None = None
        self.beat: Process | None = None
        self.follower: Process | None = None
        self.scanner: Process | None = None
        self.gunicorn: Process | None = None
        self.web_url = ""
        self.tokens: dict[str, str] = {}
        self.fake_hkdx = ""
        self.secret_key = "chaos-" + secrets.token_urlsafe(40)
        self.workers_started = 0
        self.api_retries: list[str] = []  # why a create was tried again (a 5xx or a dropped connection)
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {API_KEY}"

    # lifecycle ------------------------------------------------------------------------------------
    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        c = self.config
        self.pg, self.redis = ThrowawayPostgres(), ThrowawayRedis()
        self.anvil = Anvil("--accounts", str(c.anvil_accounts)).start()
        self._deploy_tokens()  # automine while setting up: a block per transaction, no waiting
        if c.block_time:  # then as `anvil --block-time N`: a block every N s, whatever arrives
            self.anvil.rpc("evm_setIntervalMining", [c.block_time])
            self.anvil.set_automine(False)
        self.proxies = [FaultProxy(self.anvil.url) for _ in range(c.rpc_proxies)]
        self.receiver = WebhookReceiver(WEBHOOK_SECRET, fail_first=c.webhook_fail_first)
        env = self.env()
        self.manage("migrate", "--noinput")
        with psycopg.connect(self.pg.url(), autocommit=True) as conn:
            conn.execute(SIGNAL_LOG_DDL)
        setup = self.log_dir / "setup.json"
        setup.write_text(json.dumps(self.setup_document()))
        self.manage("stablepay_setup", str(setup))
        self.beat = Process(
            "beat",
            [sys.executable, "-m", "celery", "-A", "shop", "beat", "-l", "INFO", "-s", str(self.log_dir / "beat-db")],
            env,
            self.log_dir,
        )
        self.start_worker()
        if c.scan_worker_args is not None:
            args = [sys.executable, "-m", "celery", "-A", "shop", "worker", "-Q", "scans", "-n", "scanner@%h"]
            self.scanner = Process("scanner", [*args, "-l", "INFO", *c.scan_worker_args], env, self.log_dir)
            self.scanner.wait_for(" ready.", 60)
        if c.follower:
            self.follower = Process(
                "follower", [sys.executable, "manage.py", "stablepay_scan", "--dispatch"], env, self.log_dir
            )
            self.follower.wait_for("stablepay watcher", 30)
        port = free_port()
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        self.gunicorn = Process(
            "gunicorn",
            [
                *_niced(c.web_nice),
                gunicorn,
                "shop.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--no-control-socket",
                *c.gunicorn_args,
            ],
            env,
            self.log_dir,
        )
        self.web_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.web_url + "/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline or not self.gunicorn.alive():
                raise ServiceError(f"gunicorn did not answer:\n{self.gunicorn.tail()}")
            time.sleep(0.1)

    def close(self) -> None:
        for proc in (self.gunicorn, self.follower, self.worker, self.scanner, self.beat):
            if proc is not None and proc.alive():
                proc.stop()
        for proxy in self.proxies:
            with contextlib.suppress(Exception):
                proxy.close()
        if self.receiver is not None:
            self.receiver.close()
        if self.anvil is not None:
            self.anvil.stop()
        if self.redis is not None:
            self.redis.destroy()
        if self.pg is not None:
            self.pg.destroy()

    def env(self) -> dict[str, str]:
        assert self.pg is not None and self.redis is not None
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "DEBUG", "PYTEST_CURRENT_TEST")
        }
        env.update(
            DATABASE_URL=self.pg.url(),
            REDIS_URL=self.redis.url,
            DJANGO_SETTINGS_MODULE="tests.chaos.settings",
            PYTHONPATH=str(REPO_ROOT),
            PYTHONUNBUFFERED="1",
            DEBUG="false",
            SECRET_KEY=self.secret_key,  # one for every process: webhook secrets are encrypted with it
            LOG_LEVEL="INFO",
            STABLEPAY_SCAN_INTERVAL=str(self.config.scan_interval_s),
            STABLEPAY_RPC_TIMEOUT=str(self.config.rpc_timeout_s),
            STABLEPAY_BASE_URL="http://127.0.0.1",
            STABLEPAY_WEBHOOK_ALLOWED_HOSTS="127.0.0.1",  # the webhook receiver below listens there
            # 30 shoppers from 127.0.0.1 must not be throttled (the rate limits are tested elsewhere).
            STABLEPAY_RATE_LIMIT_PER_MERCHANT="100000/60",
            STABLEPAY_RATE_LIMIT_PER_IP="100000/60",
            STABLEPAY_RATE_LIMIT_PER_API_IP="100000/60",
        )
        if self.config.scan_worker_args is not None:
            env["CHAOS_SCAN_QUEUE"] = "scans"
        return env

    def manage(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO_ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise ServiceError(f"manage.py {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
        return done

    def _deploy_tokens(self) -> None:
        assert self.anvil is not None
        w3 = self.anvil.w3
        self.tokens = {
            "HKDX": devchain.deploy_token(w3, name="HKD Stablecoin", symbol="HKDX", decimals=6),
            "USDC": devchain.deploy_token(w3, name="USD Coin", symbol="USDC", decimals=6),
        }
        self.fake_hkdx = devchain.deploy_token(w3, name="HKD Stablecoin", symbol="HKDX", decimals=6)
        for address in [*self.tokens.values(), self.fake_hkdx]:
            for payer in range(1, self.config.payers + 1):
                devchain.mint(w3, address, devchain.dev_account(payer).address, FUNDED)

    def rpc_urls(self) -> list[str]:
        assert self.anvil is not None
        return [p.url for p in self.proxies] or [self.anvil.url]

    def setup_document(self) -> dict[str, Any]:
        assert self.anvil is not None and self.receiver is not None
        chain: dict[str, Any] = {
            "chain_id": CHAIN_ID,
            "name": "Local",
            "rpc_urls": self.rpc_urls(),
            "confirmations": self.config.confirmations,
            "block_time_seconds": self.config.block_time or 1,
            "explorer_tx_url": None,
        }
        if self.config.follower:
            chain["ws_url"] = self.anvil.url.replace("http://", "ws://")
        return {
            "chains": [chain],
            "tokens": [
                {
                    "chain_id": CHAIN_ID,
                    "address": self.tokens["HKDX"],
                    "symbol": "HKDX",
                    "decimals": 6,
                    "currency": "HKD",
                },
                {
                    "chain_id": CHAIN_ID,
                    "address": self.tokens["USDC"],
                    "symbol": "USDC",
                    "decimals": 6,
                    "currency": "USD",
                },
            ],
            "merchants": [
                {
                    "slug": "acme",
                    "name": "Acme HK",
                    "xpub": account_xpub(MERCHANT_MNEMONIC),
                    "api_key": API_KEY,
                    "payment_tolerance_percent": "0.5",
                    "expiry_minutes": self.config.expiry_minutes,
                    "webhook_url": self.receiver.url,
                    "webhook_secret": WEBHOOK_SECRET,
                }
            ],
            "fx": {"HKD/MOP": "1.03", "USD/HKD": "7.80"},
        }

    # the worker ---------------------------------------------------------------------------------
    def start_worker(self) -> Process:
        self.workers_started += 1
        self.worker = Process(
            f"worker-{self.workers_started}",
            [
                *_niced(self.config.web_nice),
                *(sys.executable, "-m", "celery", "-A", "shop", "worker", "-l", "INFO"),
                *self.config.worker_args,
            ],
            self.env(),
            self.log_dir,
        )
        self.worker.wait_for(" ready.", 60)
        return self.worker

    def scan_lock_held(self) -> bool:
        assert self.redis is not None
        try:
            return any(True for _ in self.redis.client().scan_iter("stablepay:scan:*"))
        except redis.RedisError:
            return False

    def wait_for_a_pass(self, *, give_up_s: float) -> str:
        """Return as soon as a worker holds a chain's scan lock (it is inside a pass), or after give_up_s."""
        deadline = time.monotonic() + give_up_s
        while time.monotonic() < deadline:
            if self.scan_lock_held():
                return "inside-a-pass"
            time.sleep(0.002)
        return "no-pass-seen"

    def kill_worker_mid_scan(self, *, give_up_s: float = 10.0) -> str:
        """SIGKILL the worker while it holds a chain's scan lock (inside a pass), then start a new one."""
        assert self.worker is not None
        moment = self.wait_for_a_pass(give_up_s=give_up_s)
        self.worker.kill9()
        self.start_worker()
        return moment

    # reads ----------------------------------------------------------------------------------------
    def sql(self, query: str, params: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        assert self.pg is not None
        with psycopg.connect(self.pg.url(), autocommit=True, connect_timeout=5) as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    def healthz(self) -> dict[str, Any]:
        answer: dict[str, Any] = requests.get(self.web_url + "/healthz", timeout=5).json()
        return answer

    def create_request(self, body: dict[str, Any], *, idempotency_key: str, attempts: int = 20) -> dict[str, Any]:
        """POST /api/v1/payment-requests/ as a shop's backend does: retried with the same key on a 5xx or a
        dropped connection (a restart of a store may be under way), never on a 4xx."""
        last = ""
        for _ in range(attempts):
            try:
                response = self.http.post(
                    self.web_url + "/api/v1/payment-requests/",
                    json=body,
                    headers={"Idempotency-Key": idempotency_key},
                    timeout=15,
                )
            except requests.RequestException as exc:
                last = f"{exc.__class__.__name__}"
            else:
                if response.status_code == 201:
                    data: dict[str, Any] = response.json()
                    return data
                if response.status_code < 500:
                    raise AssertionError(f"create answered {response.status_code}: {response.text[:500]}")
                last = f"HTTP {response.status_code}"
            self.api_retries.append(last)
            time.sleep(0.5)
        raise AssertionError(f"create failed {attempts} times, last: {last}")

    def audit(self, to_block: int) -> tuple[int, dict[str, Any] | str]:
        done = self.manage(
            "stablepay_audit",
            "--chain-id",
            str(CHAIN_ID),
            "--from-block",
            "0",
            "--to-block",
            str(to_block),
            check=False,
        )
        try:
            return done.returncode, json.loads(done.stdout)
        except ValueError:
            return done.returncode, done.stdout + done.stderr

    def tails(self) -> str:
        parts = []
        for proc in (self.worker, self.scanner, self.beat, self.follower, self.gunicorn):
            if proc is not None:
                parts.append(f"----- {proc.name} -----\n{proc.tail()}")
        return "\n".join(parts)
