"""stablepay's API carries its own DRF classes (stablepay/api/base.py): a host whose global REST_FRAMEWORK
defaults are entirely different (session and basic auth, anyone allowed, form bodies, the browsable API, a
throttle of one request a day, an exception handler of its own) sees stablepay's API behave as CONTRACT §4
says: Bearer API keys, 401 without one, JSON only, 4xx bodies naming the field, the OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

from rest_framework.response import Response
from rest_framework.test import APIClient

from stablepay.models import PaymentRequest
from tests.support.local_chain import LocalChain

BODY = {"order_reference": "H-1", "amount": "10.00", "currency": "HKD", "chain_id": 31337, "token": "HKDX"}
HOST_DEFAULTS = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.FormParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.AnonRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"anon": "1/day"},
    "DEFAULT_VERSIONING_CLASS": "rest_framework.versioning.QueryParameterVersioning",
    "ALLOWED_VERSIONS": ["2"],
    "EXCEPTION_HANDLER": "tests.api.test_base.host_exception_handler",
    "PAGE_SIZE": 2,
}


def host_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """The host's own handler: every error is a 418 with its own body."""
    return Response({"host": "handled"}, status=418)


def test_a_host_with_other_drf_defaults_does_not_change_stablepay_api(
    settings: Any, api: APIClient, local_chain: LocalChain
) -> None:
    settings.REST_FRAMEWORK = HOST_DEFAULTS

    anonymous = APIClient()
    for _ in range(2):  # the host's one-a-day anonymous throttle does not apply
        refused = anonymous.get("/api/v1/payment-requests/")
        assert refused.status_code == 401 and refused["Content-Type"] == "application/json"
        assert "detail" in refused.json() and refused["WWW-Authenticate"] == 'Bearer realm="api"'

    created = api.post("/api/v1/payment-requests/", json.dumps(BODY), content_type="application/json")
    assert created.status_code == 201, created.content
    assert created["Content-Type"] == "application/json" and created.json()["status"] == "open"

    bad = api.post("/api/v1/payment-requests/", json.dumps({**BODY, "amount": 10}), content_type="application/json")
    assert bad.status_code == 400 and "amount" in bad.json()
    form = api.post("/api/v1/payment-requests/", BODY)  # multipart: the host's parsers are not stablepay's
    assert form.status_code == 415 and "detail" in form.json()
    conflict = api.post(
        f"/api/v1/payment-requests/{created.json()['id']}/resolve/", {"action": "accept", "note": "x"}, format="json"
    )
    assert conflict.status_code in (400, 409) and conflict["Content-Type"] == "application/json"

    for i in range(2, 5):
        api.post(
            "/api/v1/payment-requests/",
            json.dumps({**BODY, "order_reference": f"H-{i}"}),
            content_type="application/json",
        )
    listing = api.get("/api/v1/payment-requests/").json()  # the host's PAGE_SIZE is the host's
    assert listing["count"] == 4 and len(listing["results"]) == 4
    assert PaymentRequest.objects.count() == 4

    missing = anonymous.get("/api/v1/no-such-thing/")
    assert missing.status_code == 404 and missing.json() == {"detail": "no such API endpoint"}

    schema = anonymous.get("/api/v1/schema/")
    assert schema.status_code == 200 and b"/api/v1/payment-requests/" in schema.content
    assert b"stablepay API" in schema.content and b"merchantApiKey" in schema.content
