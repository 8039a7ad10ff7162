"""P1, JSON-RPC calls per new block (issue 14): the watcher (`scan_chain`) against the pre-issue-14
design (bench/baseline_scan.py), both on the same real anvil, each through its own counting proxy.

Counting is what a provider bills: every JSON-RPC call that crosses the wire, each element of a batch
once, by method (bench/rpc_counter.py, one per design, each in its own process, between that design
and anvil). Block production and payments go to anvil directly and are not counted.

Workload: one registered token, confirmations 3. For each number of open requests N = 1, 1,000,
100,000 (bulk-inserted rows; the baseline watches the same addresses in memory) and each number of
payments per block k = 0, 1, 10 (real ERC-20 transfers from dev accounts to watched deposit addresses,
sent with automine off, then `evm_mine`):

- warm-up: WINDOW = 128 blocks with k payments each, so every measured block has k payments in every
  one of the last 128 blocks, then passes until both cursors reach the head (not measured);
- measured: BLOCKS = 200 blocks with k payments each, one pass of each design after each block (as
  with 1 s blocks), the two at once (the chain does not move meanwhile and each counts at its own
  proxy; the baseline in a thread, as it mostly waits for its node); calls per new block: median, max
  and the mean per method;
- after k = 1 and k = 10, QUIET = 20 blocks without payments (new blocks without payments, after
  blocks with payments), measured the same way.

At N = 100,000, right after the k = 10 blocks: three more blocks of 10 payments, scanned, then
`anvil_reorg` depth 3 replacing them with blocks that re-include 5 of each block's 10 payments (the
other 5 senders' are dropped): the calls of the pass that handles it.

The catch-up: 5,000 empty blocks mined at once, then passes until each design's cursor reaches the
head (each design keeps the chunk size its own history gave it). It runs once the 100,000 requests are
inserted, before their cells: after the N = 1,000 cells, which end as the run does (k = 10, then 20
blocks without payments), so both designs hold the same history there (the same counts as when it
ran last: 113 and 131 calls, and 113 and 4 with the watcher before b3c1c7a). Not last, because anvil
re-hashes every storage slot for each block it mines, and the N = 100,000 cells add ~3,600 token
holders: mining the 5,000 blocks took 72 s after them (on a busy machine), 10 s before.

anvil runs with `--hardfork cancun --prune-history 32`: with its defaults (Prague, every block's state
kept, older ones written to disk), mining a block costs more the longer the chain (EIP-2935 keeps each
block hash in a contract's storage, re-hashed for every block, and the states written to disk grow
with it): ~100 s for the 5,000 empty blocks at height ~3,000. The blocks, logs and headers the designs
read are the same (the token is built for Paris), and anvil_reorg needs only the last 3 states.

Django runs on a throwaway SQLite database under bench/results/tmp/, so no server is needed; as it is
thrown away, it runs without fsync (WAL, `synchronous=OFF`): the fsyncs were the disk's time, not the
design's, 5-10 ms of a 20-45 ms pass here (pass times are reported, not targets; with the two designs
at once, each pass's time includes the other's load). The 100,000 open requests are
fixtures.open_requests's rows, written by one `executemany` per 5,000 instead of `bulk_create`, whose
per-value SQL compilation was most of the insert's time.

Wall time per step and per activity (block production, each design's passes, the proxies' counters,
the inserts, the catch-up's mining) is in the result's raw `phase_seconds`.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench import fixtures
from bench.baseline_scan import BaselineScanner
from bench.rpc_counter import Proxy, running

NS = (1, 1_000, 100_000)
KS = (0, 1, 10)
WINDOW = 128
BLOCKS = 200
QUIET = 20
ANVIL_ARGS = ("--hardfork", "cancun", "--prune-history", "32")  # see the module docstring
REORG_DEPTH = 3
REORG_KEPT = 5  # senders whose payments the reorg re-includes
CATCH_UP_BLOCKS = 5_000
MINE_BATCH = 500
MAX_CATCH_UP_PASSES = 100
CONFIRMATIONS = 3
AMOUNT = 1_000  # base units per payment: far below the amount due, so every request stays open
SENDERS = 10
TRANSFER_SELECTOR = "0xa9059cbb"


def _limit(k: int) -> int:
    """The issue's target per new block: 2 calls without new payments, 3 with them."""
    return 3 if k else 2


