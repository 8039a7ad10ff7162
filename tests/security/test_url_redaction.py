"""Issue 16 part 4, secrets in public answers: a provider's API key rides in a node URL (`https://…/v2/KEY`,
`?apikey=`, `user:pass@`), and an anonymous GET /healthz used to answer the whole URL in `node_error`.

Each test first does what the attacker (or a curious reader of the logs) does: it registers node URLs that
carry keys, makes the nodes fail (a closed port; a node that echoes its key in its error; a websocket that
refuses the subscription quoting its key), and then reads everything that leaves the process: the recorded
scan error, /healthz as an anonymous caller, the ops console, the admin, the payment page and the API and
webhook body, `stablepay_scan --once`'s output and every log record. No secret appears anywhere; the node's
scheme and host do, so ops still know which node failed.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from websockets.sync.server import ServerConnection, serve

from stablepay.chain.heads import HeadFollower
from stablepay.chain.reader import ChainError
from stablepay.chain.rpc import RpcChainReader
from stablepay.ingest import health, watcher
from stablepay.ledger.representation import payment_request_data
from stablepay.models import Chain, Cursor, Merchant
from stablepay.redact import REDACTED, redact_text, redact_url, scrub
from tests.factories import CursorFactory
from tests.support.auth import login_as
from tests.support.local_chain import LocalChain, create_request
from tests.support.ops import make_user
from tests.support.services import free_port

pytestmark = pytest.mark.django_db

CHAIN_ID = 424242
# Every fragment that must never leave the process.
SECRETS = (
    "SECRETKEY123",
    "SECRET2",
    "user:pass",
    "ECHOKEY456789",
    "ECHOTOKEN77",
    "WSKEY987654",
    "WSQUERY55",
    "wsuser:wspass",
)


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, (where, secret, text[max(text.find(secret) - 200, 0) :][:400])


def closed_url() -> tuple[str, str]:
    """A keyed URL of a port nobody listens on, and the host form that may be shown."""
    port = free_port()
    return f"https://user:pass@127.0.0.1:{port}/v2/SECRETKEY123?apikey=SECRET2", f"https://127.0.0.1:{port}"


class EchoNode:
    """A JSON-RPC node that answers every call with an error quoting the key in its URL (as some providers do)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "error": {"code": -32002, "message": "invalid project id ECHOKEY456789 (token ECHOTOKEN77)"},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # the test server's own log: not ours
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/rpc/ECHOKEY456789?token=ECHOTOKEN77"
        self.host = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def echo_node() -> Iterator[EchoNode]:
    node = EchoNode()
    yield node
    node.close()


