"""Schemathesis over stablepay's served OpenAPI document (tests/security/test_api_fuzz.py in process over WSGI,
tests/security/test_live_server.py over HTTP to gunicorn): every operation, in a generation mode, with or
without a merchant's key, steered half the time to the registered chain and tokens and to real payment
request ids (`Targets`). Returns the number of calls and the distinct findings: an answer the schema does
not document, or a 5xx."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import positive_data_acceptance

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
CREATE = "POST /api/v1/payment-requests/"


@dataclass
class Targets:
    request_ids: list[str]
    symbols: list[str] = field(default_factory=lambda: ["HKDX", "USDC"])


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
