"""A merchant's webhook endpoint for tests: a real http.server on 127.0.0.1 that checks each delivery with
the public helper (stablepay.webhooks.signature.verify_signature) and answers 204 when it passes, 400 when not.

Its clock (`now`) can be set, so deliveries made with a controlled clock are checked against that clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from stablepay.webhooks.signature import SignatureVerificationError, verify_signature


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    accepted: bool
    reason: str

    @property
    def signature(self) -> str:
        return self.headers["Stablepay-Signature"]

    @property
    def timestamp(self) -> int:
        return int(self.signature.split(",")[0].removeprefix("t="))

    @property
    def v1(self) -> list[str]:
        return [item.removeprefix("v1=") for item in self.signature.split(",") if item.startswith("v1=")]


class VerifyingReceiver:
    def __init__(self, secrets: list[str], now: Callable[[], float] | None = None) -> None:
        self.secrets = secrets
        self.now = now  # None: the real time
        self.seen: list[Delivery] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                clock = outer.now() if outer.now is not None else None
                try:
                    verify_signature(self.headers.get("Stablepay-Signature", ""), body, outer.secrets, now=clock)
                    accepted, reason = True, ""
                except SignatureVerificationError as exc:
                    accepted, reason = False, exc.reason
                outer.seen.append(Delivery(dict(self.headers), body, accepted, reason))
                self.send_response(204 if accepted else 400)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/stablepay"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
