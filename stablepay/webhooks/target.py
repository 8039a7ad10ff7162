"""Where a merchant's webhook may go, and the one way it is sent there (issue 16: server-side request forgery).

The same rule runs when a URL is saved (the settings form, the Django admin, `stablepay_setup`, and the
service behind them) and again at every delivery:

- `http` or `https` only; no user name or password; a host; a port from 1 to 65535.
- The host is read the way an HTTP client would read it: lower case, IDNA (UTS 46), one trailing dot dropped
  (`metadata.google.internal.` is `metadata.google.internal`). A host whose last label is a number is an
  IPv4 address in any of the spellings libc and browsers accept (`127.1`, `2130706433`, `0x7f000001`,
  `0177.0.0.1`), and is judged as the address it means; an unreadable one is refused.
- Names kept for local use are refused: `localhost` and `*.localhost`, `*.local`, `*.internal`,
  `*.localdomain`, `*.home.arpa`, and single-label names (`http://metadata/`).
- The name is resolved (socket.getaddrinfo) and every address it resolves to must be public: not
  unspecified, loopback, private, shared (100.64.0.0/10), link-local, multicast, reserved or set aside for
  documentation, nor an IPv6 spelling of an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
  `::a.b.c.d`) nor one that carries a non-public IPv4 address (NAT64, 6to4, Teredo).
- STABLEPAY_WEBHOOK_ALLOWED_HOSTS (CONTRACT §2) admits named internal hosts (by exact name, after the
  normalising above), IP addresses and CIDR ranges; the demo and the test suites set it for their local
  receivers. Unspecified (0.0.0.0, ::) and multicast addresses are never admitted.

Delivery (`post`) resolves once, checks, and connects to the checked address itself: the connection makes no
DNS lookup of its own, so an answer that changes between the check and the connection (DNS rebinding)
cannot get through. The URL's name goes in the Host header and, for https, in TLS SNI and the certificate
check. No proxy is taken from the environment (a proxy would resolve the name itself), redirects are not
followed (a 3xx is a failed attempt), and the response body is never read: the outcome is the status code
and a short reason written here, nothing the receiver sent.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import quote, urlsplit

import idna
import urllib3
from django.core.exceptions import ImproperlyConfigured
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from stablepay.conf import app_settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

ALLOWED_HOSTS_VARIABLE = "STABLEPAY_WEBHOOK_ALLOWED_HOSTS"
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
# What a host may hold once IDNA-encoded: letters, digits, hyphens, underscores (some real DNS names carry one).
HOST_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\Z", re.ASCII)
NUMBER_LABEL = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)\Z", re.ASCII)
PATH_SAFE = "/%:@!$&'()*+,;=-._~?"  # left as they are in the request target; anything else is percent-encoded
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
SHARED = ipaddress.IPv4Network("100.64.0.0/10")
# Used instead of the system's CA store, as `requests` did before; tests point it at their own CA.
CA_BUNDLE: str | None = None


class TargetRefused(ValueError):
    """A webhook URL that may not be saved or delivered to. `reason` is short, plain and safe to store
    and show: it never holds anything a remote server sent."""

    def __init__(self, reason: str, *, code: str = "host") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code  # "invalid" (not a usable URL), "scheme", or "host" (not a public address)


# The allow-list ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AllowList:
    names: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    def admits_name(self, host: str) -> bool:
        return host in self.names

    def admits_address(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.networks)


def parse_allowed_hosts(value: str | Iterable[str] | AllowList | None) -> AllowList:
    """STABLEPAY_WEBHOOK_ALLOWED_HOSTS: comma-separated host names, IP addresses or CIDR ranges. A bad
    entry raises ImproperlyConfigured naming it (the setting is read at start-up)."""
    if isinstance(value, AllowList):
        return value
    items = value.split(",") if isinstance(value, str) else list(value or [])
    names: set[str] = set()
    networks: list[IPNetwork] = []
    for raw in items:
        entry = str(raw).strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        try:
            host = _normalise_name(entry)
        except TargetRefused as exc:
            raise ImproperlyConfigured(
                f"{ALLOWED_HOSTS_VARIABLE}: {entry!r} is not a host name, IP address or CIDR range"
            ) from exc
        if _ipv4_spelling(host) is not None:
            raise ImproperlyConfigured(f"{ALLOWED_HOSTS_VARIABLE}: write {entry!r} as a dotted IPv4 address")
        names.add(host)
    return AllowList(frozenset(names), tuple(networks))


def allowed_hosts() -> AllowList:
    """STABLEPAY["WEBHOOK_ALLOWED_HOSTS"] when the host's settings set it, else the environment variable
    (stablepay/conf.py)."""
    return parse_allowed_hosts(app_settings.WEBHOOK_ALLOWED_HOSTS)


# Reading a URL -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WebhookUrl:
    scheme: str
    host: str  # IDNA-encoded lower-case name, or an IP address in its canonical form (no brackets)
    port: int
    target: str  # the request target: path and query, ASCII
    address: IPAddress | None  # set when the URL names an IP address instead of a host name

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if isinstance(self.address, ipaddress.IPv6Address) else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse(url: str) -> WebhookUrl:
    """The parts of a webhook URL, normalised; TargetRefused when it is not one we would send to."""
    if not isinstance(url, str) or not url or len(url) > 2000 or any(ord(c) <= 32 or ord(c) == 127 for c in url):
        raise TargetRefused("not a valid URL", code="invalid")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused("not a valid URL", code="invalid") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise TargetRefused("must be an http or https URL", code="scheme")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise TargetRefused("must not carry a user name or password", code="invalid")
    if "\\" in parts.netloc:
        raise TargetRefused("not a valid URL", code="invalid")
    raw_host = parts.hostname or ""
    if not raw_host:
        raise TargetRefused("has no host", code="invalid")
    if port is None:
        port = 443 if scheme == "https" else 80
    if not 1 <= port <= 65535:
        raise TargetRefused("has no valid port", code="invalid")
    address: IPAddress | None
    if parts.netloc.rsplit("@", 1)[-1].startswith("["):
        try:
            address = ipaddress.IPv6Address(raw_host)
        except ValueError as exc:
            raise TargetRefused("not a valid IPv6 address", code="invalid") from exc
        if address.scope_id:
            raise TargetRefused("must not name an IPv6 zone", code="host")
        host = str(address)
    else:
        host = _normalise_name(raw_host)
        address = _ipv4_spelling(host)
        if address is not None:
            host = str(address)
    target = quote(parts.path or "/", safe=PATH_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=PATH_SAFE)
    return WebhookUrl(scheme=scheme, host=host, port=port, target=target, address=address)


def _normalise_name(raw: str) -> str:
    host = raw.strip().lower()
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise TargetRefused("has no host", code="invalid")
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii").lower()
        except (idna.IDNAError, UnicodeError) as exc:
            raise TargetRefused("has a host name that is not valid", code="invalid") from exc
    if len(host) > 253 or not all(HOST_LABEL.match(label) for label in host.split(".")):
        raise TargetRefused("has a host name that is not valid", code="invalid")
    return host


def _ipv4_spelling(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a host means when its last label is a number (the WHATWG URL rule, which is also
    what inet_aton reads): 1 to 4 parts, each decimal, 0x-hex or 0-octal, the last filling the rest.
    None for a host name; TargetRefused for a number that is no address."""
    labels = host.split(".")
    if not NUMBER_LABEL.match(labels[-1]):
        return None
    if len(labels) > 4 or not all(NUMBER_LABEL.match(label) for label in labels):
        raise TargetRefused("is not a valid IPv4 address", code="invalid")
    numbers = []
    for label in labels:
        if label[:2] in ("0x", "0X"):
            numbers.append(int(label[2:] or "0", 16))
        elif len(label) > 1 and label.startswith("0"):
            try:
                numbers.append(int(label, 8))
            except ValueError as exc:
                raise TargetRefused("is not a valid IPv4 address", code="invalid") from exc
        else:
            numbers.append(int(label))
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise TargetRefused("is not a valid IPv4 address", code="invalid")
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


