"""P2, ingest: parse + decode + match of eth_getLogs answers, in one process.

Workload: 10^6 ERC-20 Transfer logs as raw JSON-RPC response bodies (1,000 bodies of 1,000 logs, as
an Ethereum node writes them, with blockTimestamp), 10^5 watched deposit addresses, exactly 1% of the
logs paying a watched address.

Each measurement runs in its own subprocess, so its peak RSS (VmHWM) is its own:

- ``loads``: ``json.loads`` of every body, nothing else: the ceiling for any decoder built on json.
- ``orjson``: ``orjson.loads`` alone, the parser stablepay uses (``rpc.parse_answer``).
- ``production``: what the watcher does per answer: ``parse_answer`` (as ``RpcChainReader._post``), the
  JSON-RPC envelope check (``_result``), ``decode_transfer_logs`` with the watcher's ``keep`` (every
  recipient looked up with ``watched_among`` in the embedded SQLite database, which holds the 10^5
  watched requests, in this same process; only the hits are then decoded in full), the range check
  (``_in_range``) and the token match (as ``watcher._scan_range``).
- ``web3``: the baseline: ``json.loads``, web3's log formatter (what ``w3.eth.get_logs`` applies) and
  ``contract.events.Transfer().process_log`` on a sample of 20,000 logs, the rate extrapolated.

Bodies are generated on the fly from a fixed seed, one at a time; only the processing is timed.

    python -m bench.ingest                # all four, prints JSON
    python -m bench.ingest --mode production --bodies 100
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
SEED = 5
BODIES = 1_000
LOGS_PER_BODY = 1_000
HITS_PER_BODY = 10  # 1%
WATCHED = 100_000
TOKENS = 3
LOGS_PER_BLOCK = 50
WEB3_SAMPLE_BODIES = 20  # 20,000 logs
TARGET_LOGS_PER_S = 120_000
TARGET_RSS_MB = 300
TARGET_RATIO = 25


# One log as a node writes it (%-formatting: the braces of str.format would clash with JSON's).
LOG_TEMPLATE = (
    '{"address":"%s","topics":["%s","%s","%s"],"data":"0x%064x","blockHash":"%s",'
    '"blockNumber":"%s","blockTimestamp":"%s","transactionHash":"0x%s","transactionIndex":"%s",'
    '"logIndex":"%s","removed":false}'
)


def watched_set(rng: random.Random) -> list[str]:
    return ["0x" + rng.randbytes(20).hex() for _ in range(WATCHED)]


def token_addresses(rng: random.Random) -> list[str]:
    return ["0x" + rng.randbytes(20).hex() for _ in range(TOKENS)]


def _word(address_hex40: str) -> str:
    return "0x" + "0" * 24 + address_hex40


def bodies(
    n_bodies: int, watched: list[str], tokens: list[str], rng: random.Random
) -> Iterator[tuple[bytes, int, int, int]]:
    """(body, expected hits, first block, last block) for each getLogs answer."""
    block = 19_000_000
    timestamp = 1_700_000_000
    for body_no in range(n_bodies):
        hit_at = set(rng.sample(range(LOGS_PER_BODY), HITS_PER_BODY))
        first = block
        parts = []
        block_hash = "0x" + rng.randbytes(32).hex()
        log_index = 0
        tx_index = 0
        for i in range(LOGS_PER_BODY):
            if i and i % LOGS_PER_BLOCK == 0:
                block += 1
                timestamp += 12
                block_hash = "0x" + rng.randbytes(32).hex()
                log_index = tx_index = 0
            to = watched[rng.randrange(WATCHED)][2:] if i in hit_at else rng.randbytes(20).hex()
            value = rng.randrange(1, 10**12)
            parts.append(
                LOG_TEMPLATE
                % (
                    tokens[rng.randrange(TOKENS)],
                    TRANSFER_TOPIC,
                    _word(rng.randbytes(20).hex()),
                    _word(to),
                    value,
                    block_hash,
                    hex(block),
                    hex(timestamp),
                    rng.randbytes(32).hex(),
                    hex(tx_index),
                    hex(log_index),
                )
            )
            log_index += 1
            tx_index += 1
        body = ('{"jsonrpc":"2.0","id":%d,"result":[' % body_no + ",".join(parts) + "]}").encode()  # noqa: UP031
        yield body, len(hit_at), first, block
        block += 1
        timestamp += 12


def _rss_mb() -> float:
    """Peak RSS of this process. VmHWM, not ru_maxrss: ru_maxrss survives fork+exec, so a child started
    by a big parent (P1 leaves ~260 MB) would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_mode(mode: str, n_bodies: int) -> dict[str, Any]:
    rng = random.Random(SEED)
    watched_list = watched_set(rng)
    tokens_list = token_addresses(rng)
    watched = dict.fromkeys(watched_list, 1)  # the watcher's {address: request id}
    tokens = dict.fromkeys(tokens_list, 1)
    n_logs = hits = expected = 0
    elapsed = 0.0
    perf = time.perf_counter
    if mode in ("loads", "orjson"):
        import orjson

        loads = json.loads if mode == "loads" else orjson.loads
        for body, exp, _, _ in bodies(n_bodies, watched_list, tokens_list, rng):
            t0 = perf()
            answer = loads(body)
            elapsed += perf() - t0
            n_logs += len(answer["result"])
            expected += exp
    elif mode == "production":
        from bench import fixtures

        fixtures.setup_django(sqlite_name="p2")
        from django.utils import timezone
        from eth_utils.address import to_checksum_address

        from stablepay.chain.rpc import RpcChainReader, decode_transfer_logs, parse_answer
        from stablepay.ingest.watcher import watched_among
        from stablepay.models import Chain, Token

        chain = Chain.objects.create(chain_id=1, name="Bench", rpc_urls=["http://127.0.0.1:9"])
        token = Token.objects.create(chain=chain, address=tokens_list[0], symbol="B", decimals=6, currency="HKD")
        checksummed = [to_checksum_address(a) for a in watched_list]  # stored as the API hands them out
        fixtures.open_requests(WATCHED, 0, fixtures.bench_merchant(), token, rng, addresses=checksummed)
        now = timezone.now()
        loads = parse_answer
        envelope = RpcChainReader._result
        in_range = RpcChainReader._in_range
        for body, exp, first, last in bodies(n_bodies, watched_list, tokens_list, rng):
            t0 = perf()
            found_watched: dict[str, Any] = {}  # as watcher._scan_range: the answer's watched recipients

            def keep(recipients: set[str], found_watched: dict[str, Any] = found_watched) -> dict[str, Any]:
                found_watched.update(watched_among(recipients, now=now))
                return found_watched

            logs = in_range(decode_transfer_logs(envelope(loads(body)), keep), first, last)
            found = [log for log in logs if log.to_address in found_watched and log.token in tokens]
            elapsed += perf() - t0
            n_logs += len(loads(body)["result"])  # every log read, outside the timing
            hits += len(found)
            expected += exp
    elif mode == "web3":
        from web3 import Web3
        from web3._utils.method_formatters import log_entry_formatter

        abi = json.loads((REPO_ROOT / "stablepay/dev/contracts/TestStablecoin.json").read_text())["abi"]
        w3 = Web3()
        event = w3.eth.contract(abi=abi).events.Transfer()
        loads = json.loads
        for body, exp, _, _ in bodies(n_bodies, watched_list, tokens_list, rng):
            t0 = perf()
            found = []
            raw_logs = loads(body)["result"]
            for raw in raw_logs:
                decoded = event.process_log(log_entry_formatter(raw))
                if decoded["args"]["to"].lower() in watched and decoded["address"].lower() in tokens:
                    found.append(decoded)
            elapsed += perf() - t0
            n_logs += len(raw_logs)
            hits += len(found)
            expected += exp
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    return {
        "mode": mode,
        "logs": n_logs,
        "seconds": round(elapsed, 3),
        "logs_per_s": round(n_logs / elapsed),
        "hits": hits if mode in ("production", "web3") else None,
        "expected_hits": expected,
        "peak_rss_mb": round(_rss_mb(), 1),
    }


