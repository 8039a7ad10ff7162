"""No secret in the repository: every file `git ls-files` lists is scanned for private keys, API keys and
tokens, BIP-39 mnemonics and random-looking strings; and the settings take SECRET_KEY and the secrets
key from the environment, with no value in the repo.

The allowlist is short and each entry says why it is safe. The scanner is itself tested on planted
secrets (freshly generated, so they are in no allowlist), so a scan that finds nothing means something.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import eth_account
import pytest
from cryptography.fernet import Fernet
from eth_account import Account

from stablepay.dev.chain import DEV_MNEMONIC

REPO = Path(__file__).resolve().parents[2]
WORDLIST = Path(eth_account.__file__).parent / "hdaccount" / "wordlist" / "english.txt"  # BIP-39's list
BIP39_WORDS = frozenset(WORDLIST.read_text().split())
THIS_FILE = str(Path(__file__).resolve().relative_to(REPO))  # holds the allowlist itself

# Each entry: the value, the files it may appear in, and why it is safe.
ALLOWED_MNEMONICS: dict[str, tuple[set[str], str]] = {
    DEV_MNEMONIC: (
        {"stablepay/dev/chain.py"},
        "anvil's (and hardhat's) built-in dev mnemonic, printed by anvil at every start and in Foundry's docs; "
        "its accounts hold value only on throwaway local chains (the demo and the tests).",
    ),
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about": (
        {"tests/support/local_chain.py", "bench/checkout_api.py", THIS_FILE},
        "BIP-39's first published test vector (trezor/python-mnemonic vectors.json); the tests and the benchmark "
        "derive a watch-only merchant xpub from it on a local chain.",
    ),
    "legal winner thank year wave sausage worth useful legal winner thank yellow": (
        {"tests/support/local_chain.py", THIS_FILE},
        "BIP-39's second published test vector; the tests' second merchant's xpub, watch-only, local chain.",
    ),
    "letter advice cage absurd amount doctor acoustic avoid letter advice cage above": (
        {"tests/browser/test_ops_changes.py", THIS_FILE},
        "BIP-39's third published test vector; the new wallet a merchant moves to in the change-control test "
        "(watch-only xpub, local chain).",
    ),
    "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong": (
        {"tests/ops/test_where_money_goes.py", THIS_FILE},
        "BIP-39's fourth published test vector; the attacker's wallet in the change-control test (watch-only "
        "xpub, local chain).",
    ),
}


def _anvil_dev_keys() -> set[str]:
    """The private keys of the dev mnemonic's first 10 accounts (the ones anvil funds): as public as it."""
    Account.enable_unaudited_hdwallet_features()
    return {
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key.hex().removeprefix("0x").lower()
        for i in range(10)
    }


# ERC-1967's storage slots (keccak256("eip1967.proxy.implementation") - 1 and "...admin" - 1): public
# constants of the standard that contracts/TestProxy.sol declares, not keys.
ERC1967_SLOTS = {
    "360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc",
    "b53127684a568b3173ae13b9f8a6016e243e63b6e8ee1178d6a717850b5d6103",
}
ALLOWED_HEX_KEYS = _anvil_dev_keys() | ERC1967_SLOTS

# Tokens and keys with a recognisable shape.
SHAPED = {
    "PEM private key": re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "Stripe live key": re.compile(r"\b(?:sk|rk)_live_[A-Za-z0-9]{16,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "npm token": re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"),
    "private key in a URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s:@]{8,}@"),
    "Fernet key or token": re.compile(r"\bgAAAAA[A-Za-z0-9_-]{60,}={0,2}"),
    "extended private key": re.compile(r"\b[xtyz]prv[1-9A-HJ-NP-Za-km-z]{100,}"),
}
# Hex of 16 bytes or more (an Ethereum private key is 32) named as a key, secret or seed on the same line.
HEX_SECRET = re.compile(
    r"(?i)(?:priv|secret|key|seed|token|passw)[^\n]{0,40}?(?<![0-9a-f])(?:0x)?([0-9a-f]{32,})(?![0-9a-f])"
)
MNEMONIC = re.compile(r"\b[a-z]{3,8}(?: [a-z]{3,8}){11,23}\b")
QUOTED = re.compile(r"""["'`]([A-Za-z0-9+/=_.~-]{20,128})["'`]""")
ASCENDING_RUN = re.compile(
    r"(?:0(?=1)|1(?=2)|2(?=3)|3(?=4)|4(?=5)|5(?=6)|6(?=7)|7(?=8)|8(?=9)|a(?=b)|b(?=c)|c(?=d)|d(?=e)|e(?=f)|f(?=g)"
    r"|g(?=h)|h(?=i)|i(?=j)|j(?=k)|k(?=l)|l(?=m)|m(?=n)|n(?=o)|o(?=p)|p(?=q)|q(?=r)|r(?=s)|s(?=t)|t(?=u)|u(?=v)"
    r"|v(?=w)|w(?=x)|x(?=y)|y(?=z)){2,}.",
    re.I,
)
# Generated files whose random-looking strings are content hashes of public artifacts, not secrets.
HASH_ONLY_FILES = {
    "package-lock.json": "npm's `integrity` (sha512) and `resolved` hashes of public npm tarballs",
}
HASH_PREFIXES = ("sha512-", "sha384-", "sha256-", "sha1-")