# The address rule ----------------------------------------------------------------------------------
def address_refusal(address: IPAddress) -> str | None:
    """Why a connection to this address is refused when nothing admits it (None: a public address)."""
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_loopback:
        return "a loopback address"
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "a scoped IPv6 address"
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped address"
        if address in IPV4_COMPATIBLE:
            return "an IPv4-compatible address"
        if address in NAT64_LOCAL:
            return "a private address"
        embedded: list[ipaddress.IPv4Address] = []
        if address in NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None:
            embedded.append(address.sixtofour)
        if address.teredo is not None:
            embedded.extend(address.teredo)
        for inner in embedded:
            if address_refusal(inner) is not None:
                return "an address that carries a non-public IPv4 address"
    if address.is_link_local:
        return "a link-local address"
    if isinstance(address, ipaddress.IPv4Address) and address in SHARED:
        return "a private address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local):
        return "a reserved address"
    if not address.is_global:
        return "not a public address"
    return None


def _admitted(address: IPAddress, allow: AllowList, *, by_name: bool) -> str | None:
    """None when a connection to `address` is allowed; else why not."""
    if address.is_unspecified or address.is_multicast:
        return address_refusal(address)  # never admitted, not even by the allow-list
    if by_name or allow.admits_address(address):
        return None
    return address_refusal(address)