class Pass:
    """One scan pass of one design, as the proxy counted it."""

    def __init__(self, http: int, methods: Counter[str], seconds: float, recorded: int | None, info: dict[str, Any]):
        self.http, self.methods, self.seconds, self.recorded, self.info = http, methods, seconds, recorded, info

    @property
    def calls(self) -> int:
        return sum(self.methods.values())


class Harness:
    def __init__(
        self, anvil: Any, proxies: dict[str, Proxy], token: str, chain: Any, scan_new: Callable[[], Any]
    ) -> None:
        """`proxies`: the counting proxy of each design ("new", "baseline"), each with its own."""
        self.anvil, self.proxies, self.token, self.chain = anvil, proxies, token, chain
        self.scan_new = scan_new
        self.rng = random.Random(14)
        self.addresses: list[str] = []
        self.watched: set[str] = set()
        self.baseline = BaselineScanner(proxies["baseline"].url, [token], self.watched, confirmations=CONFIRMATIONS)
        self.new_error: str | None = None
        self.mismatch = 0  # baseline passes whose own count differs from the proxy's (should stay 0)
        self.senders = [_dev_address(i) for i in range(SENDERS)]
        self.phase_seconds: Counter[str] = Counter()  # wall time per phase, for the record
        self._counts: dict[str, tuple[int, Counter[str]]] = {}  # each proxy's counts after its last pass
        self._baseline_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="p1-baseline")
        import requests

        self.session = requests.Session()

    # the chain ------------------------------------------------------------------------------------
    def _anvil_batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        payload: Any = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        answer = self.session.post(self.anvil.url, json=payload, timeout=60).json()
        errors = [a["error"] for a in answer if "error" in a]
        if errors:
            raise RuntimeError(f"anvil: {errors[0]}")
        return [a["result"] for a in sorted(answer, key=lambda a: a["id"])]

    def payees(self, k: int) -> list[str]:
        return [self.rng.choice(self.addresses) for _ in range(k)]

    def block(self, k: int) -> None:
        """Mine one block holding k payments to watched deposit addresses (one per dev account)."""
        t0 = time.perf_counter()
        if k:
            txs = [
                {"from": sender, "to": self.token, "data": _transfer_data(to), "gas": "0x186a0"}
                for sender, to in zip(self.senders, self.payees(k), strict=False)
            ]
            self._anvil_batch([("eth_sendTransaction", [tx]) for tx in txs])
        self.anvil.rpc("evm_mine")
        self.phase_seconds["blocks (send + mine)"] += time.perf_counter() - t0

    def head(self) -> int:
        return int(self.anvil.rpc("eth_blockNumber"), 16)

    # the scanners -----------------------------------------------------------------------------------
    def _proxy_counts(self, design: str) -> tuple[int, Counter[str]]:
        t0 = time.perf_counter()
        counts = self.proxies[design].counts()
        self.phase_seconds[f"proxy counters ({design})"] += time.perf_counter() - t0
        return counts

    def _counted(self, run: Callable[[], Any], design: str) -> tuple[Any, int, Counter[str], float]:
        """Run one pass of `design`; the calls its proxy saw meanwhile. Only that design goes through its
        proxy, so its counts after one pass are its counts before the next (one read per pass)."""
        http0, methods0 = self._counts.pop(design, None) or self._proxy_counts(design)  # none if a pass failed
        t0 = time.perf_counter()
        result = run()
        seconds = time.perf_counter() - t0
        self.phase_seconds[f"{design} passes"] += seconds
        http1, methods1 = self._counts[design] = self._proxy_counts(design)
        return result, http1 - http0, methods1 - methods0, seconds

    def pass_baseline(self) -> Pass:
        result, http, methods, seconds = self._counted(self.baseline.scan, "baseline")
        if methods != result.calls or http != result.http:
            self.mismatch += 1
        info = {"reorg_depth": result.reorg_depth, "orphaned": result.orphaned, "scanned": result.scanned}
        return Pass(http, methods, seconds, result.recorded, info)

    def pass_new(self) -> Pass | None:
        if self.new_error is not None:
            return None
        try:
            result, http, methods, seconds = self._counted(self.scan_new, "new")
        except Exception as exc:  # the new design is being rewritten: report, keep measuring the baseline
            self.new_error = f"{exc.__class__.__name__}: {exc}"[:500]
            print(f"[P1] the new design failed, measuring the baseline only from here: {self.new_error}", flush=True)
            return None
        info = {key: getattr(result, key, None) for key in ("reorg_depth", "orphaned", "scanned", "head")}
        return Pass(http, methods, seconds, getattr(result, "recorded", None), info)

    def both(self) -> tuple[Pass, Pass | None]:
        """One pass of each design after the same new block, at the same time: the chain does not move
        while they run and each design's calls go through its own proxy, so its count is its own (the
        baseline's in a thread: it only waits for its node; the new design stays on Django's thread)."""
        t0 = time.perf_counter()
        baseline = self._baseline_thread.submit(self.pass_baseline)
        try:
            new = self.pass_new()
        finally:
            base = baseline.result()
        self.phase_seconds["passes, both designs at once"] += time.perf_counter() - t0
        return base, new

    def close(self) -> None:
        self._baseline_thread.shutdown()

    def new_scanned(self, p: Pass | None) -> int:
        if p is not None and isinstance(p.info.get("scanned"), int):
            return int(p.info["scanned"])
        from stablepay.models import Cursor

        return int(Cursor.objects.get(chain=self.chain).scanned_block)

    def catch_up_both(self) -> dict[str, Any]:
        """Passes of each design until its cursor reaches the head: calls, passes, seconds."""
        head, out = self.head(), {}
        base: list[Pass] = []
        while not base or base[-1].info["scanned"] < head:
            base.append(self.pass_baseline())
            if len(base) >= MAX_CATCH_UP_PASSES:
                break
        out["baseline"] = _catch_up_summary(base, head, base[-1].info["scanned"])
        new: list[Pass] = []
        while self.new_error is None:
            p = self.pass_new()
            if p is None:
                break
            new.append(p)
            if self.new_scanned(p) >= head or len(new) >= MAX_CATCH_UP_PASSES:
                break
        if new and self.new_error is None:
            out["new"] = _catch_up_summary(new, head, self.new_scanned(new[-1]))
        return out


