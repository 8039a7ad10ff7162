"""The API over real HTTP: gunicorn (production settings, DEBUG off) on 127.0.0.1 in front of this test's
PostgreSQL database. A short schemathesis run against it, and the Idempotency-Key limits as a client
meets them: up to 255 characters the key is used; longer, Django answers 400 naming the header; a header
line longer than gunicorn's limit_request_field_size (8190 bytes) is refused by gunicorn itself (431)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from schemathesis import GenerationMode

from tests.support.fuzz import Targets, fuzz
from tests.support.local_chain import LocalChain, subprocess_database_url
from tests.support.services import _die_with_parent, free_port, stop_process

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
BODY = {"order_reference": "LIVE-1", "amount": "10.00", "currency": "HKD", "chain_id": 31337, "token": "HKDX"}


@pytest.fixture
def gunicorn(local_chain: LocalChain) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "DEBUG": "false",
        "SECRET_KEY": "live-server-test-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "shop.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_die_with_parent,  # no gunicorn outlives an interrupted run
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=10).status_code in (200, 503):
                    break
            except requests.RequestException:  # not listening yet, or busy starting
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        yield url
    finally:
        stop_process(proc, timeout_s=10)
        if proc.stderr is not None:
            proc.stderr.close()


def test_idempotency_key_limits_over_http(gunicorn: str, local_chain: LocalChain) -> None:
    headers = {"Authorization": f"Bearer {local_chain.api_keys['acme']}", "Content-Type": "application/json"}
    url = f"{gunicorn}/api/v1/payment-requests/"
    with requests.Session() as client:
        client.headers.update(headers)
        ok = client.post(url, data=json.dumps(BODY), headers={"Idempotency-Key": "k" * 255}, timeout=20)
        assert ok.status_code == 201, ok.text
        for length in (256, 8000):
            response = client.post(url, data=json.dumps(BODY), headers={"Idempotency-Key": "k" * length}, timeout=20)
            assert response.status_code == 400, (length, response.text[:200])
            assert response.headers["content-type"] == "application/json"
            assert "Idempotency-Key" in response.json()
        huge = client.post(url, data=json.dumps(BODY), headers={"Idempotency-Key": "k" * 10 * 1024}, timeout=20)
        assert huge.status_code == 431, huge.status_code  # gunicorn: Request Header Fields Too Large
        assert client.get(url, timeout=20).json()["count"] == 1  # only the 255-character one was made


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_schemathesis_over_http(gunicorn: str, local_chain: LocalChain, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{gunicorn}/api/v1/schema/?format=json")
    targets = Targets(request_ids=[])
    calls, findings = fuzz(schema, local_chain.api_keys["acme"], mode, targets, examples=15, compressed=True)
    report = "\n".join(f"{f.operation} -> {f.status}: {f.failures}\n    {f.example}" for f in findings)
    assert not findings, f"{len(findings)} distinct findings in {calls} calls:\n{report}"
    assert calls >= 7 * 15 * 0.5