def _name_refusal(host: str) -> str | None:
    if host == "localhost" or host.endswith(LOCAL_SUFFIXES):
        return "is a local host name"
    if "." not in host:
        return "is not a fully qualified public host name"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to for a TCP connection, in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


class Unresolved(TargetRefused):
    """The name did not resolve (no answer, or the resolver failed)."""

    def __init__(self) -> None:
        super().__init__("the host name does not resolve", code="host")


def resolve(url: WebhookUrl, *, resolver: Resolver | None = None) -> list[IPAddress]:
    """The addresses a delivery to `url` may connect to: every one the name resolves to, each checked.
    TargetRefused when any of them is not allowed (a name that answers with one private address among
    public ones is refused whole), or when the name does not resolve (Unresolved)."""
    allow = allowed_hosts()
    by_name = allow.admits_name(url.host)
    if url.address is not None:
        addresses: list[IPAddress] = [url.address]
    else:
        if not by_name and (why := _name_refusal(url.host)):
            raise TargetRefused(f"{url.host} {why}")
        try:
            answers = (resolver or system_resolver)(url.host, url.port)
        except (OSError, UnicodeError) as exc:
            raise Unresolved() from exc
        addresses = []
        for text in answers:
            try:
                address = ipaddress.ip_address(text)
            except ValueError as exc:
                raise TargetRefused(f"{url.host} resolves to something that is not an IP address") from exc
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise Unresolved()
    for address in addresses:
        why = _admitted(address, allow, by_name=by_name)
        if why is not None:
            raise TargetRefused(f"{url.host} is {why}" if url.address is not None else f"{url.host} resolves to {why}")
    return addresses


def check(url: str, *, resolver: Resolver | None = None) -> WebhookUrl:
    """The rule at save time: TargetRefused when the URL may not be used. A name that does not resolve
    now is accepted (it may before the first event; every delivery checks it again)."""
    parsed = parse(url)
    with contextlib.suppress(Unresolved):
        resolve(parsed, resolver=resolver)
    return parsed


# Delivery ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    reason: str  # "" on a 2xx; short and ours otherwise, never text the receiver sent

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


