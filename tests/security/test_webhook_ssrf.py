"""Issue 16 part 1: server-side request forgery through the merchant's webhook URL.

Each finding is performed against a real HTTP listener on 127.0.0.1 that records every request it gets, with
the process's resolver (socket.getaddrinfo) patched so that public-looking names answer what the attack
needs (127.0.0.1, or a public address first and 127.0.0.1 afterwards). Nothing here uses the network.

- names that resolve to loopback (`127.0.0.1.nip.io`, a "public" name), local names with a trailing dot
  (`metadata.google.internal.`, `a.localhost.`) and the classic spellings of loopback (`127.1`, `2130706433`,
  `0x7f000001`, `[::ffff:127.0.0.1]`, `[::127.0.0.1]`, `0.0.0.0`) are refused by the settings form, the
  Django admin, `stablepay_setup` and at delivery, where the listener is never reached;
- DNS rebinding: a name checked as public when saved and pointing at 127.0.0.1 at delivery is refused, and
  the connection goes to the very address that was checked (no second lookup);
- a redirect to 127.0.0.1/latest/meta-data/ is not followed;
- what a receiver answers is never stored nor shown: only the status code and a short reason of ours.

The suite admits 127.0.0.1 for its receivers (tests/support/env.py); these tests clear that allow-list,
except where a test needs a listener that is allowed to answer (the redirect and the body cases).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import urllib3.util.connection
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.test import Client, RequestFactory

from stablepay.admin import MerchantAdminForm
from stablepay.errors import InvalidInput
from stablepay.governance import setup_file
from stablepay.merchant.forms import WebhookForm
from stablepay.merchant.services import merchant_webhook_update
from stablepay.models import Merchant, WebhookDelivery
from stablepay.webhooks import delivery as webhooks
from stablepay.webhooks import target as webhook_target
from tests.support.auth import login_as
from tests.support.local_chain import LocalChain, create_request, setup_document, subprocess_database_url
from tests.support.merchant import login, make_user

REPO = Path(__file__).resolve().parents[2]
SECRET = "whsec-ssrf-test-0123456789abcdef"
PUBLIC_IP = "93.184.216.34"  # a global unicast address; no test ever connects to it
META_DATA_PATH = "/latest/meta-data/iam/security-credentials/"
INTERNAL_SECRET = "AKIA-INTERNAL-SECRET-FROM-THE-METADATA-SERVICE"


# A real listener on 127.0.0.1 ----------------------------------------------------------------------
class Listener:
    """An HTTP(S) server on 127.0.0.1 recording every request; answers `status` with `headers` and `body`."""

    def __init__(
        self,
        status: int = 204,
        *,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        reason: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.hits: list[tuple[str, str, dict[str, str]]] = []
        self.sni: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                outer.hits.append((self.command, self.path, dict(self.headers)))
                self.send_response(status, reason)
                for name, value in (headers or {}).items():
                    self.send_header(name, value.replace("{port}", str(outer.port)))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: outer.sni.append(name)  # type: ignore[assignment,misc]
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    live = Listener()
    yield live
    live.close()


# A resolver the tests control ----------------------------------------------------------------------
class FakeDns:
    """socket.getaddrinfo for this process: names in `answers` resolve as told (a list, or a callable for
    answers that change), IP literals as usual, any other name not at all. Every name looked up is kept."""

    def __init__(self) -> None:
        self.answers: dict[str, list[str] | Callable[[], list[str]]] = {}
        self.lookups: list[str] = []
        self._real = socket.getaddrinfo

    def getaddrinfo(self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        try:
            ipaddress.ip_address(name.split("%")[0])
        except ValueError:
            pass
        else:
            return self._real(host, port, family, type, proto, flags)
        self.lookups.append(name)
        answer = self.answers.get(name.lower().rstrip("."))
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        addresses = answer() if callable(answer) else answer
        number = int(port or 0)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, number, 0, 0))
            if ":" in ip
            else (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, number))
            for ip in addresses
        ]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns()
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


@pytest.fixture
def no_allow_list(settings: Any) -> None:
    """STABLEPAY_WEBHOOK_ALLOWED_HOSTS unset, as in production: nothing local is admitted."""
    settings.STABLEPAY = {**settings.STABLEPAY, "WEBHOOK_ALLOWED_HOSTS": ""}


def allow(settings: Any, value: str) -> None:
    settings.STABLEPAY = {**settings.STABLEPAY, "WEBHOOK_ALLOWED_HOSTS": value}


# The attacks ---------------------------------------------------------------------------------------
# Each reaches the listener on 127.0.0.1 (or the metadata address) if the check trusts the name as typed.
ATTACK_URLS = [
    "http://127.0.0.1.nip.io:{port}/hooks",  # resolves to 127.0.0.1 (the fake resolver answers as nip.io does)
    "http://public-looking.example:{port}/hooks",  # a public-looking name that resolves to 127.0.0.1
    "http://metadata.google.internal./computeMetadata/v1/",  # trailing dot
    "http://a.localhost.:{port}/",
    "http://[::127.0.0.1]:{port}/",  # IPv4-compatible
    "http://[::ffff:127.0.0.1]:{port}/",  # IPv4-mapped
    "http://127.1:{port}/",
    "http://2130706433:{port}/",
    "http://0x7f000001:{port}/",
    "http://0177.0.0.1:{port}/",
    "http://0.0.0.0:{port}/",
    "http://[::]:{port}/",
    "http://127.0.0.1:{port}/",
    "http://[::1]:{port}/",
    "http://localhost:{port}/",
    "http://LOCALHOST.:{port}/",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.5/",
    "http://[fd00::1]/",
    "http://[64:ff9b::7f00:1]:{port}/",  # NAT64 of 127.0.0.1
    "http://100.64.0.1/",
    "http://metadata/computeMetadata/v1/",  # a single-label name (search domains)
]


@pytest.fixture
def attack_dns(dns: FakeDns) -> FakeDns:
    dns.answers.update(
        {
            "127.0.0.1.nip.io": ["127.0.0.1"],
            "public-looking.example": ["127.0.0.1"],
            "metadata.google.internal": ["169.254.169.254"],
            "a.localhost": ["127.0.0.1"],
            "localhost": ["127.0.0.1", "::1"],
            "metadata": ["169.254.169.254"],
        }
    )
    return dns


def test_the_classic_spellings_mean_loopback() -> None:
    for spelling in ("127.1", "2130706433", "0x7f000001", "0177.0.0.1", "0x7f.1", "127.0.0.1.", "0x7F.0.0.1"):
        parsed = webhook_target.parse(f"http://{spelling}:8080/x")
        assert parsed.address == ipaddress.IPv4Address("127.0.0.1"), spelling
    assert webhook_target.parse("http://[::ffff:127.0.0.1]/").address == ipaddress.IPv6Address("::ffff:7f00:1")
    assert webhook_target.parse("http://metadata.google.internal./").host == "metadata.google.internal"
    full_width = "\uff2c\uff2f\uff23\uff21\uff2c\uff28\uff2f\uff33\uff34"  # LOCALHOST, IDNA-mapped to ASCII
    assert webhook_target.parse(f"http://{full_width}/").host == "localhost"
    for bad in ("http://1.2.3.4.5/", "http://256.1.1.1/", "http://099/", "http://example.1/"):
        with pytest.raises(webhook_target.TargetRefused):
            webhook_target.parse(bad)


@pytest.mark.usefixtures("no_allow_list")
@pytest.mark.parametrize("template", ATTACK_URLS)
def test_refused_by_the_form_the_setup_file_and_at_delivery(
    template: str, attack_dns: FakeDns, listener: Listener, db: None
) -> None:
    url = template.format(port=listener.port)

    with pytest.raises(webhook_target.TargetRefused):
        webhook_target.check(url)

    form = WebhookForm({"webhook_url": url})
    assert not form.is_valid() and "webhook_url" in form.errors

    document = setup_document("http://127.0.0.1:8545", {"HKDX": "0x" + "11" * 20, "USDC": "0x" + "22" * 20})
    document["merchants"][0].update(webhook_url=url, webhook_secret=SECRET)
    with pytest.raises(setup_file.SetupError) as refused:
        setup_file.parse(json.dumps(document))
    assert refused.value.path == "merchants[0].webhook_url"

    outcome = webhook_target.post(url, b"{}", {"Content-Type": "application/json"}, timeout=2)
    assert not outcome.ok and outcome.status_code is None and outcome.reason.startswith("refused: ")
    assert listener.hits == []


@pytest.mark.usefixtures("no_allow_list")
def test_the_form_refuses_in_demo_mode_too(settings: Any, attack_dns: FakeDns) -> None:
    """The demo admits its local receivers through the allow-list, not through DEBUG or demo mode."""
    settings.DEBUG = True
    settings.STABLEPAY = {**settings.STABLEPAY, "DEMO_MODE": True}
    for url in ("http://127.0.0.1:8000/x", "http://127.0.0.1.nip.io/x"):
        assert not WebhookForm({"webhook_url": url}).is_valid()


@pytest.mark.usefixtures("no_allow_list")
def test_one_private_answer_among_public_ones_refuses_the_name(dns: FakeDns, listener: Listener) -> None:
    dns.answers["mixed.example"] = [PUBLIC_IP, "127.0.0.1"]
    with pytest.raises(webhook_target.TargetRefused, match="loopback"):
        webhook_target.check(f"http://mixed.example:{listener.port}/")
    assert webhook_target.post(f"http://mixed.example:{listener.port}/", b"", {}, timeout=2).reason.startswith(
        "refused: "
    )
    assert listener.hits == []


def test_user_info_and_other_schemes_are_refused() -> None:
    for url in (
        "http://user:pass@hooks.example.com/",
        "http://hooks.example.com@127.0.0.1/",
        "http://hooks.example.com\\@127.0.0.1/",
        "ftp://hooks.example.com/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
        "http://hooks.example.com:0/",
        "http://hooks.example.com:99999/",
        "http://[fe80::1%25eth0]/",
        "http://127.0.0.%31/",
    ):
        with pytest.raises(webhook_target.TargetRefused):
            webhook_target.check(url)


# Through the pages, the admin, the service and the command, with the database ---------------------
@pytest.mark.usefixtures("no_allow_list")
def test_the_settings_page_and_the_service_refuse_and_keep_the_old_url(
    merchant: Merchant, attack_dns: FakeDns, listener: Listener
) -> None:
    Merchant.objects.filter(pk=merchant.pk).update(webhook_url="https://hooks.example.com/a", webhook_secret=SECRET)
    client = login(make_user("alice", merchant))
    for template in ATTACK_URLS:
        url = template.format(port=listener.port)
        response = client.post("/merchant/settings/webhook/", {"webhook_url": url})
        assert response.status_code == 400, url
        assert "Use a public address" in response.content.decode() or "Enter a valid URL" in response.content.decode()
        with pytest.raises(InvalidInput) as refused:
            merchant_webhook_update(merchant=merchant, webhook_url=url, actor="test")
        assert refused.value.field == "webhook_url"
    merchant.refresh_from_db()
    assert merchant.webhook_url == "https://hooks.example.com/a"
    assert listener.hits == []


def _admin_post_data(merchant: Merchant, superuser: Any) -> dict[str, Any]:
    """The admin change form of `merchant` as the browser would post it unchanged."""
    model_admin = admin.site._registry[Merchant]
    request = RequestFactory().get("/")
    request.user = superuser
    form = model_admin.get_form(request, merchant)(instance=merchant)
    data = {name: form[name].value() for name in form.fields}
    # A field with a callable default also renders its initial value as a hidden input, which a browser posts.
    data.update({f"initial-{name}": form[name].value() for name, f in form.fields.items() if f.show_hidden_initial})
    return {name: value for name, value in data.items() if value is not None}


@pytest.mark.usefixtures("no_allow_list")
def test_the_admin_refuses_the_same_urls(merchant: Merchant, attack_dns: FakeDns, listener: Listener) -> None:
    superuser = get_user_model().objects.create_superuser("root", password="pw-0123456789")
    request = RequestFactory().get("/")
    request.user = superuser
    assert issubclass(admin.site._registry[Merchant].get_form(request, merchant), MerchantAdminForm)
    client = Client()
    login_as(client, superuser)
    change = f"/admin/stablepay/merchant/{merchant.pk}/change/"
    data = _admin_post_data(merchant, superuser)
    for template in ATTACK_URLS:
        url = template.format(port=listener.port)
        response = client.post(change, {**data, "webhook_url": url})
        assert response.status_code == 200, url  # the form again, with the error
        assert "Webhook URL refused" in response.content.decode() or "Enter a valid URL" in response.content.decode()
        merchant.refresh_from_db()
        assert merchant.webhook_url == ""
    # The same form saves a public URL: the refusals above are the URL's, not the form's.
    response = client.post(change, {**data, "webhook_url": "https://hooks.example.com/admin"})
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    merchant.refresh_from_db()
    assert merchant.webhook_url == "https://hooks.example.com/admin"
    assert listener.hits == []


def _snapshot() -> list[Any]:
    return list(Merchant.objects.values().order_by("pk"))


@pytest.mark.usefixtures("no_allow_list")
def test_stablepay_setup_names_the_field_and_changes_nothing(
    local_chain: LocalChain, tmp_path: Path, attack_dns: FakeDns, listener: Listener
) -> None:
    for template in ATTACK_URLS:
        document = setup_document(local_chain.anvil.url, local_chain.tokens)
        document["merchants"][0].update(name="Renamed", webhook_url=template.format(port=listener.port))
        document["merchants"][0]["webhook_secret"] = SECRET
        path = tmp_path / "setup.json"
        path.write_text(json.dumps(document))
        before = _snapshot()
        with pytest.raises(CommandError, match=r"merchants\[0\]\.webhook_url"):
            call_command("stablepay_setup", str(path))
        assert _snapshot() == before
    assert listener.hits == []


def test_stablepay_setup_exits_non_zero(tmp_path: Path, db: None) -> None:
    document = setup_document("http://127.0.0.1:1", {"HKDX": "0x" + "11" * 20, "USDC": "0x" + "22" * 20})
    document["chains"] = document["tokens"] = []
    document["merchants"][0].update(webhook_url="http://2130706433/latest/meta-data/", webhook_secret=SECRET)
    path = tmp_path / "setup.json"
    path.write_text(json.dumps(document))
    env = {"DATABASE_URL": subprocess_database_url(), "PATH": "/usr/bin:/bin"}  # and no allow-list
    done = subprocess.run(
        [sys.executable, "manage.py", "stablepay_setup", str(path)], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "merchants[0].webhook_url" in done.stderr and "loopback" in done.stderr


# At delivery ---------------------------------------------------------------------------------------
def _stored_webhook(merchant: Merchant, url: str) -> WebhookDelivery:
    """A merchant whose stored URL was never checked (saved before this fix, or written to the database
    directly), with one event due."""
    Merchant.objects.filter(pk=merchant.pk).update(webhook_url=url, webhook_secret=SECRET)
    merchant.refresh_from_db()
    create_request(merchant)
    return WebhookDelivery.objects.get()


@pytest.mark.usefixtures("no_allow_list")
def test_a_public_looking_name_that_resolves_to_loopback_is_refused_at_delivery(
    merchant: Merchant, dns: FakeDns, listener: Listener
) -> None:
    dns.answers["public-looking.example"] = ["127.0.0.1"]
    delivery = _stored_webhook(merchant, f"http://public-looking.example:{listener.port}/hooks")
    assert webhooks.deliver_due() == 0
    delivery.refresh_from_db()
    assert listener.hits == []
    assert delivery.attempts == 1 and delivery.delivered_at is None and delivery.last_status_code is None
    assert delivery.last_error == "refused: public-looking.example resolves to a loopback address"
    assert delivery.next_attempt_at is not None  # retried later, checked again each time


@pytest.mark.usefixtures("no_allow_list")
def test_dns_rebinding_between_save_and_delivery_is_refused(
    merchant: Merchant, dns: FakeDns, listener: Listener
) -> None:
    url = f"http://rebind.example:{listener.port}/hooks"
    dns.answers["rebind.example"] = [PUBLIC_IP]  # public when the merchant saves it
    client = login(make_user("alice", merchant))
    response = client.post("/merchant/settings/webhook/", {"webhook_url": url})
    assert response.status_code == 302
    merchant.refresh_from_db()
    assert merchant.webhook_url == url
    create_request(merchant)

    dns.answers["rebind.example"] = ["127.0.0.1"]  # and loopback when the event is sent
    assert webhooks.deliver_due() == 0
    delivery = WebhookDelivery.objects.get()
    assert listener.hits == []
    assert delivery.last_error == "refused: rebind.example resolves to a loopback address"


@pytest.mark.usefixtures("no_allow_list")
def test_the_connection_goes_to_the_address_that_was_checked(
    merchant: Merchant, dns: FakeDns, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resolver that answers a public address to the check and 127.0.0.1 to any later lookup: the
    connection is made to the checked address, with no lookup of its own."""
    answers = iter([[PUBLIC_IP]])
    dns.answers["pinned.example"] = lambda: next(answers, ["127.0.0.1"])
    connects: list[tuple[str, int]] = []
    real_connect = urllib3.util.connection.create_connection

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        connects.append((address[0], int(address[1])))
        if address[0] == PUBLIC_IP:  # no network in tests: that host does not answer
            raise ConnectionRefusedError(111, "Connection refused")
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    delivery = _stored_webhook(merchant, f"http://pinned.example:{listener.port}/hooks")
    assert webhooks.deliver_due() == 0
    delivery.refresh_from_db()
    assert connects == [(PUBLIC_IP, listener.port)]
    assert dns.lookups == ["pinned.example"]  # once, by the check
    assert listener.hits == []
    assert delivery.last_error == "connection refused or unreachable"


