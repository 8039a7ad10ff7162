"""A small, bounded HTTP/1.1 load generator for the API benchmarks: asyncio on raw sockets.

C concurrent connections share N requests. Closed loop (no rate): a connection sends its next request
as soon as the previous answer is read, so the server runs flat out and, by Little's law, latency ~=
C / throughput. Paced (rate R): request i is due at start + i/R and is sent by the first free
connection once due; its latency counts from when it was due, so time spent waiting for a free
connection (a server slower than R) is counted too (no coordinated omission). Every request body is built by the caller
(so order references and Idempotency-Keys can be unique). Keep-alive is used when the server allows
it; when it answers `Connection: close` (gunicorn's sync workers) the next request opens a new
connection, and that connect time is part of the measured latency: it is what a client sees.

It only talks to 127.0.0.1, refuses more than MAX_REQUESTS requests or MAX_CONCURRENCY connections,
and every socket operation has a timeout, so it cannot run away. It is deliberately lean (no HTTP
library) because on a 2-core machine it competes with the server for CPU; its own CPU time is
measured and reported with the figures.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"
MAX_REQUESTS = 100_000
MAX_CONCURRENCY = 64
MAX_RATE = 10_000.0
TIMEOUT_S = 30.0


@dataclass
class LoadResult:
    requests: int
    concurrency: int
    seconds: float
    client_cpu_s: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # transport errors (no HTTP answer)
    connections: int = 0
    samples: list[bytes] = field(default_factory=list)  # a few non-expected bodies, for the notes
    unsent: int = 0  # requests never sent because the run hit its time limit (max_seconds)

    @property
    def sent(self) -> int:
        return self.requests - self.unsent

    @property
    def rps(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the latencies, in ms."""
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        rank = max(1, -(-len(ordered) * p // 100))
        return ordered[int(rank) - 1]

    def errors(self, expected_status: int) -> int:
        return sum(n for s, n in self.statuses.items() if s != expected_status) + sum(self.failures.values())

    def summary(self, expected_status: int) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "unsent": self.unsent,
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 2),
            "rps": round(self.rps, 1),
            "p50_ms": round(self.percentile(50), 2),
            "p90_ms": round(self.percentile(90), 2),
            "p99_ms": round(self.percentile(99), 2),
            "max_ms": round(max(self.latencies_ms, default=float("nan")), 2),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "failures": dict(self.failures),
            "errors": self.errors(expected_status),
            "connections": self.connections,
            "client_cpu_s": round(self.client_cpu_s, 2),
        }


def build_request(method: str, path: str, port: int, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    """(status, keep_alive, body) of one response with a Content-Length (what Django/gunicorn send)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, keep_alive = 0, lines[0].startswith("HTTP/1.1")
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection":
            keep_alive = value.strip().lower() != "close"
    body = await reader.readexactly(length) if length else b""
    return status, keep_alive, body


async def _run(
    port: int,
    total: int,
    concurrency: int,
    make_request: Callable[[int], bytes],
    expected_status: int,
    rate: float | None,
    max_seconds: float | None,
) -> LoadResult:
    result = LoadResult(requests=total, concurrency=concurrency, seconds=0.0, client_cpu_s=0.0)
    payloads = [make_request(i) for i in range(total)]  # built before the clock starts: not the client's load
    next_index = 0

    async def connection_loop() -> None:
        nonlocal next_index
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while next_index < total:
            if max_seconds is not None and time.perf_counter() - start > max_seconds:
                result.unsent = total - next_index
                break
            i = next_index
            next_index += 1
            payload = payloads[i]
            if rate:
                due = start + i / rate
                if (wait := due - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                t0 = due
            else:
                t0 = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), TIMEOUT_S)
                    result.connections += 1
                assert reader is not None
                writer.write(payload)
                status, keep_alive, body = await asyncio.wait_for(_read_response(reader), TIMEOUT_S)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                result.failures[type(exc).__name__] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            result.latencies_ms.append((time.perf_counter() - t0) * 1000)
            result.statuses[status] += 1
            if status != expected_status and len(result.samples) < 3:
                result.samples.append(body[:300])
            if not keep_alive:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    cpu0, start = time.process_time(), time.perf_counter()
    await asyncio.gather(*(connection_loop() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - start
    result.client_cpu_s = time.process_time() - cpu0
    return result


def run(
    *,
    port: int,
    total: int,
    concurrency: int,
    make_request: Callable[[int], bytes],
    expected_status: int = 200,
    rate: float | None = None,
    max_seconds: float | None = None,
) -> LoadResult:
    """Send `total` requests to 127.0.0.1:port over `concurrency` connections; request i is make_request(i).

    rate: requests per second for a paced run; None runs closed loop (as fast as the server answers).
    max_seconds: stop sending new requests after this long (those in flight are still answered); the
    requests never sent are counted in `unsent`, and rps counts only the requests sent.
    """
    if not (0 < total <= MAX_REQUESTS and 0 < concurrency <= MAX_CONCURRENCY):
        raise ValueError(f"bounded load only: 1..{MAX_REQUESTS} requests, 1..{MAX_CONCURRENCY} connections")
    if rate is not None and not 0 < rate <= MAX_RATE:
        raise ValueError(f"bounded load only: a rate of at most {MAX_RATE} requests per second")
    return asyncio.run(_run(port, total, concurrency, make_request, expected_status, rate, max_seconds))
