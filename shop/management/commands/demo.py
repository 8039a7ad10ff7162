"""`manage.py demo`: the whole store on one machine with no servers (what `make demo` runs).

Starts a local anvil chain, deploys the demo stablecoins, registers them with `stablepay_setup`,
seeds both storefronts and demo users, then runs the web server and the embedded watcher until
Ctrl-C, which stops everything it started. The demo database is rebuilt on every start so it
always matches the fresh chain.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bip_utils import Bip32Secp256k1, Bip39MnemonicGenerator, Bip39SeedGenerator, Bip39WordsNum
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from web3 import Web3
from web3.types import RPCEndpoint

from stablepay.dev import chain as devchain
from stablepay.dev.second_factor import DEMO_TOTP_KEY_BASE32, give_demo_devices
from stablepay.interface import Merchant

ANVIL = Path(settings.BASE_DIR) / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
DEMO_DIR = Path(settings.BASE_DIR) / ".demo"
TOKENS = [
    ("HKD Stablecoin (demo)", "HKDX", 6, "HKD"),
    ("USD Coin (demo)", "USDC", 6, "USD"),
    ("Tether USD (demo)", "USDT", 6, "USD"),
]
PAYERS = range(1, 6)
FUNDING = 1_000_000 * 10**6  # one million of each token per demo payer account


def demo_xpub() -> str:
    """A fresh merchant wallet for this demo run; only its xpub is kept, the mnemonic is thrown away."""
    mnemonic = Bip39MnemonicGenerator().FromWordsNumber(Bip39WordsNum.WORDS_NUM_12)
    root = Bip32Secp256k1.FromSeed(Bip39SeedGenerator(mnemonic).Generate())
    return str(root.DerivePath("m/44'/60'/0'").PublicKey().ToExtended())


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM both stop the demo cleanly, even where SIGINT was inherited as ignored."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


class Command(BaseCommand):
    help = "Run the demo store on a local chain: web server + watcher, Ctrl-C stops everything."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--chain-port", type=int, default=int(os.environ.get("ANVIL_PORT", "8545")))
        parser.add_argument("--block-time", type=int, default=1)

    def handle(self, *args: Any, **options: Any) -> None:
        if not ANVIL.exists():
            raise CommandError("anvil is missing: run `npm ci` (make demo does it for you)")
        DEMO_DIR.mkdir(exist_ok=True)
        _stop_on_signals()
        children: list[subprocess.Popen[Any]] = []
        try:
            anvil, rpc_url = self._start_anvil(options["chain_port"])
            children.append(anvil)
            self._reset_database()
            api_key = self._register(rpc_url)
            # Contracts are deployed instantly in automine mode; from here blocks come on a timer.
            Web3(Web3.HTTPProvider(rpc_url)).provider.make_request(
                RPCEndpoint("evm_setIntervalMining"), [options["block_time"]]
            )
            self._seed_users()
            self._seed_second_factors()
            env = {
                **os.environ,
                "STABLEPAY_DEMO": "true",
                "DEBUG": os.environ.get("DEBUG", "true"),
                "STABLEPAY_BASE_URL": f"http://127.0.0.1:{options['port']}",
                # Webhooks may go to a receiver on this machine (CONTRACT §2), and nowhere else that is local.
                "STABLEPAY_WEBHOOK_ALLOWED_HOSTS": os.environ.get(
                    "STABLEPAY_WEBHOOK_ALLOWED_HOSTS", "localhost,127.0.0.1,::1"
                ),
            }
            env.pop("REDIS_URL", None)
            manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
            children.append(subprocess.Popen([*manage, "stablepay_scan"], env=env))
            children.append(
                subprocess.Popen([*manage, "runserver", f"127.0.0.1:{options['port']}", "--noreload"], env=env)
            )
            self._banner(options["port"], rpc_url, api_key)
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
            raise CommandError("a demo process stopped unexpectedly; see the output above")
        except KeyboardInterrupt:
            self.stdout.write("\nStopping the demo...")
        finally:
            for child in reversed(children):
                if child.poll() is None:
                    child.send_signal(signal.SIGINT)
            for child in reversed(children):
                try:
                    child.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    child.kill()
            self.stdout.write("Demo stopped.")

    def _start_anvil(self, port: int) -> tuple[subprocess.Popen[str], str]:
        log = (DEMO_DIR / "anvil.log").open("w")
        process = subprocess.Popen(
            [str(ANVIL), "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        deadline = time.monotonic() + 20
        for line in process.stdout:
            log.write(line)
            match = re.search(r"Listening on 127\.0\.0\.1:(\d+)", line)
            if match:
                break
            if time.monotonic() > deadline:
                break
        else:
            match = None
        if not match:
            process.kill()
            raise CommandError(f"anvil did not start on port {port} (is it taken? set ANVIL_PORT); see {log.name}")
        # Keep draining anvil's output into the log so its pipe never fills.
        threading.Thread(target=lambda: [log.write(line) for line in process.stdout or []], daemon=True).start()
        return process, f"http://127.0.0.1:{match.group(1)}"

    def _reset_database(self) -> None:
        engine = settings.DATABASES["default"]["ENGINE"]
        name = Path(str(settings.DATABASES["default"]["NAME"]))
        if engine.endswith("sqlite3") and name.exists():
            name.unlink()
        call_command("migrate", verbosity=0)

    def _register(self, rpc_url: str) -> str:
        w3 = Web3(Web3.HTTPProvider(rpc_url))
        tokens = []
        for name, symbol, decimals, currency in TOKENS:
            address = devchain.deploy_token(w3, name=name, symbol=symbol, decimals=decimals)
            for payer in PAYERS:
                devchain.mint(w3, address, devchain.dev_account(payer).address, FUNDING)
            tokens.append(
                {"chain_id": 31337, "address": address, "symbol": symbol, "decimals": decimals, "currency": currency}
            )
        api_key = "demo_" + secrets.token_urlsafe(32)
        document = {
            "chains": [
                {
                    "chain_id": 31337,
                    "name": "Local Anvil",
                    "rpc_urls": [rpc_url],
                    "ws_url": rpc_url.replace("http://", "ws://"),
                    "confirmations": 3,
                    "block_time_seconds": 1,
                    "explorer_tx_url": None,
                }
            ],
            "tokens": tokens,
            "merchants": [
                {
                    "slug": "demo",
                    "name": "Harbour & Co. (demo)",
                    "xpub": demo_xpub(),
                    "api_key": api_key,
                    "payment_tolerance_percent": "0.5",
                    "expiry_minutes": 15,
                    "webhook_url": None,
                    "webhook_secret": None,
                }
            ],
            "fx": {"HKD/MOP": "1.03", "USD/HKD": "7.80"},
        }
        path = DEMO_DIR / "setup.json"
        path.write_text(json.dumps(document, indent=2))
        path.chmod(0o600)
        call_command("stablepay_setup", str(path))
        call_command("shop_seed", merchant="demo")
        return api_key

    def _seed_users(self) -> None:
        users = get_user_model()
        merchant_user = users.objects.create_user("merchant", email="merchant@example.com", password="merchant-demo")
        Merchant.objects.get(slug="demo").members.add(merchant_user)
        stablepay = Permission.objects.filter(content_type__app_label="stablepay")
        viewing = stablepay.filter(codename__startswith="view_")  # the admin's read-only pages
        # Ops (issue 16 part 3): the console, four-eyes approval of refunds, reading everything, and the
        # screening allow/deny list they keep in the admin; not where money goes (xpub, FX, limits).
        ops_needs = stablepay.filter(codename__in=["ops_console", "ops_approve"]) | stablepay.filter(
            codename__in=["add_screeninglistentry", "change_screeninglistentry", "delete_screeninglistentry"]
        )
        for name in ("ops", "ops2"):  # two ops users, so four-eyes approval can be tried
            ops = users.objects.create_user(name, password=f"{name}-demo", is_staff=True)
            ops.user_permissions.add(*ops_needs, *viewing)
        # Where money goes takes two people (stablepay/governance/change_control.py): "admin" proposes changes to a
        # merchant's xpub, tolerance and limits and to FX rates in the admin; "treasurer" approves or rejects
        # them on the ops console's changes page, and can change nothing itself.
        admin = users.objects.create_user("admin", password="admin-demo", is_staff=True)
        admin.user_permissions.add(
            # change_token: clearing a token's suspension after an upgrade was reviewed (the ops banner's advice).
            *stablepay.filter(
                codename__in=["add_merchant", "change_merchant", "add_fxrate", "change_fxrate", "change_token"]
            ),
            *viewing,
        )
        treasurer = users.objects.create_user("treasurer", password="treasurer-demo")
        treasurer.user_permissions.add(*stablepay.filter(codename="approve_change"), *viewing)

    def _seed_second_factors(self) -> None:
        """Every demo user who must have a second factor (staff, ops, anyone who can change where money goes;
        stablepay/accounts/second_factor.py) gets the demo authenticator: a TOTP device with the published demo key
        (stablepay/dev/second_factor.py), whose current code `stablepay_demo_code USER` prints."""
        give_demo_devices()

    def _banner(self, port: int, rpc_url: str, api_key: str) -> None:
        url = f"http://127.0.0.1:{port}/"
        self.stdout.write(self.style.SUCCESS(f"\n  stablepay demo is running: {url}\n"))
        self.stdout.write(f"  Macau store:      {url}store/mo/")
        self.stdout.write(f"  Hong Kong store:  {url}store/hk/")
        self.stdout.write(f"  Local chain:      {rpc_url} (chain id 31337, 1 s blocks)")
        self.stdout.write(f"  Merchant API key: {api_key}")
        self.stdout.write(f"  Merchant:         {url}merchant/ (merchant / merchant-demo)")
        self.stdout.write(f"  Ops console:      {url}ops/ (ops / ops-demo, ops2 / ops2-demo)")
        self.stdout.write(f"  Admin:            {url}admin/ (admin / admin-demo proposes xpub, FX and limit changes)")
        self.stdout.write(f"  Approve changes:  {url}ops/changes/ (treasurer / treasurer-demo)")
        python = os.path.relpath(sys.executable) if sys.executable.startswith(str(settings.BASE_DIR)) else "python"
        pad = " " * 20
        self.stdout.write("  Second factor:    ops users and staff confirm each sign-in with a six-digit code")
        self.stdout.write(f"{pad}today's code: STABLEPAY_DEMO=true {python} manage.py stablepay_demo_code ops")
        self.stdout.write(f"{pad}(demo only: any authenticator app with the published key {DEMO_TOTP_KEY_BASE32})")
        self.stdout.write(f"{pad}Passkeys need a host name: open http://localhost:{port}/ to add one.")
        self.stdout.write("  Press Ctrl-C to stop.\n")
