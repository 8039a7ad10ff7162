"""Schemathesis against the served OpenAPI document (/api/v1/schema/), in process over WSGI, on a real
anvil chain with HKDX and USDC registered: with merchant acme's key and with no key, in positive and
negative generation modes. Every answer must be documented (status code, content type, body schema) and
none may be a 5xx.

Bounded and seeded: FUZZ_EXAMPLES examples (default 60) per operation and mode, derandomized, so a run is
repeatable and takes about a minute. All of schemathesis's checks run except `positive_data_acceptance`:
whether a schema-valid body is accepted depends on the registry (a chain id and token symbol must be
registered, date_from <= date_to, an amount > 0 within 4 KB of metadata), which a schema cannot state.
To reach the success paths anyway, positive cases are steered half the time to the registered chain and
tokens and to real payment request ids (the merchant's own, in each state, and the other merchant's).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import positive_data_acceptance

from stablepay.models import Merchant, PaymentRequest
from tests.conftest import LocalChain, create_request
from tests.ops.conftest import Exceptions

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
CREATE = "POST /api/v1/payment-requests/"


@pytest.fixture
def wsgi_app() -> Iterator[WSGIHandler]:
    """Django's WSGI app, in this test's transaction: like django.test.Client, it must not close the
    connection at the end of each request."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@dataclass
class Targets:
    request_ids: list[str]
    symbols: list[str] = field(default_factory=lambda: ["HKDX", "USDC"])


@pytest.fixture
def targets(local_chain: LocalChain, merchant: Merchant, exceptions: Exceptions) -> Targets:
    other = Merchant.objects.get(slug="other")
    made: list[PaymentRequest] = [exceptions.underpaid(), exceptions.overpaid()]
    made += [create_request(merchant, order_reference="OPEN-1"), create_request(other, order_reference="THEIRS-1")]
    return Targets(request_ids=[str(pr.pk) for pr in made])


@dataclass(frozen=True)
class Finding:
    operation: str
    status: int
    failures: tuple[str, ...]
    example: str


def fuzz(
    schema: BaseSchema,
    key: str | None,
    mode: GenerationMode,
    targets: Targets,
    examples: int = EXAMPLES,
    *,
    compressed: bool = False,
) -> tuple[int, list[Finding]]:
    """Run every operation of the served schema; return the number of calls and the distinct findings.
    `compressed=False` asks for uncompressed answers (Accept-Encoding: identity): the WSGI transport hands
    back a gzipped body undecoded. Over HTTP (test_live_server.py) requests decodes it, so ask for gzip there."""
    call_headers = None if compressed else {"Accept-Encoding": "identity"}
    findings: dict[tuple[str, int, tuple[str, ...]], Finding] = {}
    calls = 0
    unsatisfiable: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        auth = {"Authorization": f"Bearer {key}"} if key else None
        cases = operation.as_strategy(generation_mode=mode, headers=auth)

        @given(case=cases, steer=st.booleans(), pick=st.integers(0, 1000))
        @settings(
            max_examples=examples,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any, steer: bool, pick: int) -> None:
            nonlocal calls
            if key is None and case.headers:
                case.headers.pop("Authorization", None)
            if mode == GenerationMode.POSITIVE and steer:
                if "request_id" in (case.path_parameters or {}) and targets.request_ids:
                    case.path_parameters["request_id"] = targets.request_ids[pick % len(targets.request_ids)]
                if operation.label == CREATE and isinstance(case.body, dict):
                    case.body["chain_id"] = 31337
                    case.body["token"] = targets.symbols[pick % len(targets.symbols)]
            response = case.call(headers=call_headers)
            calls += 1
            try:
                case.validate_response(response, headers=auth, excluded_checks=[positive_data_acceptance])
            except BaseException as exc:  # a FailureGroup: one entry per failed check
                if not isinstance(exc, (Exception, BaseExceptionGroup)):
                    raise
                failures = tuple(
                    sorted(
                        f"{type(e).__name__}: {' '.join(str(e).split())[:240]}"
                        for e in getattr(exc, "exceptions", [exc])
                    )
                )
                signature = (operation.label, response.status_code, tuple(f.split(":")[0] for f in failures))
                findings.setdefault(
                    signature,
                    Finding(
                        operation.label,
                        response.status_code,
                        failures,
                        f"{case.path_parameters} {case.query} {case.headers} {case.body!r}"[:400]
                        + f" -> {response.text[:300]}",
                    ),
                )

        try:
            run()
        except Unsatisfiable:  # nothing to break but the Authorization header we fix (GET /tokens/), or
            unsatisfiable.append(operation.label)  # nothing at all (GET /audit-key/: no parameter, no key)
    assert set(unsatisfiable) <= {"GET /api/v1/tokens/", "GET /api/v1/audit-key/"}, unsatisfiable
    return calls, list(findings.values())


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("keyed", [True, False], ids=["merchant-key", "no-key"])
def test_every_answer_is_documented_and_none_is_a_5xx(
    wsgi_app: WSGIHandler, local_chain: LocalChain, targets: Targets, keyed: bool, mode: GenerationMode
) -> None:
    key = local_chain.api_keys["acme"] if keyed else None
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", wsgi_app)
    calls, findings = fuzz(schema, key, mode, targets)
    report = "\n".join(f"{f.operation} -> {f.status}: {f.failures}\n    {f.example}" for f in findings)
    assert not findings, f"{len(findings)} distinct findings in {calls} calls:\n{report}"
    assert calls >= 7 * EXAMPLES * 0.5  # every operation was exercised
    if keyed and mode == GenerationMode.POSITIVE:
        created = PaymentRequest.objects.filter(merchant__slug="acme").count()
        assert created > 3, "no create reached the success path"  # 3 requests were made by the fixture