@dataclass(frozen=True)
class Finding:
    path: str
    kind: str
    excerpt: str


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


HEXISH = re.compile(r"(?:0x)?[0-9a-fA-F]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PUBLIC_KEYS = ("xpub", "ypub", "zpub", "tpub")  # extended *public* keys: watch-only by design


def looks_random(value: str) -> bool:
    """A generated token rather than a readable value. Not random: identifiers (letters and _ only: a
    camelCase RPC method, an error name), dotted names, hex and UUIDs (addresses, hashes, ids: hex keys
    are HEX_SECRET's job, by their context), extended public keys. Otherwise, after removing ascending
    runs (0123, abcd) and the word-like parts between / - _ and ., a long mixed high-entropy remainder
    is left."""
    if re.fullmatch(r"[A-Za-z_]+", value) or HEXISH.fullmatch(value) or value.startswith(PUBLIC_KEYS):
        return False
    if re.fullmatch(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+", value) and not value.startswith("gAAAA"):
        return False  # a.module.path or file.name
    residual = ASCENDING_RUN.sub("", value)
    words = r"[a-z]+|(?:[A-Z][a-z]+)+|[A-Z]+|[a-z]?[0-9]{1,4}|[A-Z]+=[0-9]{1,4}"  # words, CamelCase, NAME=1
    parts = [p for p in re.split(r"[-_/.]", residual) if not re.fullmatch(words, p)]
    residual = "".join(parts)
    if len(residual) < 16:
        return False
    kinds = sum(bool(re.search(rx, residual)) for rx in ("[0-9]", "[a-z]", "[A-Z]"))
    return kinds >= 2 and _entropy(residual) >= 3.5


def scan_text(path: str, text: str) -> list[Finding]:
    found = [Finding(path, kind, m.group(0)[:40]) for kind, rx in SHAPED.items() for m in rx.finditer(text)]
    for m in HEX_SECRET.finditer(text):
        if m.group(1).lower() not in ALLOWED_HEX_KEYS:
            found.append(Finding(path, "hex key", m.group(0)[:60]))
    for m in MNEMONIC.finditer(text):
        words = m.group(0).split()
        # A run of >= 12 BIP-39 words; take the longest valid-length prefix that is all words.
        if sum(w in BIP39_WORDS for w in words) < 12 or not all(w in BIP39_WORDS for w in words[:12]):
            continue
        phrase = " ".join(words[: max(n for n in (12, 15, 18, 21, 24) if n <= len(words))])
        allowed = ALLOWED_MNEMONICS.get(phrase)
        if allowed is None or path not in allowed[0]:
            found.append(Finding(path, "BIP-39 mnemonic", phrase[:40]))
    if path not in HASH_ONLY_FILES:
        for m in QUOTED.finditer(text):
            value = m.group(1)
            if not value.startswith(HASH_PREFIXES) and looks_random(value):
                found.append(Finding(path, "high-entropy string", value[:12] + "..."))
    return found


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    return [p for p in listed.decode().split("\0") if p]


def scan_repo() -> tuple[list[Finding], int]:
    findings, scanned = [], 0
    for path in tracked_files():
        file = REPO / path
        if not file.is_file():
            continue
        data = file.read_bytes()
        if b"\0" in data:  # binary (images): nothing text-like to leak
            continue
        scanned += 1
        findings.extend(scan_text(path, data.decode("utf-8", "replace")))
    return findings, scanned


def test_no_secret_in_any_tracked_file() -> None:
    findings, scanned = scan_repo()
    assert scanned >= 200  # the whole tree was read, not an empty listing
    assert findings == []


def test_no_secret_bearing_file_is_tracked() -> None:
    names = tracked_files()
    bad = [
        n
        for n in names
        if re.search(r"(^|/)(\.env(\..*)?|\.secret_key|id_(rsa|ed25519|ecdsa)|.*\.(pem|key|p12|pfx|keystore))$", n)
        or n.endswith(("db.sqlite3", ".sqlite3"))
    ]
    assert bad == []
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert ".secret_key" in ignored and "db.sqlite3" in ignored


def _token(nbytes: int) -> str:
    """A fresh secrets.token_urlsafe with a digit in it (the scanner takes a letters-and-_ string for an
    identifier; a real 32-character token has none in about 1 case in 250)."""
    while not re.search("[0-9]", token := secrets.token_urlsafe(nbytes)):
        pass
    return token


def _xprv() -> str:
    from bip_utils import Bip32Secp256k1

    return str(Bip32Secp256k1.FromSeed(secrets.token_bytes(32)).PrivateKey().ToExtended())


@pytest.mark.parametrize(
    ("kind", "planted"),
    [
        ("PEM private key", "-----BEGIN " + "OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"),
        ("PEM private key", "-----BEGIN " + "EC PRIVATE KEY-----\n"),
        (
            "AWS access key id",
            "aws_key = 'AKIA" + "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ234567") for _ in range(16)) + "'",
        ),
        ("GitHub token", "GH = 'ghp_" + secrets.token_hex(18) + "'"),
        ("Stripe live key", "STRIPE = 'sk_live_" + secrets.token_hex(12) + "'"),
        ("private key in a URL", "DATABASE_URL=postgresql://app:" + secrets.token_urlsafe(12) + "@db.internal/x"),
        ("Fernet key or token", "token = '" + Fernet(Fernet.generate_key()).encrypt(b"whsec_x").decode() + "'"),
        ("hex key", "PRIVATE_KEY = '0x" + secrets.token_hex(32) + "'"),
        ("hex key", "signer_key: " + secrets.token_hex(32)),
        ("hex key", "auth_token = '" + secrets.token_hex(16) + "'"),
        ("extended private key", "ROOT = '" + _xprv() + "'"),
        ("high-entropy string", "WEBHOOK_SECRET = 'whsec_" + _token(24) + "'"),
        ("high-entropy string", "SECRET_KEY = '" + _token(50) + "'"),
        ("high-entropy string", 'api_key = "' + _token(32) + '"'),
        ("high-entropy string", "{'value': '" + _token(20) + "'}"),
        ("high-entropy string", "key = '" + Fernet.generate_key().decode() + "'"),
    ],
)
def test_the_scanner_finds_planted_secrets(kind: str, planted: str) -> None:
    kinds = {f.kind for f in scan_text("planted.py", f"x = 1\n{planted}\n")}
    assert kind in kinds