def _dev_address(i: int) -> str:
    from stablepay.dev import chain as devchain

    return str(devchain.dev_account(i).address)


def _transfer_data(to: str, amount: int = AMOUNT) -> str:
    return TRANSFER_SELECTOR + to[2:].lower().rjust(64, "0") + format(amount, "064x")


def _catch_up_summary(passes: list[Pass], head: int, scanned: int) -> dict[str, Any]:
    methods: Counter[str] = Counter()
    for p in passes:
        methods += p.methods
    return {
        "calls": sum(methods.values()),
        "methods": dict(methods),
        "http": sum(p.http for p in passes),
        "passes": len(passes),
        "seconds": round(sum(p.seconds for p in passes), 3),
        "reached_head": scanned >= head,
    }


def _stats(passes: list[Pass], expected: int) -> dict[str, Any]:
    calls = [p.calls for p in passes]
    methods: Counter[str] = Counter()
    for p in passes:
        methods += p.methods
    worst = max(passes, key=lambda p: p.calls)
    recorded = [p.recorded for p in passes]
    return {
        "blocks": len(passes),
        "median": statistics.median(calls),
        "max": max(calls),
        "min": min(calls),
        "mean": round(statistics.fmean(calls), 2),
        "histogram": {str(c): n for c, n in sorted(Counter(calls).items())},
        "per_method_mean": {m: round(n / len(passes), 2) for m, n in sorted(methods.items())},
        "max_pass_methods": dict(sorted(worst.methods.items())),
        "http_median": statistics.median(p.http for p in passes),
        "median_pass_ms": round(statistics.median(p.seconds for p in passes) * 1000, 1),
        "recorded": sum(r for r in recorded if r is not None) if all(r is not None for r in recorded) else None,
        "expected_recorded": expected,
    }


