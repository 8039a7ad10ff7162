"""Real services for the test suite: a local anvil chain, PostgreSQL and Redis.

PostgreSQL/Redis: use the env URL, else the machine's service on its default port, else start a
throwaway instance in a temp dir (stopped at exit). Anvil: one process per `Anvil` instance.
"""

from __future__ import annotations

import atexit
import ctypes
import glob
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import requests
from web3 import Web3

REPO_ROOT = Path(__file__).resolve().parents[2]
ANVIL_BIN = REPO_ROOT / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
_LISTENING = re.compile(r"Listening on 127\.0\.0\.1:(\d+)")
_PR_SET_PDEATHSIG = 1


class ServiceError(RuntimeError):
    """A test service could not be started or answered with an error."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def stop_process(proc: subprocess.Popen[Any], *, timeout_s: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within timeout_s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _die_with_parent() -> None:  # runs in the child between fork and exec
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Anvil:
    """A private anvil process: `with Anvil("--block-time", "1") as chain: chain.w3...`."""

    def __init__(self, *extra_args: str, startup_timeout_s: int = 20) -> None:
        self.extra_args: tuple[str, ...] = extra_args
        self.startup_timeout_s = startup_timeout_s
        self.port: int | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._output: deque[str] = deque(maxlen=200)
        self._ready = threading.Event()
        self._ids = itertools.count(1)
        self._w3: Web3 | None = None

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> Self:
        if self._proc is not None:
            raise ServiceError("anvil already started")
        if not ANVIL_BIN.is_file():
            raise ServiceError(f"anvil binary not found at {ANVIL_BIN}: run `npm ci` in {REPO_ROOT}")
        # Kill anvil if this process dies hard; only from the main thread (PDEATHSIG follows the thread).
        in_main = threading.current_thread() is threading.main_thread()
        self._proc = subprocess.Popen(
            [str(ANVIL_BIN), "--host", "127.0.0.1", "--port", "0", *self.extra_args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=_die_with_parent if in_main else None,
        )
        atexit.register(self.stop)
        # Drain stdout for the whole lifetime: anvil logs every RPC call and would block on a full pipe.
        threading.Thread(target=self._drain, name=f"anvil-{self._proc.pid}", daemon=True).start()
        if not self._ready.wait(self.startup_timeout_s) or self.port is None:
            output = "\n".join(self._output)
            self.stop()
            raise ServiceError(f"anvil exited or gave no port within {self.startup_timeout_s}s:\n{output}")
        return self

    def _drain(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self._output.append(line.rstrip("\n"))
            if not self._ready.is_set() and (m := _LISTENING.search(line)):
                self.port = int(m.group(1))
                self._ready.set()
        self._ready.set()  # process exited: unblock start()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is None:
            return
        stop_process(proc, timeout_s=5)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def output(self) -> list[str]:
        """Last lines anvil printed (for debugging failures)."""
        return list(self._output)

    # access ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self.port is None:
            raise ServiceError("anvil is not running")
        return f"http://127.0.0.1:{self.port}"

    @property
    def w3(self) -> Web3:
        if self._w3 is None:
            self._w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 30}))
        return self._w3

    def rpc(self, method: str, params: Sequence[Any] = ()) -> Any:
        """Raw JSON-RPC call; returns `result` or raises ServiceError with the RPC error."""
        body: dict[str, Any] = {
            "jsonrpc": "2.0",
            "id": next(self._ids),
            "method": method,
            "params": list(params),
        }
        reply = requests.post(self.url, json=body, timeout=30).json()
        if "error" in reply:
            raise ServiceError(f"{method} failed: {reply['error']}")
        return reply.get("result")

    # chain control ---------------------------------------------------------------------------
    def mine(self, n: int = 1) -> None:
        self.rpc("anvil_mine", [hex(n)])

    def reorg(self, depth: int, txs: Sequence[tuple[str, int] | list[Any]] = ()) -> None:
        """Replace the last `depth` blocks (same height, new hashes), including `txs` =
        [(raw_signed_tx_hex, block_offset), ...] where offset 0 is the first replaced block."""
        self.rpc("anvil_reorg", [depth, [[raw, offset] for raw, offset in txs]])

    def snapshot(self) -> str:
        snap_id: str = self.rpc("evm_snapshot")
        return snap_id

    def revert(self, snapshot_id: str) -> bool:
        return bool(self.rpc("evm_revert", [snapshot_id]))

    def set_automine(self, enabled: bool) -> None:
        self.rpc("evm_setAutomine", [enabled])


# PostgreSQL ----------------------------------------------------------------------------------
LOCAL_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _postgres_bin_dir() -> Path:
    candidates = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not candidates:
        raise ServiceError("PostgreSQL is not installed and none is reachable: `apt-get install -y postgresql`")
    return candidates[-1]


def _start_throwaway_postgres() -> str:
    bin_dir, port = _postgres_bin_dir(), free_port()
    tmp = tempfile.mkdtemp(prefix="stablepay-pg-")
    data = os.path.join(tmp, "data")
    if os.geteuid() == 0:
        shutil.chown(tmp, user="postgres", group="postgres")
    subprocess.run(
        _as_postgres(
            [
                str(bin_dir / "initdb"),
                "-D",
                data,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ]
        ),
        check=True,
        capture_output=True,
    )
    pg_ctl = str(bin_dir / "pg_ctl")
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {tmp} -c fsync=off"
    log = os.path.join(tmp, "postgres.log")
    subprocess.run(
        _as_postgres([pg_ctl, "-D", data, "-o", opts, "-l", log, "-w", "start"]),
        check=True,
        capture_output=True,
    )

    def stop() -> None:
        subprocess.run(
            _as_postgres([pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(tmp, ignore_errors=True)

    atexit.register(stop)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


@lru_cache(maxsize=1)
def postgres_url() -> str:
    """DATABASE_URL if it is Postgres, else local :5432 if it answers, else a throwaway cluster."""
    env = os.environ.get("DATABASE_URL", "")
    if env.startswith("postgres"):
        return env
    import psycopg

    try:
        psycopg.connect(LOCAL_POSTGRES_URL, connect_timeout=2).close()
        return LOCAL_POSTGRES_URL
    except psycopg.OperationalError:
        return _start_throwaway_postgres()


# Redis ---------------------------------------------------------------------------------------
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_answers(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=2, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def _start_throwaway_redis() -> str:
    server = shutil.which("redis-server")
    if server is None:
        raise ServiceError("Redis is not installed and none is reachable: `apt-get install -y redis-server`")
    port, tmp = free_port(), tempfile.mkdtemp(prefix="stablepay-redis-")
    subprocess.run(
        [
            server,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            tmp,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "yes",
        ],
        check=True,
        capture_output=True,
    )

    def stop() -> None:
        subprocess.run(
            ["redis-cli", "-p", str(port), "shutdown", "nosave"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(tmp, ignore_errors=True)

    atexit.register(stop)
    deadline = time.monotonic() + 10
    while not _redis_answers(port):
        if time.monotonic() > deadline:
            stop()
            raise ServiceError(f"throwaway redis-server on port {port} did not answer PING")
        time.sleep(0.05)
    return f"redis://127.0.0.1:{port}/0"


@lru_cache(maxsize=1)
def redis_url() -> str:
    """REDIS_URL if set, else local :6379 if it answers PING, else a throwaway redis-server."""
    env = os.environ.get("REDIS_URL", "")
    if env:
        return env
    return LOCAL_REDIS_URL if _redis_answers(6379) else _start_throwaway_redis()