def test_the_scanner_finds_a_fresh_mnemonic_and_an_allowed_one_out_of_place() -> None:
    Account.enable_unaudited_hdwallet_features()
    _, fresh = Account.create_with_mnemonic()
    assert [f.kind for f in scan_text("planted.py", f'SEED = "{fresh}"')] == ["BIP-39 mnemonic"]
    assert scan_text("stablepay/dev/chain.py", f'DEV = "{DEV_MNEMONIC}"') == []
    assert [f.kind for f in scan_text("shop/settings.py", f'DEV = "{DEV_MNEMONIC}"')] == ["BIP-39 mnemonic"]
    anvil_key = sorted(ALLOWED_HEX_KEYS)[0]
    assert scan_text("tests/x.py", f"private_key = '0x{anvil_key}'") == []


def test_readable_test_values_are_not_reported() -> None:
    for value in (
        "whsec_demo_0123456789abcdefghij",
        "acme-test-key-0123456789abcdef0123456789",
        "correct-horse-battery-staple-42",
        "stablepay.management.commands.stablepay_setup",
        "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
    ):
        assert not looks_random(value), value


def test_settings_take_secrets_from_the_environment_only() -> None:
    source = (REPO / "shop" / "settings.py").read_text()
    assert re.search(r'^SECRET_KEY = env\.str\("SECRET_KEY", default=""\)', source, re.M)
    assert "SECRETS_KEYS" not in source  # stablepay reads STABLEPAY_SECRETS_KEY from the environment itself
    conf = (REPO / "stablepay" / "conf.py").read_text()
    assert 'SECRETS_KEYS = Setting((), _items, env="STABLEPAY_SECRETS_KEY"' in conf

    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "STABLEPAY_SECRETS_KEY")}
    code = "from django.conf import settings; print(settings.SECRET_KEY == 'from-the-env-' + 'x' * 50)"
    given = {**env, "SECRET_KEY": "from-the-env-" + "x" * 50}
    run = [sys.executable, "manage.py", "shell", "-c", code]
    done = subprocess.run(run, cwd=REPO, env=given, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "True"

    # DEBUG off without SECRET_KEY: `check --deploy` fails on it (stablepay.E102); with it, that error is gone.
    deploy = [sys.executable, "manage.py", "check", "--deploy"]
    missing = subprocess.run(deploy, cwd=REPO, env={**env, "DEBUG": "false"}, capture_output=True, text=True)
    assert missing.returncode != 0 and "stablepay.E102" in missing.stderr
    present = subprocess.run(deploy, cwd=REPO, env={**given, "DEBUG": "false"}, capture_output=True, text=True)
    assert "stablepay.E102" not in present.stdout + present.stderr
