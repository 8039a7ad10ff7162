"""A JSON-RPC fault proxy between the watcher and anvil, on 127.0.0.1.

It forwards calls to the real node and, on demand, answers HTTP 500 or a JSON-RPC error, sends
malformed JSON, hangs past the client's timeout, reports a stale head, makes up Transfer logs (the
lying node), or refuses wide getLogs ranges with a suggested range, as hosted providers do.

The proxy runs in the test's process; a test flips its attributes (mode, stale_head, lies...) while
the watcher runs in another process. `faults` counts the answers each fault changed.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode = "ok"  # ok | http500 | rpc_error | malformed | hang
        self.stale_head: int | None = None  # report this block as the head and nothing above it
        self.invented_logs: list[dict[str, Any]] = []  # added to every getLogs answer that covers them
        self.max_range: int | None = None  # getLogs spans above this get a "too many results" error
        self.fail_latest = False  # HTTP 500 to any request that asks for the "latest" block (the head)
        self.requests: list[Any] = []
        self.hang_s = 30.0  # how long mode "hang" holds an answer (past the client's timeout)
        # The lying node, live: (token, to_address, value) triples; each getLogs answer gets one made-up
        # Transfer per triple at its last block (with that block's real hash), with a fresh tx hash.
        self.lies: list[tuple[str, str, int]] = []
        self.invented_tx_hashes: list[str] = []
        self.faults: Counter[str] = Counter()
        self._lie_ids = itertools.count(1)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                proxy.requests.append(body)
                status, payload = proxy.answer(body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (mode "hang"): nothing to answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def methods(self) -> list[str]:
        """Every JSON-RPC method the proxy has been asked, batches flattened."""
        flat = []
        for body in self.requests:
            flat.extend(item["method"] for item in (body if isinstance(body, list) else [body]))
        return flat

    def clear(self) -> None:
        """Back to an honest, healthy node."""
        self.mode, self.stale_head, self.lies, self.invented_logs, self.max_range = "ok", None, [], [], None
        self.fail_latest = False

    def answer(self, body: Any) -> tuple[int, Any]:
        calls = body if isinstance(body, list) else [body]
        if self.fail_latest and any(c.get("params", [None])[:1] == ["latest"] for c in calls):
            self.faults["fail_latest"] += 1
            return 500, b"no head for you"
        mode = self.mode
        if mode != "ok":
            self.faults[mode] += 1
        if mode == "http500":
            return 500, b"upstream exploded"
        if mode == "malformed":
            return 200, b'{"jsonrpc": "2.0", "result": [ {"trunc'
        if mode == "hang":
            time.sleep(self.hang_s)
        if isinstance(body, list):
            return 200, [self._one(item) for item in body]
        return 200, self._one(body)

    def _one(self, call: dict[str, Any]) -> dict[str, Any]:
        method, params = call["method"], call.get("params", [])
        if self.mode == "rpc_error":
            return {"jsonrpc": "2.0", "id": call["id"], "error": {"code": -32000, "message": "internal error"}}
        if method == "eth_getLogs" and self.max_range is not None:
            start, end = int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)
            if end - start + 1 > self.max_range:
                suggested = f"[{hex(start)}, {hex(start + self.max_range - 1)}]"
                message = f"query returned more than 10000 results. Try with this block range {suggested}."
                return {"jsonrpc": "2.0", "id": call["id"], "error": {"code": -32005, "message": message}}
        if self.stale_head is not None:
            self.faults["stale_head"] += 1
            if method == "eth_blockNumber":
                return {"jsonrpc": "2.0", "id": call["id"], "result": hex(self.stale_head)}
            if method == "eth_getBlockByNumber" and params[0] == "latest":
                call = {**call, "params": [hex(self.stale_head), *params[1:]]}
            elif method == "eth_getBlockByNumber" and int(params[0], 16) > self.stale_head:
                return {"jsonrpc": "2.0", "id": call["id"], "result": None}
            elif method == "eth_getLogs":
                end = min(int(params[0]["toBlock"], 16), self.stale_head)
                if end < int(params[0]["fromBlock"], 16):
                    return {"jsonrpc": "2.0", "id": call["id"], "result": []}
                call = {**call, "params": [{**params[0], "toBlock": hex(end)}]}
        answer: dict[str, Any] = requests.post(self.upstream, json=call, timeout=10).json()
        if method == "eth_getLogs" and self.invented_logs and "result" in answer:
            start, end = int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)
            answer["result"] += [log for log in self.invented_logs if start <= int(log["blockNumber"], 16) <= end]
        lies = self.lies
        if method == "eth_getLogs" and lies and isinstance(answer.get("result"), list):
            answer["result"] += self._invent(lies, int(params[0]["toBlock"], 16))
        return answer

    def _invent(self, lies: list[tuple[str, str, int]], block: int) -> list[dict[str, Any]]:
        """Made-up Transfer logs at `block`, carrying the block's real hash, so only a second source can
        tell they are false."""
        header = requests.post(
            self.upstream,
            json={"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": [hex(block), False]},
            timeout=10,
        ).json()["result"]
        if header is None:
            return []
        made_up = []
        for token, to, value in lies:
            tx_hash = "0x" + f"{0xDEAD0000 + next(self._lie_ids):064x}"
            self.invented_tx_hashes.append(tx_hash)
            self.faults["invented_log"] += 1
            made_up.append(
                {
                    "address": token.lower(),
                    "topics": [TRANSFER_TOPIC, "0x" + "00" * 12 + "11" * 20, "0x" + "00" * 12 + to[2:].lower()],
                    "data": "0x" + f"{value:064x}",
                    "blockHash": header["hash"],
                    "blockNumber": hex(block),
                    "blockTimestamp": header["timestamp"],
                    "transactionHash": tx_hash,
                    "transactionIndex": "0x0",
                    "logIndex": "0x0",
                    "removed": False,
                }
            )
        return made_up
