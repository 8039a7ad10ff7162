"""A counting JSON-RPC pass-through on 127.0.0.1, in its own process, for the benchmarks.

    python -m bench.rpc_counter UPSTREAM_URL PORT

POST is forwarded to UPSTREAM_URL unchanged; GET /count answers {"http": n, "methods": {...}} (a batch
is one HTTP request and one method count per call in it); GET /reset zeroes the counts.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests


def serve(upstream: str, port: int) -> None:
    lock = threading.Lock()
    counts: dict[str, Any] = {"http": 0, "methods": Counter()}
    local = threading.local()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                calls = json.loads(body)
                methods = [c.get("method") for c in (calls if isinstance(calls, list) else [calls])]
            except ValueError:
                methods = ["?"]
            with lock:
                counts["http"] += 1
                counts["methods"].update(str(m) for m in methods)
            if not hasattr(local, "session"):
                local.session = requests.Session()
            answer = local.session.post(upstream, data=body, headers={"Content-Type": "application/json"}, timeout=60)
            self._reply(answer.status_code, answer.content)

        def do_GET(self) -> None:
            with lock:
                if self.path == "/reset":
                    counts["http"], counts["methods"] = 0, Counter()
                payload = json.dumps({"http": counts["http"], "methods": dict(counts["methods"])}).encode()
            self._reply(200, payload)

        def _reply(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
