"""The proof that stablepay is an installable app: a host nobody wrote for it.

Builds the wheel, installs it in a fresh virtualenv, makes a brand-new project with `django-admin
startproject`, and follows README.md's "Add stablepay to your store" step by step, taking the code from the
README itself (so the README cannot drift from what works): settings, URLs, the base template, the order
model, the checkout call and the signal receiver. Then it registers a token deployed on anvil with
`stablepay_setup`, creates a payment request for one of the project's orders through `stablepay.interface`,
pays it on chain, runs the watcher (`stablepay_scan --once`) and sees the project's own receiver mark the
order paid, and the payment page served with the project's own base template.

Fast and offline: the virtualenv reaches the already-installed dependencies through a .pth file and the
wheel goes in with `--no-deps --no-index` (then `pip check` proves its declared dependencies are met);
stablepay itself is imported from the wheel, never from this repository. SQLite, as startproject leaves it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import site
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from stablepay.dev import chain as devchain
from tests.support.local_chain import MERCHANT_MNEMONIC, account_xpub
from tests.support.services import Anvil, free_port, stop_process

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Add stablepay to your store"
# Files the project already has (startproject): the README's code goes at their end. Others are written whole.
APPENDED = {"mystore/settings.py", "mystore/urls.py"}
BASE_MARKER = 'class="mystore-header"'  # in the README's templates/base.html, not in any stablepay template
REFERENCE = "MY-1001"


def readme_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION + "\n")
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end != -1 else len(text)]


def code_files(section: str) -> dict[str, str]:
    """The README's code blocks that name a file ("```python orders/models.py"): {file: code}."""
    return {
        m["path"]: m["code"] for m in re.finditer(r"^```\w+ (?P<path>\S+)\n(?P<code>.*?)^```", section, re.M | re.S)
    }


def shell_commands(section: str) -> list[str]:
    """The commands in the README's ```sh blocks, without their comments."""
    blocks = re.findall(r"^```sh\n(.*?)^```", section, re.M | re.S)
    return [line.split("#")[0].strip() for block in blocks for line in block.splitlines() if line.strip()]


def run(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def fresh_virtualenv(venv: Path, env: dict[str, str]) -> Path:
    """A virtualenv that sees the running interpreter's installed packages (a .pth file), but not this repo."""
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=venv.parent, env=env)
    python = venv / "bin" / "python"
    purelib = Path(
        run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=venv, env=env).strip()
    )
    (purelib / "_installed_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n", encoding="utf-8")
    return python


def shell(python: Path, project: Path, env: dict[str, str], code: str) -> Any:
    """Run code in the project (`manage.py shell -c`); it prints one JSON line last."""
    out = run([str(python), "manage.py", "shell", "-c", code], cwd=project, env=env)
    return json.loads(out.strip().splitlines()[-1])