def _subprocess(mode: str, n_bodies: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.ingest", "--mode", mode, "--bodies", str(n_bodies)],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def bench(n_bodies: int = BODIES) -> dict[str, Any]:
    """Run the three measurements, each in a fresh process, and build the P2 record."""
    t0 = time.monotonic()
    loads = _subprocess("loads", n_bodies)
    fast_loads = _subprocess("orjson", n_bodies)
    prod = _subprocess("production", n_bodies)
    web3 = _subprocess("web3", min(WEB3_SAMPLE_BODIES, n_bodies))
    ratio = prod["logs_per_s"] / web3["logs_per_s"]
    correct = prod["hits"] == prod["expected_hits"] and web3["hits"] == web3["expected_hits"]
    met = prod["logs_per_s"] >= TARGET_LOGS_PER_S and prod["peak_rss_mb"] <= TARGET_RSS_MB and ratio >= TARGET_RATIO
    return {
        "id": "P2",
        "what": "Ingest: parse + decode + match",
        "workload": (
            f"{prod['logs']:,} Transfer logs in {n_bodies:,} raw getLogs bodies, "
            f"{WATCHED:,} watched addresses, 1% hits; one process"
        ),
        "figure": f"{prod['logs_per_s']:,} logs/s, peak RSS {prod['peak_rss_mb']:.0f} MB",
        "baseline": (
            f"web3 process_log: {web3['logs_per_s']:,} logs/s ({web3['logs']:,}-log sample, extrapolated); "
            f"json.loads alone (ceiling for a json-based decoder): {loads['logs_per_s']:,} logs/s, "
            f"RSS {loads['peak_rss_mb']:.0f} MB; orjson.loads alone (our parser): {fast_loads['logs_per_s']:,} logs/s"
        ),
        "ratio": (
            f"{ratio:.1f}x web3; {prod['logs_per_s'] / loads['logs_per_s']:.0%} of the json.loads ceiling, "
            f"{prod['logs_per_s'] / fast_loads['logs_per_s']:.0%} of orjson's"
        ),
        "target": f">= {TARGET_LOGS_PER_S:,} logs/s, RSS <= {TARGET_RSS_MB} MB, >= {TARGET_RATIO}x web3",
        "met": met and correct,
        "notes": (
            f"hits found {prod['hits']:,} of {prod['expected_hits']:,} expected (web3 sample: "
            f"{web3['hits']} of {web3['expected_hits']}); timings exclude generating the bodies"
        ),
        "raw": {"loads": loads, "orjson": fast_loads, "production": prod, "web3": web3, "vs_web3": round(ratio, 2)},
        "seconds": round(time.monotonic() - t0, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["loads", "orjson", "production", "web3"])
    parser.add_argument("--bodies", type=int, default=BODIES)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.bodies)))
    else:
        print(json.dumps(bench(args.bodies), indent=2))


if __name__ == "__main__":
    main()
