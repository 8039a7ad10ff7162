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

from collections.abc import Iterator

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from schemathesis import GenerationMode

from stablepay.models import Merchant, PaymentRequest
from tests.support.fuzz import EXAMPLES, Targets, fuzz
from tests.support.local_chain import LocalChain, create_request
from tests.support.ops import Exceptions

pytestmark = pytest.mark.django_db


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


@pytest.fixture
def targets(local_chain: LocalChain, merchant: Merchant, exceptions: Exceptions) -> Targets:
    other = Merchant.objects.get(slug="other")
    made: list[PaymentRequest] = [exceptions.underpaid(), exceptions.overpaid()]
    made += [create_request(merchant, order_reference="OPEN-1"), create_request(other, order_reference="THEIRS-1")]
    return Targets(request_ids=[str(pr.pk) for pr in made])


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