def test_a_fresh_project_takes_a_payment_by_following_the_readme(tmp_path: Path) -> None:
    section = readme_section()
    files = code_files(section)
    commands = shell_commands(section)
    for expected in [
        "python manage.py startapp orders",
        "python manage.py makemigrations orders",
        "python manage.py migrate",
        "python manage.py stablepay_setup setup.json",
        "python manage.py stablepay_scan",
    ]:
        assert expected in commands, f"README's section no longer says `{expected}`"
    assert {"mystore/settings.py", "mystore/urls.py", "templates/base.html", "orders/receivers.py"} <= set(files)

    # Nothing of this process's set-up leaks into the new project: no settings module, database, path or
    # STABLEPAY_* variable.
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}

    # 1. Install: the wheel, into a fresh virtualenv.
    dist = tmp_path / "dist"
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(REPO)],
        cwd=tmp_path,
        env=env,
        timeout=180,
    )
    (wheel,) = dist.glob("django_stablepay-*.whl")
    python = fresh_virtualenv(tmp_path / "venv", env)
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    run([*pip, "install", "--no-deps", "--no-index", "-q", str(wheel)], cwd=tmp_path, env=env)
    run([*pip, "check"], cwd=tmp_path, env=env)

    project = tmp_path / "mystore"
    project.mkdir()
    run([str(python), "-m", "django", "startproject", "mystore", "."], cwd=project, env=env)  # django-admin
    manage = [str(python), "manage.py"]
    run([*manage, "startapp", "orders"], cwd=project, env=env)

    # 2-5, 7, 8: settings, URLs, the base template, the order, the checkout call and the receiver, from the README.
    for name, code in files.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name in APPENDED:
            path.write_text(path.read_text(encoding="utf-8") + "\n" + code, encoding="utf-8")
        else:
            path.write_text(code, encoding="utf-8")

    # 6. Migrate, and register a token deployed on a local chain and the store's merchant.
    run([*manage, "makemigrations", "orders"], cwd=project, env=env)
    run([*manage, "migrate"], cwd=project, env=env)
    with Anvil() as anvil:
        w3 = anvil.w3
        token = devchain.deploy_token(w3, name="HKD Stablecoin", symbol="HKDX", decimals=6)
        payer = 1
        devchain.mint(w3, token, devchain.dev_account(payer).address, 10**12)
        setup = {
            "chains": [
                {
                    "chain_id": 31337,
                    "name": "Local",
                    "rpc_urls": [anvil.url],
                    "confirmations": 3,
                    "block_time_seconds": 1,
                    "explorer_tx_url": None,
                }
            ],
            "tokens": [{"chain_id": 31337, "address": token, "symbol": "HKDX", "decimals": 6, "currency": "HKD"}],
            "merchants": [
                {
                    "slug": "mystore",
                    "name": "My Store",
                    "xpub": account_xpub(MERCHANT_MNEMONIC),
                    "api_key": secrets.token_urlsafe(32),  # made afresh: no key in the repo
                    "payment_tolerance_percent": "0",
                    "expiry_minutes": 15,
                    "webhook_url": None,
                    "webhook_secret": None,
                }
            ],
            "fx": {"HKD/MOP": "1.03", "USD/HKD": "7.80"},
        }
        (project / "setup.json").write_text(json.dumps(setup), encoding="utf-8")
        run([*manage, "stablepay_setup", "setup.json"], cwd=project, env=env)

        # 7. Checkout: an order of this project, and its payment request through stablepay.interface.
        created = shell(
            python,
            project,
            env,
            "import json, stablepay\n"
            "from decimal import Decimal\n"
            "from orders.checkout import order_checkout\n"
            "from orders.models import Order\n"
            "from stablepay.interface import checkout_options, Merchant, payment_page_path\n"
            f"order = Order.objects.create(reference={REFERENCE!r}, total=Decimal('88.00'), currency='HKD')\n"
            "options = checkout_options(merchant=Merchant.objects.get(slug='mystore'))\n"
            "pr = order_checkout(order, chain_id=options[0].chain_id, token_symbol=options[0].symbol)\n"
            "print(json.dumps({'id': str(pr.pk), 'pay_to': pr.pay_to, 'due': str(pr.amount_due_base_units),"
            " 'status': pr.status, 'page': payment_page_path(pr.pk), 'stablepay': stablepay.__file__,"
            " 'options': [o.value for o in options]}))",
        )
        assert created["options"] == ["31337:HKDX"]
        assert created["status"] == "open"
        assert created["due"] == str(88 * 10**6)  # HKD 88.00 in a 6-decimal HKD coin
        assert Path(created["stablepay"]).is_relative_to(tmp_path / "venv"), created["stablepay"]
        assert not Path(created["stablepay"]).is_relative_to(REPO)

        # The shopper pays from their wallet; two more blocks make the chain's three confirmations.
        devchain.transfer(w3, token, created["pay_to"], int(created["due"]), sender_index=payer)
        anvil.mine(2)

        # 9. The watcher, one pass.
        run([*manage, "stablepay_scan", "--once"], cwd=project, env=env)

    after = shell(
        python,
        project,
        env,
        "import json\n"
        "from orders.models import Order\n"
        "from stablepay.interface import payment_request_get, payment_timeline\n"
        f"order = Order.objects.get(reference={REFERENCE!r})\n"
        "pr = payment_request_get(order.payment_request_id)\n"
        "print(json.dumps({'order': order.status, 'request': pr.status,"
        " 'timeline': [e.status for e in payment_timeline(pr.pk)]}))",
    )
    assert after["request"] == "paid"
    assert after["order"] == "paid", "the project's own signal receiver did not mark its order paid"
    assert after["timeline"][0] == "open" and after["timeline"][-1] == "paid"

    # The payment page, served by the project, in the project's own base template.
    port = free_port()
    server = subprocess.Popen(
        [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}{created['page']}"
        deadline = time.monotonic() + 30
        while True:
            try:
                page = requests.get(url, timeout=5)
                break
            except requests.ConnectionError:
                assert server.poll() is None, f"runserver exited: {server.stderr.read() if server.stderr else ''}"
                assert time.monotonic() < deadline, "runserver did not answer within 30 s"
                time.sleep(0.2)
        assert page.status_code == 200
        html = page.text
        assert BASE_MARKER in html, "the payment page did not extend the project's base.html"
        assert "· My Store</title>" in html
        assert REFERENCE in html
        assert 'data-status="paid"' in html
        stylesheet = re.search(r'href="([^"]*stablepay/pay\.css)"', html)
        assert stylesheet, "the page links no stablepay stylesheet"
        assert requests.get(f"http://127.0.0.1:{port}{stylesheet[1]}", timeout=5).status_code == 200  # from the wheel
    finally:
        stop_process(server, timeout_s=5)
        if server.stderr is not None:
            server.stderr.close()