def _transfer_count() -> int | None:
    try:
        from stablepay.models import Transfer

        return int(Transfer.objects.count())
    except Exception:  # the model may be changing under the rewrite
        return None


def _fast_sqlite() -> None:
    """No fsync on the throwaway database (see the module docstring), on this connection and any later one."""
    from django.db import connection
    from django.db.backends.signals import connection_created

    def pragmas(sender: Any = None, connection: Any = connection, **kwargs: Any) -> None:
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=OFF")

    connection_created.connect(pragmas, weak=False)
    connection.ensure_connection()
    pragmas()


def _insert_rows(objs: list[Any], *args: Any, **kwargs: Any) -> list[Any]:
    """`bulk_create(objs)` for plain new rows as one `executemany`: each column's value is prepared for
    the database once when it is the same in every row, else per row (Django compiles every value of
    every row into the SQL, most of the insert's time at 100,000 rows). Signals and returned keys are
    as with bulk_create on SQLite: none, and the primary keys the objects already hold."""
    from django.db import connection

    if not objs:
        return objs
    model = type(objs[0])
    fields = list(model._meta.concrete_fields)
    raw = [[f.pre_save(obj, True) for f in fields] for obj in objs]
    columns: list[list[Any]] = []
    for i, f in enumerate(fields):
        first = raw[0][i]
        if all(row[i] == first for row in raw):
            columns.append([f.get_db_prep_save(first, connection)] * len(objs))
        else:
            columns.append([f.get_db_prep_save(row[i], connection) for row in raw])
    if any(v is None for v in columns[fields.index(model._meta.pk)]):
        raise ValueError("_insert_rows needs primary keys set on the objects (a UUID default does)")
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, list(zip(*columns, strict=True)))
    for obj in objs:
        obj._state.adding = False
    return objs


def _open_requests(h: Harness, count: int, merchant: Any, token: Any) -> list[str]:
    """fixtures.open_requests (the same rows, the same draws from the harness's rng), in one transaction
    and written by `_insert_rows`."""
    from django.db import transaction

    from stablepay.models import PaymentRequest

    t0 = time.perf_counter()
    manager = PaymentRequest.objects
    manager.bulk_create = _insert_rows  # type: ignore[method-assign]
    try:
        with transaction.atomic():
            added = fixtures.open_requests(count, len(h.addresses), merchant, token, h.rng)
    finally:
        del manager.bulk_create
    h.phase_seconds["open requests insert"] += time.perf_counter() - t0
    return added


def _measure(h: Harness, n: int, k: int, phase: str, blocks: int) -> dict[str, Any]:
    base: list[Pass] = []
    new: list[Pass] = []
    rows_before = _transfer_count()
    for _ in range(blocks):
        h.block(k if phase == "steady" else 0)
        b, p = h.both()
        base.append(b)
        if p is not None:
            new.append(p)
    rows_after = _transfer_count()
    paid = k * blocks if phase == "steady" else 0
    cell: dict[str, Any] = {"n": n, "k": k, "phase": phase, "limit": _limit(k if phase == "steady" else 0)}
    cell["baseline"] = _stats(base, paid)
    if len(new) == blocks:
        cell["new"] = _stats(new, paid)
        if rows_before is not None and rows_after is not None:
            cell["new"]["transfer_rows_added"] = rows_after - rows_before
    b = cell["baseline"]
    line = f"[P1] N={n:,} k={k} {phase}: baseline median {b['median']:g} max {b['max']} ({b['median_pass_ms']} ms)"
    if "new" in cell:
        c = cell["new"]
        line += f"; new median {c['median']:g} max {c['max']} ({c['median_pass_ms']} ms)"
    print(line, flush=True)
    return cell


def _warm_up(h: Harness, k: int) -> dict[str, Any]:
    """WINDOW blocks with k payments each, then passes of each design until it reaches the head.

    Not measured: it only leaves k payments in every one of the last WINDOW blocks, and both designs'
    state after reading them, before the measured blocks (scanning it block by block, as the measured
    blocks are, gave the same counts in every cell and made P1 take 755 s instead of 492 s, both on the
    same busy machine)."""
    if k == 0:
        h.anvil.mine(WINDOW)
    else:
        for _ in range(WINDOW):
            h.block(k)
    return {"k": k, "blocks": WINDOW, **h.catch_up_both()}


