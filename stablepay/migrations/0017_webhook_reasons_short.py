"""Issue 16 part 1, leftover: before it, a failed webhook delivery stored what the receiver answered (up to
500 characters of its response body) or the HTTP client's exception text (which could carry the URL) in
WebhookDelivery.last_error. Since then only the status code and a short reason of ours are stored
(stablepay/webhooks/target.py). This rewrites every older row to what the current code would have stored:

- a reason the current code writes (webhook_target.SHOWN_REASON) is kept;
- with a status code: "" for a 2xx, "redirect not followed" for a 3xx, else "HTTP <code> <phrase>"
  (webhook_target.status_reason);
- without one (a connection error): "connection failed", the reason `post` stores when no finer one applies.

The old text is not kept anywhere, so the reverse leaves the short reasons as they are.
"""

import re
from http import HTTPStatus

from django.db import migrations

# A frozen copy of stablepay.webhooks.target.SHOWN_REASON and status_reason at the time of this migration.
SHOWN_REASON = re.compile(
    r"^(refused: [^\n]{1,300}"
    r"|connection (timed out|refused or unreachable|closed without a valid HTTP answer|failed)"
    r"|could not resolve the host name|timed out waiting for the answer|TLS handshake or certificate check failed"
    r"|HTTP [0-9]{3}( [A-Za-z' -]{1,40})?|no webhook signing secret is set|redirect not followed)\Z"
)


def short_reason(stored, status):  # type: ignore[no-untyped-def]
    text = (stored or "").strip()
    if not text or SHOWN_REASON.match(text):
        return text
    if status is None:
        return "connection failed"
    if 200 <= status < 300:
        return ""
    if 300 <= status < 400:
        return "redirect not followed"
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    WebhookDelivery = apps.get_model("stablepay", "WebhookDelivery")
    rows = WebhookDelivery.objects.exclude(last_error="").values_list("pk", "last_error", "last_status_code")
    for pk, stored, status in rows.iterator(chunk_size=2000):
        short = short_reason(stored, status)
        if short != stored:
            WebhookDelivery.objects.filter(pk=pk).update(last_error=short)


class Migration(migrations.Migration):
    dependencies = [("stablepay", "0016_change_proposal_append_only")]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
