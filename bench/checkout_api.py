"""P4, checkout API: `POST /api/v1/payment-requests/` on gunicorn + PostgreSQL, 16 clients, 20,000 requests.

Set-up: a fresh PostgreSQL database `bench_p4` (the machine's server, or a throwaway cluster via
tests.support.services.postgres_url), migrated, then `stablepay_setup` with one chain, two tokens, one
merchant (a real account xpub) and the FX table. No chain node is needed: creating a request never
talks to the chain.

Server: gunicorn on 127.0.0.1 with the production settings (DEBUG off, persistent DB connections);
only the URL conf differs (bench.p4_settings mounts the floor endpoint next to shop.urls). Worker
model: see GUNICORN below.

Client: bench.loadgen, a lean asyncio raw-socket HTTP/1.1 client in this process, closed loop, 16
connections, exactly 20,000 requests per endpoint after a warm-up. Every body is unique (its own
order_reference and Idempotency-Key); they alternate HKD and MOP prices (MOP goes through the FX table).
The machine has 2 cores and the client, gunicorn and PostgreSQL share them: the client's CPU time is
reported in the notes.

Baseline, the framework floor: a minimal DRF APIView (bench/p4_urls.py) on the same server, same
settings and middleware, same client and concurrency: it parses the JSON body and answers 201 with a
small JSON, no auth, no database. Ratio = our throughput / the floor's.

Correctness, checked in SQL after the run: rows created == number of 201 answers; no derivation index
used twice; no deposit address used twice; the merchant's next index == rows (nothing skipped or
reused); every pay_to re-derived independently from the xpub with bip-utils.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench import loadgen

REPO_ROOT = Path(__file__).resolve().parents[1]
TMP = REPO_ROOT / "bench/results/tmp"
DB_NAME = "bench_p4"
REQUESTS = int(os.environ.get("P4_REQUESTS", "20000"))  # override only to try things quickly
CONCURRENCY = 16
WARMUP = 1_000
TARGET_P50_MS = 15.0
TARGET_P99_MS = 60.0
TARGET_RPS = 300.0
TARGET_RATIO = 0.5
# 2 cores: sync workers, one request at a time per process (no GIL sharing), 2 x cores + 1 of them so
# a worker waiting on PostgreSQL leaves the CPU to another. Measured alternatives are in the notes.
GUNICORN = os.environ.get("P4_GUNICORN", "--worker-class sync --workers 5").split()
MNEMONIC = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
API_KEY = "bench-p4-key-" + "0123456789abcdef" * 2
TOKEN_ADDRESS = "0x" + "4b" * 20


def _account_xpub() -> str:
    from bip_utils import Bip32Secp256k1, Bip39SeedGenerator

    seed = Bip39SeedGenerator(MNEMONIC).Generate()
    return str(Bip32Secp256k1.FromSeed(seed).DerivePath("m/44'/60'/0'").PublicKey().ToExtended())


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _fresh_database(server_url: str) -> str:
    import psycopg

    with psycopg.connect(_with_db(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    return _with_db(server_url, DB_NAME)


def _drop_database(server_url: str) -> None:
    import psycopg

    with psycopg.connect(_with_db(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


def _server_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DEBUG", "DJANGO_SETTINGS_MODULE")}
    env.update(
        DATABASE_URL=database_url,
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(REPO_ROOT),
        DJANGO_SETTINGS_MODULE="bench.p4_settings",
    )
    return env


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, check=True, capture_output=True)


def _setup_document(xpub: str) -> dict[str, Any]:
    return {
        "chains": [
            {
                "chain_id": 31337,
                "name": "Bench",
                "rpc_urls": ["http://127.0.0.1:9"],  # nothing listens: creating a request never asks the chain
                "confirmations": 3,
                "block_time_seconds": 1,
                "explorer_tx_url": None,
            }
        ],
        "tokens": [{"chain_id": 31337, "address": TOKEN_ADDRESS, "symbol": "HKDX", "decimals": 6, "currency": "HKD"}],
        "merchants": [
            {
                "slug": "bench",
                "name": "Bench HK",
                "xpub": xpub,
                "api_key": API_KEY,
                "payment_tolerance_percent": "0.5",
                "expiry_minutes": 15,
                "webhook_url": None,
                "webhook_secret": None,
            }
        ],
        "fx": {"HKD/MOP": "1.03", "USD/HKD": "7.80"},
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((loadgen.HOST, 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def _gunicorn(env: dict[str, str], args: list[str]) -> Iterator[int]:
    port = _free_port()
    log = (TMP / "p4-gunicorn.log").open("w")
    cmd = [
        str(Path(sys.executable).with_name("gunicorn")),
        "shop.wsgi:application",
        "--bind",
        f"{loadgen.HOST}:{port}",
        "--backlog",
        "128",
        *args,
    ]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: see {log.name}")
            with contextlib.suppress(OSError), socket.create_connection((loadgen.HOST, port), 0.5):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start within 30 s")
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _create_request(port: int, prefix: str) -> Any:
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}

    def make(i: int) -> bytes:
        body = {
            "order_reference": f"{prefix}-{i}",
            "amount": f"{100 + i % 900}.{i % 100:02d}",
            "currency": "HKD" if i % 2 == 0 else "MOP",
            "chain_id": 31337,
            "token": "HKDX",
        }
        raw = json.dumps(body, separators=(",", ":")).encode()
        return loadgen.build_request(
            "POST", "/api/v1/payment-requests/", port, {**headers, "Idempotency-Key": f"{prefix}-{i}"}, raw
        )

    return make


def _floor_request(port: int, prefix: str) -> Any:
    headers = {"Content-Type": "application/json"}

    def make(i: int) -> bytes:
        body = {"order_reference": f"{prefix}-{i}", "amount": "100.00", "currency": "HKD", "chain_id": 31337}
        raw = json.dumps(body, separators=(",", ":")).encode()
        return loadgen.build_request("POST", "/bench/floor/", port, headers, raw)

    return make


def _verify(database_url: str, xpub: str) -> dict[str, Any]:
    import psycopg
    from bip_utils import Bip32Secp256k1, EthAddrEncoder

    with psycopg.connect(database_url) as conn:
        rows, indexes, addresses = conn.execute(
            "SELECT count(*), count(DISTINCT derivation_index), count(DISTINCT lower(pay_to))"
            " FROM stablepay_paymentrequest"
        ).fetchone()  # type: ignore[misc]
        next_index = conn.execute("SELECT next_address_index FROM stablepay_merchant WHERE slug = 'bench'").fetchone()
        pairs = conn.execute("SELECT derivation_index, pay_to FROM stablepay_paymentrequest").fetchall()
        events = conn.execute("SELECT count(*) FROM stablepay_event").fetchone()
    external = Bip32Secp256k1.FromExtendedKey(xpub).ChildKey(0)
    wrong = sum(
        1
        for index, pay_to in pairs
        if EthAddrEncoder.EncodeKey(external.ChildKey(index).PublicKey().KeyObject()) != pay_to
    )
    return {
        "rows": rows,
        "reused_indexes": rows - indexes,
        "reused_addresses": rows - addresses,
        "next_address_index": next_index[0] if next_index else None,
        "wrong_addresses": wrong,
        "events": events[0] if events else None,
    }


def bench() -> dict[str, Any]:
    t_start = time.monotonic()
    TMP.mkdir(parents=True, exist_ok=True)
    from tests.support.services import postgres_url

    server_url = postgres_url()
    database_url = _fresh_database(server_url)
    try:
        env = _server_env(database_url)
        xpub = _account_xpub()
        setup_path = TMP / "p4-setup.json"
        setup_path.write_text(json.dumps(_setup_document(xpub)))
        _manage(env, "migrate", "--verbosity", "0")
        _manage(env, "stablepay_setup", str(setup_path))
        with _gunicorn(env, GUNICORN) as port:
            loadgen.run(
                port=port,
                total=WARMUP,
                concurrency=CONCURRENCY,
                make_request=_floor_request(port, "w"),
                expected_status=201,
            )
            warm_ours = loadgen.run(
                port=port,
                total=WARMUP,
                concurrency=CONCURRENCY,
                make_request=_create_request(port, "w"),
                expected_status=201,
            )
            floor = loadgen.run(
                port=port,
                total=REQUESTS,
                concurrency=CONCURRENCY,
                make_request=_floor_request(port, "f"),
                expected_status=201,
            )
            ours = loadgen.run(
                port=port,
                total=REQUESTS,
                concurrency=CONCURRENCY,
                make_request=_create_request(port, "p4"),
                expected_status=201,
            )
        checks = _verify(database_url, xpub)
    finally:
        _drop_database(server_url)
    o, f = ours.summary(201), floor.summary(201)
    created_201 = ours.statuses[201] + warm_ours.statuses[201]
    ratio = ours.rps / floor.rps if floor.rps else 0.0
    ok_rows = checks["rows"] == created_201 == checks["next_address_index"]
    met = (
        o["p50_ms"] <= TARGET_P50_MS
        and o["p99_ms"] <= TARGET_P99_MS
        and o["rps"] >= TARGET_RPS
        and o["errors"] == 0
        and warm_ours.errors(201) == 0
        and checks["reused_indexes"] == 0
        and checks["reused_addresses"] == 0
        and checks["wrong_addresses"] == 0
        and ok_rows
        and ratio >= TARGET_RATIO
    )
    notes = (
        f"gunicorn {' '.join(GUNICORN)} (2 cores); client: asyncio raw sockets, closed loop, "
        f"{CONCURRENCY} connections, {WARMUP:,} warm-up requests per endpoint first; "
        f"client CPU {o['client_cpu_s']} s of {o['seconds']} s (ours), {f['client_cpu_s']} s of {f['seconds']} s "
        f"(floor), sharing the 2 cores with gunicorn and PostgreSQL; ours p90 {o['p90_ms']} ms, max {o['max_ms']} ms; "
        f"floor p90 {f['p90_ms']} ms; SQL after the run: {checks['rows']:,} rows for {created_201:,} 201 answers "
        f"(warm-up included), next index {checks['next_address_index']:,}, reused indexes "
        f"{checks['reused_indexes']}, reused addresses {checks['reused_addresses']}, pay_to not matching the xpub "
        f"{checks['wrong_addresses']}; statuses ours {o['statuses']} {o['failures'] or ''} floor {f['statuses']} "
        f"{f['failures'] or ''}"
    )
    if ours.samples:
        notes += f"; first non-201 body: {ours.samples[0][:200]!r}"
    return {
        "id": "P4",
        "what": "Checkout API: POST /api/v1/payment-requests/",
        "workload": (
            f"gunicorn + PostgreSQL on 127.0.0.1, {CONCURRENCY} concurrent clients, {REQUESTS:,} requests, "
            "unique order_reference + Idempotency-Key, HKD and MOP prices"
        ),
        "figure": (
            f"p50 {o['p50_ms']} ms, p99 {o['p99_ms']} ms, {o['rps']:,} req/s, {o['errors']} errors, "
            f"{checks['reused_indexes']} reused derivation indexes"
        ),
        "baseline": (
            f"minimal DRF endpoint (JSON in, 201 out, no auth/DB), same server and client: p50 {f['p50_ms']} ms, "
            f"p99 {f['p99_ms']} ms, {f['rps']:,} req/s, {f['errors']} errors"
        ),
        "ratio": f"{ratio:.2f} of the floor's throughput",
        "target": (
            f"p50 <= {TARGET_P50_MS:g} ms, p99 <= {TARGET_P99_MS:g} ms, >= {TARGET_RPS:g} req/s, 0 errors, "
            f"0 reused indexes; ratio >= {TARGET_RATIO}"
        ),
        "met": met,
        "notes": notes,
        "seconds": round(time.monotonic() - t_start, 1),
        "detail": {"ours": o, "floor": f, "checks": checks, "gunicorn": GUNICORN},
    }


if __name__ == "__main__":
    print(json.dumps(bench(), indent=2))
