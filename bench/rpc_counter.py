"""A counting JSON-RPC pass-through on 127.0.0.1, in its own process, for the benchmarks.

    python -m bench.rpc_counter UPSTREAM_URL PORT

POST is forwarded to UPSTREAM_URL unchanged; GET /count answers {"http": n, "methods": {...}} (a batch
is one HTTP request and one method count per call in it); GET /reset zeroes the counts.
`running(upstream)` starts one for the calling benchmark and stops it afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests


def serve(upstream: str, port: int) -> None:
    lock = threading.Lock()
    counts: dict[str, Any] = {"http": 0, "methods": Counter()}
    local = threading.local()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without TCP_NODELAY the second waits for the client's
        # delayed ACK, ~40 ms per answer (measured on GET /count), which is the proxy's, not the node's.
        disable_nagle_algorithm = True

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


class Proxy:
    """A running counter: `url` to point readers at, `counts()` for the totals so far."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def counts(self) -> tuple[int, Counter[str]]:
        """(HTTP requests, JSON-RPC calls by method) since the proxy started."""
        answer = self.session.get(self.url + "/count", timeout=10).json()
        return int(answer["http"]), Counter(answer["methods"])


@contextmanager
def running(upstream: str) -> Iterator[Proxy]:
    """A counting proxy to `upstream` in its own process, for the duration of the block."""
    from tests.support.services import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.rpc_counter", upstream, str(port)],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        yield Proxy(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
