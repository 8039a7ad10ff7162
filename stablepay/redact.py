"""Node URLs reduced to what may leave the process: scheme and host only (issue 16, part 4).

A provider's RPC or websocket URL often carries its API key in the path (`https://…/v2/KEY`), the query
(`?apikey=`) or the user-info (`https://user:pass@host`). Every message that leaves the process (the
watcher's recorded error, /healthz, the ops console, the admin, logs, management command output) names
a node by `redact_url(url)`: `https://host[:port]`, nothing else. `redact_text` does the same to free
text that may quote a URL (an exception message, an error recorded before this rule).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

REDACTED = "[redacted url]"
SECRET = "[redacted]"
MIN_SECRET_PATH = 6  # shorter path segments ("v2", "rpc", "eth") are names, not keys
MIN_SECRET_VALUE = 4

# scheme://anything-up-to-whitespace-or-a-quote: the whole URL, whatever it carries.
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,15}://[^\s'\"<>]+")
# requests/urllib3 quote the path alone: "Max retries exceeded with url: /v2/KEY?apikey=…", "url='/v2/KEY'".
_TRAILING = ".,;:!?)]}"
# An HTTP request line as urllib3 and websockets log it at DEBUG: "POST /v2/KEY HTTP/1.1".
_REQUEST_LINE = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|CONNECT) (/[^\s\"']*)")
# A credential header as websockets logs the handshake ("> Authorization: Basic <user:pass in base64>").
_CREDENTIAL_HEADER = re.compile(r"\b((?:proxy-)?authorization|(?:set-)?cookie)(\s*:\s*)[^\n]*", re.IGNORECASE)
# Third-party loggers that quote request URLs or paths (urllib3 for the RPC nodes, websockets for newHeads).
THIRD_PARTY_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.util.retry",
    "urllib3.response",
    "websockets.client",
)
_PATH_IN_TEXT = re.compile(r"(\burl\s*[:=]\s*'?)(/[^\s'\"]*)", re.IGNORECASE)


def redact_url(url: object) -> str:
    """`scheme://host[:port]` of `url`: no user-info, path, query or fragment. Anything that does not
    parse as a URL with a host is shown as REDACTED, never as given."""
    text = str(url).strip()
    try:
        parts = urlsplit(text)
        host = parts.hostname
        port = parts.port
    except ValueError:  # a malformed port or IPv6 literal
        return REDACTED
    scheme = parts.scheme.lower()
    if not scheme or not host or not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
        return REDACTED
    if not re.fullmatch(r"[A-Za-z0-9._:%-]+", host):  # hostname is only ever these; anything else is not shown
        return REDACTED
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return f"{scheme}://{netloc}"


def redact_urls(urls: object) -> list[str]:
    """Each URL of a list (a Chain's rpc_urls) redacted; a non-list gives []."""
    if not isinstance(urls, (list, tuple)):
        return []
    return [redact_url(u) for u in urls]


def _redact_match(match: re.Match[str]) -> str:
    url = match.group(0)
    stripped = url.rstrip(_TRAILING)  # "https://host:8545: HTTP 500": the colon is the message's, not the URL's
    return redact_url(stripped) + url[len(stripped) :]


def redact_text(text: object) -> str:
    """`text` with every URL in it reduced to scheme and host, and every quoted URL path dropped."""
    out = _URL_IN_TEXT.sub(_redact_match, str(text))
    return _PATH_IN_TEXT.sub(lambda m: m.group(1) + "[path redacted]", out)


def secret_parts(url: object) -> set[str]:
    """What in `url` may be a credential: its user-info, its longer path segments, its query values and
    fragment, each also percent-decoded. A URL that does not parse is a secret as a whole."""
    text = str(url).strip()
    try:
        parts = urlsplit(text)
        _ = parts.port
    except ValueError:
        return {text} if text else set()
    found = {parts.username or "", parts.password or "", parts.fragment}
    found.update(s for s in parts.path.split("/") if len(s) >= MIN_SECRET_PATH)
    found.update(value for _, value in parse_qsl(parts.query, keep_blank_values=True))
    found |= {unquote(s) for s in found}
    return {s for s in found if len(s) >= MIN_SECRET_VALUE}


def scrub(text: object, urls: Iterable[object]) -> str:
    """`redact_text(text)`, and any secret part of `urls` it still quotes (a node echoing its key in an
    error message) replaced by SECRET."""
    out = redact_text(text)
    secrets: set[str] = set()
    for url in urls:
        secrets |= secret_parts(url)
    for secret in sorted(secrets, key=len, reverse=True):  # as a whole token: "user" spares "username"
        out = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", SECRET, out)
    return out


def redact_log_text(text: object, urls: Iterable[object] = ()) -> str:
    """`scrub(text, urls)`, and also the path of a logged HTTP request line and any credential header."""
    out = _REQUEST_LINE.sub(lambda m: f"{m.group(1)} [path redacted]", scrub(text, urls))
    return _CREDENTIAL_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", out)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message through redact_log_text (for loggers stablepay does not write to)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: let logging report it as it would
            return True
        record.msg, record.args = redact_log_text(message), None
        return True


REDACTING_FILTER = RedactingFilter()


def install_log_filters() -> None:
    """Put RedactingFilter on the third-party loggers that quote request URLs (once; AppConfig.ready)."""
    for name in THIRD_PARTY_LOGGERS:
        target = logging.getLogger(name)
        if REDACTING_FILTER not in target.filters:
            target.addFilter(REDACTING_FILTER)


class ScrubbingLogger(logging.LoggerAdapter):
    """A logger to hand a library that logs what it sends and receives (websockets logs the handshake's
    request line and headers and every frame at DEBUG): each message goes out through redact_log_text,
    with `urls`' secret parts taken out (a node echoing its key in a frame)."""

    def __init__(self, logger: logging.Logger, urls: Iterable[object]) -> None:
        super().__init__(logger, {})
        self.urls = list(urls)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        return msg, kwargs

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            self.logger.log(level, "%s", redact_log_text(text, self.urls), **kwargs)