@pytest.fixture
def refusing_ws() -> Iterator[tuple[str, str]]:
    """A websocket node that refuses eth_subscribe, quoting the key of the URL it was reached at."""

    def handler(connection: ServerConnection) -> None:
        connection.recv()
        connection.send(json.dumps({"jsonrpc": "2.0", "id": 1, "error": {"message": "bad key WSKEY987654"}}))

    with serve(handler, "127.0.0.1", 0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.socket.getsockname()[1]
        yield (
            f"ws://wsuser:wspass@127.0.0.1:{port}/ws/WSKEY987654?key=WSQUERY55",
            f"ws://127.0.0.1:{port}",
        )
        server.shutdown()


@pytest.fixture
def keyed_chain(echo_node: EchoNode) -> tuple[Chain, list[str]]:
    """A chain whose two RPC nodes fail, both reached through URLs with keys; returns it and the hosts."""
    url, host = closed_url()
    chain = Chain.objects.create(
        chain_id=CHAIN_ID,
        name="Keyed",
        rpc_urls=[url, echo_node.url],
        ws_url="wss://wsuser:wspass@127.0.0.1:1/ws/WSKEY987654?key=WSQUERY55",
        confirmations=3,
        start_block=0,
    )
    CursorFactory(chain=chain)
    return chain, [host, echo_node.host]


# the helper ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pass@127.0.0.1:9/v2/SECRETKEY123?apikey=SECRET2", "https://127.0.0.1:9"),
        ("https://eth-mainnet.g.alchemy.com/v2/SECRETKEY123", "https://eth-mainnet.g.alchemy.com"),
        ("wss://mainnet.infura.io/ws/v3/SECRETKEY123#SECRET2", "wss://mainnet.infura.io"),
        ("HTTP://Node.Example:8545/?apikey=SECRET2", "http://node.example:8545"),
        ("http://[::1]:8545/SECRETKEY123", "http://[::1]:8545"),
        ("https://127.0.0.1:99999/SECRETKEY123", REDACTED),  # a port that does not parse: nothing of it
        ("SECRETKEY123", REDACTED),
        ("", REDACTED),
    ],
)
def test_redact_url_keeps_scheme_and_host_only(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert_no_secret(redact_url(url), url)


def test_redact_text_and_scrub() -> None:
    url = "https://user:pass@127.0.0.1:9/v2/SECRETKEY123?apikey=SECRET2"
    text = (
        f"{url}: ConnectionError; HTTPSConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with "
        "url: /v2/SECRETKEY123?apikey=SECRET2 (Caused by NewConnectionError)"
    )
    shown = redact_text(text)
    assert shown.startswith("https://127.0.0.1:9: ConnectionError; ") and "host='127.0.0.1'" in shown
    assert_no_secret(shown, "redact_text")
    # A node's own message quoting the key without the URL: only the URL's owner knows it is a secret.
    echoed = "JSON-RPC error: invalid project id SECRETKEY123; apikey SECRET2 for username user"
    assert "SECRETKEY123" in redact_text(echoed)
    scrubbed = scrub(echoed, [url])
    assert_no_secret(scrubbed, "scrub")
    assert "JSON-RPC error: invalid project id [redacted]" in scrubbed and "username" in scrubbed


# the attack: a scan pass, then everything that leaves the process ------------------------------------------------
def test_a_failing_scan_pass_leaks_no_key_anywhere(
    keyed_chain: tuple[Chain, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    chain, hosts = keyed_chain
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")  # even its request lines, were an operator to enable them
    out, err = io.StringIO(), io.StringIO()
    call_command("stablepay_scan", "--once", stdout=out, stderr=err)

    cursor = Cursor.objects.get(chain=chain)
    assert cursor.last_error and cursor.last_error_at is not None
    assert all(host in cursor.last_error for host in hosts), cursor.last_error
    assert "invalid project id [redacted]" in cursor.last_error  # the node's words, its key taken out
    assert_no_secret(cursor.last_error, "Cursor.last_error")
    assert_no_secret(out.getvalue() + err.getvalue(), "stablepay_scan output")

    logged = "\n".join(
        record.getMessage() + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        for record in caplog.records
    )
    assert any(host in logged for host in hosts), logged  # the logs still say which node failed
    assert_no_secret(logged, "logs")


def test_healthz_answers_anyone_without_a_key(keyed_chain: tuple[Chain, list[str]]) -> None:
    chain, hosts = keyed_chain
    # An error recorded by an older version, with the whole URL in it, is shown scrubbed too.
    Cursor.objects.filter(chain=chain).update(
        last_error=f"{chain.rpc_urls[0]}: ConnectionError; {chain.rpc_urls[1]}: HTTP 401"
    )
    health.clear_cache()
    answer = Client().get("/healthz")
    assert answer.status_code == 200
    text = answer.content.decode()
    assert_no_secret(text, "/healthz")
    row = next(c for c in answer.json()["chains"] if c["chain_id"] == CHAIN_ID)
    assert row["node_error"] and all(host in row["node_error"] for host in hosts), row
    assert hosts[0] in row["last_error"] and hosts[1] in row["last_error"], row


def test_ops_console_and_admin_show_hosts_not_keys(keyed_chain: tuple[Chain, list[str]]) -> None:
    chain, hosts = keyed_chain
    watcher.scan_once()  # a real failure recorded
    Cursor.objects.filter(chain=chain).update(last_error=f"older: {chain.rpc_urls[0]} failed")
    ops = Client()
    login_as(ops, make_user("olivia", "stablepay.ops_console"))
    page = ops.get(reverse("stablepay:ops:health"))
    assert page.status_code == 200
    html = page.content.decode()
    assert_no_secret(html, "ops health")
    assert hosts[0] in html and hosts[1] in html

    root = Client()
    login_as(root, User.objects.create_superuser("root", password="x-root-password-1"))
    cursor = Cursor.objects.get(chain=chain)
    for url in (
        reverse("admin:stablepay_chain_changelist"),
        reverse("admin:stablepay_chain_change", args=[chain.pk]),
        reverse("admin:stablepay_chain_add"),
        reverse("admin:stablepay_cursor_changelist"),
        reverse("admin:stablepay_cursor_change", args=[cursor.pk]),
    ):
        response = root.get(url)
        assert response.status_code == 200, url
        assert_no_secret(response.content.decode(), url)
    change = root.get(reverse("admin:stablepay_chain_change", args=[chain.pk])).content.decode()
    assert hosts[0] in change and "wss://127.0.0.1:1" in change


def test_the_admin_keeps_node_urls_write_only(keyed_chain: tuple[Chain, list[str]]) -> None:
    chain, _ = keyed_chain
    root = Client()
    login_as(root, User.objects.create_superuser("root", password="x-root-password-1"))
    url = reverse("admin:stablepay_chain_change", args=[chain.pk])
    form = {
        "chain_id": CHAIN_ID,
        "name": "Renamed",
        "confirmations": 3,
        "block_time_seconds": 12,
        "explorer_tx_url": "",
        "start_block": 0,
    }
    assert root.post(url, {**form, "new_rpc_urls": "", "new_ws_url": ""}).status_code == 302
    kept = Chain.objects.get(pk=chain.pk)
    assert kept.name == "Renamed" and kept.rpc_urls == chain.rpc_urls and kept.ws_url == chain.ws_url

    new = "https://node.example/v3/NEWKEY0001\nhttps://other.example/NEWKEY0002"
    assert root.post(url, {**form, "new_rpc_urls": new, "remove_ws_url": "on"}).status_code == 302
    replaced = Chain.objects.get(pk=chain.pk)
    assert replaced.rpc_urls == ["https://node.example/v3/NEWKEY0001", "https://other.example/NEWKEY0002"]
    assert replaced.ws_url == ""
    page = root.get(url).content.decode()
    assert "NEWKEY000" not in page and "https://node.example" in page and "https://other.example" in page

    refused = root.post(url, {**form, "new_rpc_urls": "ftp://x.example/KEY"})
    assert refused.status_code == 200 and "Each line must be one http(s) URL." in refused.content.decode()
    assert Chain.objects.get(pk=chain.pk).rpc_urls == replaced.rpc_urls


def test_the_websocket_follower_logs_the_host_only(
    refusing_ws: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    ws_url, host = refusing_ws
    caplog.set_level(logging.DEBUG)
    stop = threading.Event()
    follower = HeadFollower(CHAIN_ID, ws_url, lambda key, number: None, stop)
    follower.start()
    try:
        for _ in range(100):
            if any("newHeads" in r.getMessage() for r in caplog.records):
                break
            stop.wait(0.05)
    finally:
        stop.set()
        follower.join(timeout=5)
    # Everything but the fake node's own server log (websockets.server): the handshake and frames included.
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("websockets.server"))
    assert "GET [path redacted] HTTP/1.1" in logged and "Authorization: [redacted]" in logged, logged
    assert f"newHeads {host}: eth_subscribe refused" in logged and "bad key [redacted]" in logged, logged
    assert_no_secret(logged, "follower logs")


def test_a_range_refusal_quoting_the_key_is_scrubbed(echo_node: EchoNode) -> None:
    """RangeTooLarge carries the node's message up to the watcher (and, for a one-block span, into
    last_error): it is scrubbed like any other error."""

    class RangeNode(RpcChainReader):
        def _post(self, url: str, payload: Any) -> Any:
            return {"jsonrpc": "2.0", "id": 1, "error": {"message": "block range too large for key ECHOKEY456789"}}

    with pytest.raises(ChainError) as raised:
        RangeNode([echo_node.url]).call("eth_getLogs", [])
    assert "too large for key [redacted]" in str(raised.value)
    assert_no_secret(str(raised.value), "RangeTooLarge")


# the pages and bodies a payer or a merchant sees ----------------------------------------------------------------
def test_payment_page_api_and_webhook_body_carry_no_node_url(
    local_chain: LocalChain, merchant: Merchant, api: Any
) -> None:
    chain = local_chain.chain
    keyed, _ = closed_url()
    chain.rpc_urls = [local_chain.anvil.url, keyed]
    chain.ws_url = "wss://wsuser:wspass@127.0.0.1:1/ws/WSKEY987654?key=WSQUERY55"
    chain.save()
    pr = create_request(merchant)
    page = Client().get(f"/pay/{pr.pk}/").content.decode()
    assert_no_secret(page, "payment page")
    assert local_chain.anvil.url in page  # a bare local URL is still offered to the wallet button
    assert_no_secret(api.get(f"/api/v1/payment-requests/{pr.pk}/").content.decode(), "API")
    assert_no_secret(json.dumps(payment_request_data(pr)), "webhook data")
    assert_no_secret(Client().get(f"/pay/{pr.pk}/status/").content.decode(), "status")