def test_an_allowed_name_is_reached_at_its_address_with_its_own_host_header(
    merchant: Merchant, settings: Any, dns: FakeDns, listener: Listener
) -> None:
    allow(settings, "hooks.partner.example")
    dns.answers["hooks.partner.example"] = ["127.0.0.1"]
    _stored_webhook(merchant, f"http://hooks.partner.example:{listener.port}/hooks?shop=1")
    assert webhooks.deliver_due() == 1
    [(method, path, headers)] = listener.hits
    assert (method, path) == ("POST", "/hooks?shop=1")
    assert headers["Host"] == f"hooks.partner.example:{listener.port}"
    assert headers["Stablepay-Signature"].startswith("t=")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_the_metadata_service_is_not_followed(
    merchant: Merchant, settings: Any, dns: FakeDns, status: int
) -> None:
    allow(settings, "127.0.0.1")  # the receiver is allowed; so, here, is where it points
    metadata = Listener(200, body=INTERNAL_SECRET.encode())
    redirector = Listener(status, headers={"Location": f"http://127.0.0.1:{metadata.port}{META_DATA_PATH}"})
    try:
        delivery = _stored_webhook(merchant, f"http://127.0.0.1:{redirector.port}/hooks")
        assert webhooks.deliver_due() == 0
        delivery.refresh_from_db()
        assert len(redirector.hits) == 1 and metadata.hits == []
        assert delivery.last_status_code == status and delivery.last_error == "redirect not followed"
        assert delivery.delivered_at is None and delivery.next_attempt_at is not None
    finally:
        metadata.close()
        redirector.close()


