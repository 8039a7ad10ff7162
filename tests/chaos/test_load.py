"""Load (issues 6 and 14): 30 concurrent shoppers paying while the chain mines a block a second.

The scenario is tests/chaos/load.py (the P7 benchmark runs the same one): each shopper creates a payment
request through the API on gunicorn, pays it from its own account and polls it until it reads `paid`,
while a sampler reads the watcher lag from /healthz and against the node's head every 0.5 s.

Always required (`make test`): no errors (no 5xx, no failed call, every payment read `paid` within
30 s), no traceback in gunicorn's log, and nothing lost: every request created is `paid` with its
amount, every payment sent is recorded exactly once as a confirmed transfer on its request (and no
other transfer is recorded), with one paid event, signal and webhook per request.

The timing figures depend on the machine, so they are asserted only with LOAD_ASSERT_TIMING=1, which
`make chaos` sets: a watcher lag of at most 2 blocks in every sample (as /healthz reports it and as
measured against the node's head), at least one payment per shopper per 10 s, ~2 lag samples a second.
Without it they are measured and reported only; `make bench BENCH=P7` reports them too.

LOAD_SHOPPERS (default 30) and LOAD_SECONDS (default 60; 120 with LOAD_ASSERT_TIMING=1) change the
run; the figures go to test-artifacts/load-report.json either way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.chaos.load import run_load
from tests.support.services import REPO_ROOT

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

ASSERT_TIMING = os.environ.get("LOAD_ASSERT_TIMING", "") == "1"
SHOPPERS = int(os.environ.get("LOAD_SHOPPERS", "30"))
DURATION_S = float(os.environ.get("LOAD_SECONDS", "120" if ASSERT_TIMING else "60"))
ARTIFACTS = REPO_ROOT / "test-artifacts"


def test_30_shoppers_on_1s_blocks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = run_load(tmp_path / "stack", shoppers=SHOPPERS, duration_s=DURATION_S)
    run.report["timing_asserted"] = ASSERT_TIMING
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "load-report.json").write_text(json.dumps(run.report, indent=2))
    with capsys.disabled():
        print("\nload report (test-artifacts/load-report.json):", json.dumps(run.report))
        if run.correctness or (ASSERT_TIMING and run.timing):
            print(run.tails)
        elif run.timing:
            print("timing figures outside the targets (not asserted without LOAD_ASSERT_TIMING=1):", run.timing)
    assert not run.correctness, run.correctness
    if ASSERT_TIMING:
        assert not run.timing, run.timing
