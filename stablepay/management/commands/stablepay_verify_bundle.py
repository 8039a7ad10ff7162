"""`manage.py stablepay_verify_bundle FILE [--offline] [--xpub XPUB]`: check an audit bundle's signature, then
its transfers against the chain (each receipt re-read by transaction hash through the chain's rpc_urls, or
--rpc-url).

Prints a JSON report; exit 0 when everything matches, 1 otherwise, each problem named in `problems`.
The trusted key is this server's signing key, or the --public-key given (base64 of the raw 32 bytes).
With --xpub (the merchant's, which the bundle leaves out), the deposit address is re-derived from it.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stablepay.chain.factory import reader_for_urls
from stablepay.chain.reader import ChainError
from stablepay.compliance import audit_bundle
from stablepay.models import Chain


class Command(BaseCommand):
    help = "Verify an audit bundle: its Ed25519 signature, then (unless --offline) its transfers on the chain."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The downloaded bundle (JSON).")
        parser.add_argument("--offline", action="store_true", help="Check the signature only.")
        parser.add_argument(
            "--public-key",
            action="append",
            default=[],
            help="A trusted public key (base64 of the raw 32 bytes); default: this server's signing key.",
        )
        parser.add_argument(
            "--xpub", help="The merchant's account xpub: also check the deposit address and fingerprint against it."
        )
        parser.add_argument(
            "--rpc-url", action="append", default=[], help="Read the chain here instead of the chain's rpc_urls."
        )

    def _trusted(self, given: list[str]) -> list[bytes]:
        if not given:
            return [audit_bundle.public_key_raw(audit_bundle.signing_key().public_key())]
        keys = []
        for text in given:
            try:
                raw = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise CommandError(f"public-key: not base64: {text!r}") from exc
            if len(raw) != 32:
                raise CommandError(f"public-key: an Ed25519 public key is 32 bytes, got {len(raw)}")
            keys.append(raw)
        return keys

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"file: {exc}") from exc
        trusted = self._trusted(options["public_key"])
        report: dict[str, Any] = {"file": str(path), "problems": []}
        document, problems = audit_bundle.parse_document(data)
        report["problems"].extend(problems)
        if document is not None:
            bundle = document["bundle"]
            report["payment_request"] = bundle.get("payment_request", {}).get("id")
            report["key_id"] = document["signature"].get("key_id")
            signature_problems = audit_bundle.verify_signature(document, trusted_public_keys=trusted)
            report["signature_ok"] = not signature_problems
            report["problems"].extend(signature_problems)
            report["problems"].extend(audit_bundle.verify_forwarder(bundle))  # needs no key: recomputed from the bundle
            if options["xpub"]:
                report["problems"].extend(audit_bundle.verify_deposit(bundle, options["xpub"]))
            if options["offline"]:
                report["chain"] = "not checked (--offline)"
            else:
                report["chain"] = self._chain(bundle, options["rpc_url"])
                report["problems"].extend(report["chain"].get("problems", []))
        report["ok"] = not report["problems"]
        self.stdout.write(json.dumps(report, indent=2, ensure_ascii=False))
        if not report["ok"]:
            sys.exit(1)

    def _chain(self, bundle: dict[str, Any], rpc_urls: list[str]) -> dict[str, Any]:
        chain_id = bundle.get("chain", {}).get("chain_id")
        urls = rpc_urls
        if not urls:
            chain = Chain.objects.filter(chain_id=chain_id).first() if isinstance(chain_id, int) else None
            if chain is None:
                return {"problems": [f"chain: no registered chain {chain_id!r} (give --rpc-url)"]}
            urls = list(chain.rpc_urls)
        reader = reader_for_urls(urls)
        try:
            return audit_bundle.verify_against_chain(bundle, reader)
        except (ChainError, ValueError, TypeError) as exc:
            return {"problems": [f"chain: could not read the chain ({exc})"]}