def test_the_receivers_answer_is_never_stored_nor_shown(merchant: Merchant, settings: Any) -> None:
    allow(settings, "127.0.0.1")
    leaky = Listener(500, body=f"<html>{INTERNAL_SECRET}</html>".encode(), reason=f"Oops {INTERNAL_SECRET}")
    try:
        delivery = _stored_webhook(merchant, f"http://127.0.0.1:{leaky.port}/hooks")
        assert webhooks.deliver_due() == 0
    finally:
        leaky.close()
    delivery.refresh_from_db()
    assert delivery.last_status_code == 500 and delivery.last_error == "HTTP 500 Internal Server Error"
    stored = json.dumps(list(WebhookDelivery.objects.values()), default=str)
    assert INTERNAL_SECRET not in stored

    client = login(make_user("alice", merchant))
    pages = [
        "/merchant/settings/",
        f"/merchant/payments/{delivery.payment_request_id}/",
    ]
    for page in pages:
        html = client.get(page).content.decode()
        assert "HTTP 500" in html and INTERNAL_SECRET not in html

    # A body that an earlier version stored is not shown either, on the pages or in the admin.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(last_error=f"<html>{INTERNAL_SECRET}</html>")
    for page in pages:
        html = client.get(page).content.decode()
        assert INTERNAL_SECRET not in html and "delivery failed" in html
    superuser = get_user_model().objects.create_superuser("root", password="pw-0123456789")
    staff = Client()
    login_as(staff, superuser)
    html = staff.get(f"/admin/stablepay/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert INTERNAL_SECRET not in html


# https: the name goes to SNI and the certificate check, the socket to the checked address ----------
def _certificates(tmp_path: Path, name: str) -> tuple[Path, ssl.SSLContext]:
    """A throwaway CA (its PEM path) and a server context with a certificate for `name` signed by it."""
    now = dt.datetime.now(dt.UTC)

    def certificate(subject: str, key: Any, issuer: str, issuer_key: Any, *, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
        else:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = certificate("stablepay test CA", ca_key, "stablepay test CA", ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = certificate(name, key, "stablepay test CA", ca_key, ca=False)
    ca_path = tmp_path / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    chain = tmp_path / "server.pem"
    chain.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain)
    return ca_path, context


def test_https_checks_the_certificate_for_the_name_while_connecting_to_the_checked_address(
    settings: Any, dns: FakeDns, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allow(settings, "127.0.0.1")
    dns.answers["hooks.partner.example"] = ["127.0.0.1"]
    dns.answers["impostor.example"] = ["127.0.0.1"]
    ca_path, context = _certificates(tmp_path, "hooks.partner.example")
    monkeypatch.setattr(webhook_target, "CA_BUNDLE", str(ca_path))
    server = Listener(204, tls=context)
    try:
        outcome = webhook_target.post(f"https://hooks.partner.example:{server.port}/h", b"{}", {}, timeout=5)
        assert outcome.ok and outcome.status_code == 204
        assert server.sni == ["hooks.partner.example"]
        assert server.hits[0][2]["Host"] == f"hooks.partner.example:{server.port}"

        # The same server under another name: its certificate does not match, nothing is sent.
        outcome = webhook_target.post(f"https://impostor.example:{server.port}/h", b"{}", {}, timeout=5)
        assert not outcome.ok and outcome.reason == "TLS handshake or certificate check failed"
        assert len(server.hits) == 1
    finally:
        server.close()


# The allow-list (CONTRACT §2) ----------------------------------------------------------------------
def test_the_allow_list_admits_names_addresses_and_ranges(settings: Any, dns: FakeDns) -> None:
    dns.answers.update({"receiver.internal": ["10.1.2.3"], "other.internal": ["10.1.2.3"], "lab.example": ["10.9.0.7"]})
    allow(settings, " receiver.internal. , 127.0.0.1, 10.9.0.0/16, [fd00::1] ")
    webhook_target.check("http://receiver.internal/x")  # by name (trailing dot and case do not matter)
    webhook_target.check("http://RECEIVER.internal./x")
    webhook_target.check("http://127.0.0.1:9000/x")
    webhook_target.check("http://lab.example/x")  # resolves into an admitted range
    webhook_target.check("http://[fd00::1]/x")
    for refused in (
        "http://other.internal/x",  # a local name not listed
        "http://127.0.0.2/x",
        "http://0.0.0.0/x",  # never admitted
        "http://[::ffff:127.0.0.1]/x",  # the IPv4 entry does not admit its IPv6 spellings
        "http://10.1.2.3/x",  # receiver.internal's address, named by number
    ):
        with pytest.raises(webhook_target.TargetRefused):
            webhook_target.check(refused)


def test_the_allow_list_comes_from_the_environment_when_settings_do_not_set_it(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.STABLEPAY = {k: v for k, v in settings.STABLEPAY.items() if k != "WEBHOOK_ALLOWED_HOSTS"}
    monkeypatch.setenv("STABLEPAY_WEBHOOK_ALLOWED_HOSTS", "192.168.0.0/24")
    webhook_target.check("http://192.168.0.10/x")
    monkeypatch.setenv("STABLEPAY_WEBHOOK_ALLOWED_HOSTS", "")
    with pytest.raises(webhook_target.TargetRefused):
        webhook_target.check("http://192.168.0.10/x")


@pytest.mark.parametrize("entry", ["not a host", "127.1", "10.0.0.0/33", "http://x.example/"])
def test_a_bad_allow_list_entry_is_a_configuration_error(entry: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="STABLEPAY_WEBHOOK_ALLOWED_HOSTS"):
        webhook_target.parse_allowed_hosts(entry)


def test_only_our_own_reasons_are_shown() -> None:
    for reason in (
        "redirect not followed",
        "HTTP 500 Internal Server Error",
        "HTTP 599",
        "refused: a.example resolves to a loopback address",
        "connection refused or unreachable",
        "no webhook signing secret is set",
    ):
        assert webhook_target.shown_reason(reason) == reason
    assert webhook_target.shown_reason("") == ""
    assert webhook_target.shown_reason('{"Code": "Success", "AccessKeyId": "ASIA..."}') == "delivery failed"
    assert webhook_target.shown_reason("HTTP 500 <html>body</html>") == "delivery failed"
