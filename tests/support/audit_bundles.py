"""Audit bundles as a merchant and an auditor handle them: downloaded through the API, written to a file,
verified by `stablepay_verify_bundle` (its exit code and JSON report)."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

from django.core.management import call_command
from rest_framework.test import APIClient

from stablepay.models import PaymentRequest


def verify(path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    out = StringIO()
    try:
        call_command("stablepay_verify_bundle", str(path), *args, stdout=out)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, json.loads(out.getvalue())


def download(api: APIClient, pr: PaymentRequest) -> bytes:
    response = api.get(f"/api/v1/payment-requests/{pr.pk}/audit/")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == f'attachment; filename="stablepay-audit-{pr.pk}.json"'
    return bytes(response.content)


def write(tmp_path: Path, data: bytes, name: str = "bundle.json") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path
