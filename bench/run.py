"""Run the benchmarks and write bench/results/latest.json and bench/results/latest.md.

    python -m bench.run            # every benchmark
    python -m bench.run P2         # only some; the others keep their last results in latest.json

Each benchmark runs in its own process, and each figure is measured in the same run as its baseline.
Scratch files go to bench/results/tmp/.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
LATEST_JSON = RESULTS / "latest.json"
LATEST_MD = RESULTS / "latest.md"
BUDGET_S = 15 * 60
RECORD = "[bench-record] "


# Each benchmark is a module of bench/ with a `bench() -> dict` function, imported in its own process.
BENCHMARKS = {
    "P1": "rpc_calls",
    "P2": "ingest",
    "P3": "latency",
    "P4": "checkout_api",
    "P5": "reconcile_scale",
    "P6": "memory",
    "P7": "load",
    "P8": "page_weight",
    "P9": "treasury_gas",
}


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": ram_gb,
        "python": platform.python_version(),
    }


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"Run {doc['date']} on {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, "
        f"{m['platform']}, Python {m['python']}; `make bench` took {doc['seconds']:.0f} s.",
        "Every figure's baseline was measured in the same run.",
        "",
        "| # | what | workload | figure | baseline | ratio | target | met? |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key in sorted(doc["results"]):
        r = doc["results"][key]
        met = "yes" if r["met"] else "**no**"
        cells = [r["id"], r["what"], r["workload"], r["figure"], r["baseline"], r["ratio"], r["target"], met]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines.append("")
    for key in sorted(doc["results"]):
        r = doc["results"][key]
        if r.get("notes"):
            lines.append(f"- **{r['id']}** ({r.get('date', doc['date'])}, {r['seconds']:.0f} s): {_cell(r['notes'])}")
    lines.append("")
    return "\n".join(lines)


def _in_child(key: str) -> dict[str, Any]:
    """Run one benchmark in a fresh interpreter (each configures Django on its own database) and take
    its record from the last line of its output; the lines before it are passed through."""
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.run", "--child", key], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    assert child.stdout is not None
    last = ""
    for line in child.stdout:
        if line.startswith(RECORD):
            last = line[len(RECORD) :]
        else:
            print(line, end="", flush=True)
    if child.wait() != 0 or not last:
        raise SystemExit(f"[bench] {key} failed (exit {child.returncode})")
    result: dict[str, Any] = json.loads(last)
    return result


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        module = importlib.import_module(f"bench.{BENCHMARKS[argv[1]]}")
        print(RECORD + json.dumps(module.bench()), flush=True)
        return 0
    selected = [a.upper() for a in argv] or list(BENCHMARKS)
    unknown = [s for s in selected if s not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    (RESULTS / "tmp").mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"results": {}}
    if LATEST_JSON.exists():
        doc = json.loads(LATEST_JSON.read_text())
    date = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    t0 = time.monotonic()
    for key in selected:
        print(f"[bench] {key} ...", flush=True)
        result = _in_child(key)
        result["date"] = date
        doc["results"][key] = result
        print(f"[bench] {key}: {result['figure']} (met: {result['met']}, {result['seconds']:.0f} s)", flush=True)
    doc.update(date=date, machine=machine(), seconds=round(time.monotonic() - t0, 1), selected=selected)
    LATEST_JSON.write_text(json.dumps(doc, indent=2) + "\n")
    LATEST_MD.write_text(render(doc))
    print(render(doc))
    print(f"[bench] wrote {LATEST_JSON.relative_to(Path.cwd())} and {LATEST_MD.name} in {doc['seconds']:.0f} s")
    if doc["seconds"] > BUDGET_S:
        print(f"[bench] over the {BUDGET_S // 60}-minute budget", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