REDIRECT_REASON = "redirect not followed"
# Every reason `post` and webhooks.deliver store is one of these; anything else in a stored row (a response
# body kept before issue 16) is not shown again.
SHOWN_REASON = re.compile(
    r"^(refused: [^\n]{1,300}"
    r"|connection (timed out|refused or unreachable|closed without a valid HTTP answer|failed)"
    r"|could not resolve the host name|timed out waiting for the answer|TLS handshake or certificate check failed"
    r"|HTTP [0-9]{3}( [A-Za-z' -]{1,40})?|no webhook signing secret is set|redirect not followed)\Z"
)


def status_reason(status: int) -> str:
    """The short reason stored for a non-2xx answer: our wording for the code, not the server's."""
    if 300 <= status < 400:
        return REDIRECT_REASON
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def shown_reason(stored: str) -> str:
    """What a merchant or support sees of a stored reason: only the short reasons written here."""
    text = (stored or "").strip()
    if text and not SHOWN_REASON.match(text):
        return "delivery failed"
    return text


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    resolver: Resolver | None = None,
) -> Outcome:
    """One POST of a webhook: checked, pinned to the checked address, no redirects, body unread."""
    try:
        parsed = parse(url)
        addresses = resolve(parsed, resolver=resolver)
    except Unresolved:
        return Outcome(None, "could not resolve the host name")
    except TargetRefused as exc:
        return Outcome(None, f"refused: {exc.reason}")
    last = Outcome(None, "connection failed")
    for address in addresses:
        outcome, connected = _post_to(parsed, address, body, headers, timeout=timeout)
        if connected:
            return outcome
        last = outcome
    return last


def _post_to(
    url: WebhookUrl, address: IPAddress, body: bytes, headers: dict[str, str], *, timeout: float
) -> tuple[Outcome, bool]:
    """(outcome, whether a TCP connection was made): the caller tries the next address only when not."""
    pool: urllib3.HTTPConnectionPool
    ip = str(address)
    pool_timeout = urllib3.Timeout(connect=timeout, read=timeout)
    if url.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            ip,
            url.port,
            timeout=pool_timeout,
            maxsize=1,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=CA_BUNDLE or _default_ca_bundle(),
            # SNI and the certificate check use the URL's name; the socket goes to the checked address.
            server_hostname=url.host if url.address is None else None,
            assert_hostname=url.host,
        )
    else:
        pool = urllib3.HTTPConnectionPool(ip, url.port, timeout=pool_timeout, maxsize=1, retries=False)
    try:
        response = pool.urlopen(
            "POST",
            url.target,
            body=body,
            headers={**headers, "Host": url.host_header, "Connection": "close"},
            retries=False,
            redirect=False,
            assert_same_host=False,
            preload_content=False,  # the body is never read
            release_conn=False,
        )
        status = int(response.status)
        response.close()
    except (NewConnectionError, ConnectTimeoutError) as exc:
        # urllib3's NewConnectionError (refused, unreachable) subclasses ConnectTimeoutError.
        timed_out = not isinstance(exc, NewConnectionError) or "timed out" in str(exc)
        return Outcome(None, "connection timed out" if timed_out else "connection refused or unreachable"), False
    except NameResolutionError:  # not expected: the host given to urllib3 is an IP address
        return Outcome(None, "could not resolve the host name"), False
    except SSLError:
        return Outcome(None, "TLS handshake or certificate check failed"), True
    except ReadTimeoutError:
        return Outcome(None, "timed out waiting for the answer"), True
    except (ProtocolError, HTTPError, OSError):
        return Outcome(None, "connection closed without a valid HTTP answer"), True
    finally:
        pool.close()
    return Outcome(status, "" if 200 <= status < 300 else status_reason(status)), True


def _default_ca_bundle() -> str | None:
    try:
        import certifi
    except ImportError:  # pragma: no cover - requests depends on certifi
        return None
    return str(certifi.where())