def _reorg(h: Harness, n: int) -> dict[str, Any]:
    """REORG_DEPTH blocks of SENDERS payments each (pre-signed), scanned by both designs; then
    `anvil_reorg` replaces them, re-including the payments of the first REORG_KEPT senders (each in
    its old block's place) and dropping the others'. The calls of the pass that handles it."""
    from stablepay.dev import chain as devchain

    w3 = h.anvil.w3
    nonces = [int(h.anvil.rpc("eth_getTransactionCount", [s, "pending"]), 16) for s in h.senders]
    signed: list[list[str]] = []  # per block, per sender
    for depth in range(REORG_DEPTH):
        raws: list[str] = [
            devchain.send_transfer_raw(w3, h.token, to, AMOUNT, sender_index=i, nonce=nonces[i] + depth)
            for i, to in enumerate(h.payees(SENDERS))
        ]
        h._anvil_batch([("eth_sendRawTransaction", [raw]) for raw in raws])
        h.anvil.rpc("evm_mine")
        h.both()
        signed.append(raws)
    top = h.head()
    hashes = [h.anvil.rpc("eth_getBlockByNumber", [hex(top - d), False])["hash"] for d in range(REORG_DEPTH)]
    rows_before = _transfer_count()
    kept = [(raw, offset) for offset, raws in enumerate(signed) for raw in raws[:REORG_KEPT]]
    h.anvil.reorg(REORG_DEPTH, kept)
    assert h.head() == top, "anvil_reorg changed the height"
    changed = [h.anvil.rpc("eth_getBlockByNumber", [hex(top - d), False])["hash"] for d in range(REORG_DEPTH)]
    assert all(a != b for a, b in zip(hashes, changed, strict=True)), "anvil_reorg left a block hash unchanged"
    b, p = h.both()
    out: dict[str, Any] = {
        "n": n,
        "depth": REORG_DEPTH,
        "payments_dropped": REORG_DEPTH * (SENDERS - REORG_KEPT),
        "payments_reincluded": REORG_DEPTH * REORG_KEPT,
        "baseline": {
            "calls": b.calls,
            "methods": dict(b.methods),
            "http": b.http,
            "recorded": b.recorded,
            **b.info,
        },
    }
    if p is not None:
        out["new"] = {"calls": p.calls, "methods": dict(p.methods), "http": p.http, "recorded": p.recorded, **p.info}
        rows_after = _transfer_count()
        if rows_before is not None and rows_after is not None:
            out["new"]["transfer_rows_added"] = rows_after - rows_before
        try:
            from stablepay.models import Transfer

            out["new"]["orphaned_rows"] = Transfer.objects.filter(state="orphaned").count()
        except Exception:
            pass
    print(f"[P1] reorg depth {REORG_DEPTH}: baseline {b.calls} calls, new {p.calls if p else 'n/a'}", flush=True)
    return out


