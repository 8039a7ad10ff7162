"""A screening service for the tests: a real threaded http.server on 127.0.0.1 that speaks
stablepay.compliance.screening.HttpBackend's protocol and can misbehave on request.

Modes: `answer` (the protocol's 200 answer, flagging the addresses in `flagged`), `malformed` (not
JSON), `missing` (leaves one address out), `not_bool` (flagged as the string "true"), `http500`,
`hang` (answers after `hang_s`), `trickle` (headers at once, then the body one byte every
`trickle_every_s`), `chunked` (the right answer, in two chunks of a chunked transfer encoding). Every
request is kept (headers and JSON body), so tests count them server-side.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class ScreeningService:
    def __init__(self) -> None:
        self.mode = "answer"
        self.flagged: dict[str, str] = {}  # lower-case address -> reason
        self.hang_s = 5.0
        self.trickle_every_s = 0.2
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer._lock:
                    outer.seen.append(Seen(self.path, dict(self.headers), body))
                outer._answer(self, body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/screen"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def flag(self, address: str, reason: str) -> None:
        self.flagged[address.lower()] = reason

    @property
    def addresses_asked(self) -> list[list[str]]:
        return [s.body["addresses"] for s in self.seen]

    def _results(self, addresses: list[str]) -> list[dict[str, Any]]:
        return [
            {"address": a, "flagged": a in self.flagged, "reason": self.flagged.get(a, "no match")} for a in addresses
        ]

    def _answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        addresses = body["addresses"]
        status, payload = 200, b""
        if self.mode == "answer":
            payload = json.dumps({"results": self._results(addresses)}).encode()
        elif self.mode == "malformed":
            payload = b'{"results": [ this is not json'
        elif self.mode == "missing":
            payload = json.dumps({"results": self._results(addresses)[1:]}).encode()
        elif self.mode == "not_bool":
            payload = json.dumps({"results": [dict(r, flagged="true") for r in self._results(addresses)]}).encode()
        elif self.mode == "http500":
            status, payload = 500, b'{"error": "internal"}'
        elif self.mode == "hang":
            time.sleep(self.hang_s)
            payload = json.dumps({"results": self._results(addresses)}).encode()
        elif self.mode in ("trickle", "chunked"):
            payload = json.dumps({"results": self._results(addresses)}).encode()
        if self.mode == "chunked":
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            half = len(payload) // 2
            for part in (payload[:half], payload[half:], b""):
                handler.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            handler.wfile.flush()
            return
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        try:
            if self.mode == "trickle":
                for i in range(len(payload)):
                    handler.wfile.write(payload[i : i + 1])
                    handler.wfile.flush()
                    time.sleep(self.trickle_every_s)
            else:
                handler.wfile.write(payload)
        except OSError:
            pass  # the client gave up

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
