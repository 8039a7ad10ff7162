"""gunicorn, the production server, in a subprocess on the test database: for tests that need real
worker processes or the settings exactly as the environment gives them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.services import _die_with_parent, free_port, stop_process

REPO_ROOT = Path(__file__).resolve().parents[2]
GUNICORN = [sys.executable, "-m", "gunicorn", "shop.wsgi", "-w", "3", "-k", "gthread", "--threads", "8"]


class Gunicorn:
    """3 worker processes x 8 threads on 127.0.0.1; `ready_path` answers (any status) once it serves."""

    def __init__(self, env: dict[str, str], log: Path, *, ready_path: str = "/api/v1/tokens/") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("w") as sink:
            self.proc = subprocess.Popen(
                [*GUNICORN, "-b", f"127.0.0.1:{self.port}"],
                cwd=REPO_ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=sink,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{self.url}{ready_path}", timeout=5, allow_redirects=False)
                return
            except requests.RequestException:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(f"gunicorn did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        stop_process(self.proc, timeout_s=10)