def _catch_up(h: Harness, n: int) -> dict[str, Any]:
    """CATCH_UP_BLOCKS empty blocks mined at once, then passes of each design until its cursor reaches
    the head; each design starts with the chunk size its own history left."""
    t0 = time.monotonic()
    for _ in range(CATCH_UP_BLOCKS // MINE_BATCH):
        h.anvil.mine(MINE_BATCH)
    h.phase_seconds["catch-up mining"] += time.monotonic() - t0
    out = {"n": n, "blocks": CATCH_UP_BLOCKS, "baseline_chunk": h.baseline.chunk, **h.catch_up_both()}
    print(f"[P1] catch-up: {out}", flush=True)
    return out


def bench() -> dict[str, Any]:
    t_start = time.monotonic()
    steps: Counter[str] = Counter()  # wall time per step of the run, for the record
    fixtures.setup_django(sqlite_name="p1")
    _fast_sqlite()

    from stablepay.dev import chain as devchain
    from stablepay.models import Chain, PaymentRequest, Token
    from tests.support.services import Anvil

    new_import_error = None
    try:
        from stablepay.chain.rpc import RpcChainReader
        from stablepay.ingest.watcher import scan_chain
    except Exception as exc:  # the rewrite in progress
        new_import_error = f"{exc.__class__.__name__}: {exc}"

    cells: list[dict[str, Any]] = []
    warm_ups: list[dict[str, Any]] = []
    with Anvil(*ANVIL_ARGS) as anvil, running(anvil.url) as proxy, running(anvil.url) as baseline_proxy:
        w3 = anvil.w3
        token_address = devchain.deploy_token(w3, name="Bench HKD", symbol="BHKD", decimals=6)
        for i in range(SENDERS):
            devchain.mint(w3, token_address, devchain.dev_account(i).address, 10**15)
        anvil.set_automine(False)
        chain = Chain.objects.create(
            chain_id=31337, name="Bench", rpc_urls=[proxy.url], confirmations=CONFIRMATIONS, block_time_seconds=1
        )
        token = Token.objects.create(chain=chain, address=token_address, symbol="BHKD", decimals=6, currency="HKD")
        merchant = fixtures.bench_merchant()

        reader = RpcChainReader([proxy.url]) if new_import_error is None else None

        def scan_new() -> Any:
            if reader is None:
                raise RuntimeError(new_import_error)
            return scan_chain(chain=chain, reader=reader)

        h = Harness(anvil, {"new": proxy, "baseline": baseline_proxy}, token_address.lower(), chain, scan_new)
        h.both()  # the first passes start both cursors at the head
        reorg: dict[str, Any] = {}
        catch_up: dict[str, Any] = {}
        steps["set-up (Django, anvil, token, proxies)"] = time.monotonic() - t_start
        for n in NS:
            t0 = time.monotonic()
            added = _open_requests(h, n - len(h.addresses), merchant, token)
            h.addresses += added
            h.watched.update(a.lower() for a in added)
            assert PaymentRequest.objects.count() == n
            steps["open requests"] += time.monotonic() - t0
            if n == NS[-1]:
                t0 = time.monotonic()
                catch_up = _catch_up(h, n)
                steps["catch-up"] = time.monotonic() - t0
            for k in KS:
                t0 = time.monotonic()
                warm_ups.append({"n": n, **_warm_up(h, k)})
                steps["warm-ups"] += time.monotonic() - t0
                t0 = time.monotonic()
                cells.append(_measure(h, n, k, "steady", BLOCKS))
                steps["measured blocks"] += time.monotonic() - t0
                if k and n == NS[-1] and k == KS[-1]:
                    t0 = time.monotonic()
                    reorg = _reorg(h, n)
                    steps["reorg"] += time.monotonic() - t0
                if k:
                    t0 = time.monotonic()
                    cells.append(_measure(h, n, k, "quiet", QUIET))
                    steps["measured blocks"] += time.monotonic() - t0
        h.close()
        mismatch = h.mismatch
        new_error = h.new_error
        phases = {
            "by step": {k: round(v, 1) for k, v in steps.items()},
            "by activity": {k: round(v, 1) for k, v in sorted(h.phase_seconds.items())},
        }
        print(f"[P1] seconds {phases}", flush=True)

    result = _result(cells, warm_ups, reorg, catch_up, new_error, mismatch, time.monotonic() - t_start)
    result["raw"]["phase_seconds"] = phases
    return result


def _result(
    cells: list[dict[str, Any]],
    warm_ups: list[dict[str, Any]],
    reorg: dict[str, Any],
    catch_up: dict[str, Any],
    new_error: str | None,
    mismatch: int,
    seconds: float,
) -> dict[str, Any]:
    steady = [c for c in cells if c["phase"] == "steady"]
    quiet = [c for c in cells if c["phase"] == "quiet"]
    new_ok = new_error is None and all("new" in c for c in cells)
    worst = next(c for c in cells if c["n"] == NS[-1] and c["k"] == KS[-1] and c["phase"] == "steady")
    calls_ok = new_ok and all(c["new"]["max"] <= c["limit"] for c in cells)

    def _paid_ok(c: dict[str, Any]) -> bool:
        rows = c["new"].get("transfer_rows_added")
        return rows is None or rows == c["new"]["expected_recorded"]

    paid_ok = new_ok and all(_paid_ok(c) for c in cells)
    base_paid_ok = all(c["baseline"]["recorded"] == c["baseline"]["expected_recorded"] for c in cells)

    def _grid(design: str, key: str) -> str:
        parts = []
        for n in NS:
            row = [c for c in steady if c["n"] == n and design in c]
            parts.append(f"N={n:,}: " + " / ".join(f"{c[design]['median']:g}|{c[design][key]}" for c in row))
        return "; ".join(parts)

    def _quiet(design: str) -> str:
        worst_q = [c[design]["max"] for c in quiet if design in c]
        return f"max {max(worst_q)}" if worst_q else "n/a"

    def _events(design: str) -> str:
        r = reorg.get(design)
        c = catch_up.get(design)
        text = f"3-block reorg pass {r['calls']} calls (depth seen {r.get('reorg_depth')})" if r else "reorg n/a"
        if c:
            text += (
                f"; catch-up of {CATCH_UP_BLOCKS:,} blocks {c['calls']} calls in {c['passes']} pass(es), "
                f"{c['seconds']:.2f} s"
            )
        return text

    if new_ok:
        figure = (
            f"new design, calls per new block median|max for k = 0 / 1 / 10 payments per block: "
            f"{_grid('new', 'max')}; new blocks without payments after blocks with payments: {_quiet('new')}; "
            f"{_events('new')}"
        )
        ratio = (
            f"{worst['baseline']['median'] / worst['new']['median']:.0f}x fewer calls per new block (median "
            f"{worst['baseline']['median']:g} vs {worst['new']['median']:g}; max {worst['baseline']['max']} vs "
            f"{worst['new']['max']}) at N=100,000, 10 payments per block after 128 such blocks"
        )
    else:
        figure = f"new design failed: {new_error or 'not measured'}"
        ratio = "n/a (new design not measured)"
    methods_new = worst["new"]["per_method_mean"] if "new" in worst else {}
    return {
        "id": "P1",
        "what": "JSON-RPC calls per new block (each batch element counts)",
        "workload": (
            f"anvil, 1 token, confirmations {CONFIRMATIONS}, a counting proxy per design; open requests N = "
            f"{', '.join(f'{n:,}' for n in NS)} x payments per block k = {', '.join(map(str, KS))}: "
            f"{WINDOW} warm-up blocks (read in one catch-up) then {BLOCKS} measured blocks per cell, one pass "
            f"per new block, "
            f"{QUIET} blocks without payments after each k > 0; a {REORG_DEPTH}-block reorg with payments; "
            f"catch-up of {CATCH_UP_BLOCKS:,} blocks"
        ),
        "figure": figure,
        "baseline": (
            f"pre-issue-14 design (stored-hash re-check of every recent block with transfers, "
            f"bench/baseline_scan.py), median|max per new block for k = 0 / 1 / 10: {_grid('baseline', 'max')}; "
            f"without payments after blocks with payments: {_quiet('baseline')}; {_events('baseline')}"
        ),
        "ratio": ratio,
        "target": "new design: <= 2 calls per new block without new payments, <= 3 with them, in every cell",
        "met": bool(calls_ok and paid_ok),
        "notes": (
            "calls counted by a proxy per design, each in its own process (bench/rpc_counter.py), each batch "
            "element once; "
            f"worst cell's mean calls per block by method, new design: {methods_new}, baseline: "
            f"{worst['baseline']['per_method_mean']}; every payment recorded: new design {paid_ok}, baseline "
            f"{base_paid_ok}; baseline passes whose own count differed from the proxy's: {mismatch}; "
            f"the reorg replaces the last {REORG_DEPTH} blocks at the same height (anvil_reorg), dropping "
            f"{reorg.get('payments_dropped')} payments and re-including {reorg.get('payments_reincluded')}; "
            f"catch-up blocks are empty (anvil_mine), at N=100,000 before its cells, each design starting with "
            f"the chunk its own history left (baseline {catch_up.get('baseline_chunk')})"
            + (f"; NEW DESIGN ERROR: {new_error}" if new_error else "")
        ),
        "raw": {"cells": cells, "warm_ups": warm_ups, "reorg": reorg, "catch_up": catch_up, "new_error": new_error},
        "seconds": round(seconds, 1),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(bench(), indent=2))
