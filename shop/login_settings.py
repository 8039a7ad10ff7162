"""The host's passkey settings, worked out while shop/settings.py is read (so: no models, no Django setup).

They are the host's login configuration (django-otp-webauthn reads OTP_WEBAUTHN_RP_ID and
OTP_WEBAUTHN_ALLOWED_ORIGINS), not stablepay's: a store that adopts stablepay sets its own.

`webauthn_relying_party` works out the passkey relying party (its ID, a host name) and the origins a passkey
ceremony may come from. A passkey is bound to its relying party ID: browsers refuse an IP address as one, and
accept plain http only on `localhost`. So:

- explicit `rp_id` / `origins` (env OTP_WEBAUTHN_RP_ID, OTP_WEBAUTHN_ALLOWED_ORIGINS) win;
- else an https STABLEPAY_BASE_URL gives both (its host, its origin);
- else, with HTTPS=true, the first ALLOWED_HOSTS entry that is a plain name, over https;
- else (development, the demo on 127.0.0.1:PORT) `localhost` and http://localhost:PORT, so passkeys work
  when the site is opened as http://localhost:PORT/.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit


def _is_name(host: str) -> bool:
    if not host or host.startswith((".", "*")) or host.startswith("["):
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


def webauthn_relying_party(
    *, base_url: str, https: bool, allowed_hosts: Sequence[str], rp_id: str = "", origins: Sequence[str] = ()
) -> tuple[str, list[str]]:
    """(relying party ID, allowed origins); see the module docstring."""
    base = urlsplit(base_url)
    if base.scheme == "https" and base.hostname and _is_name(base.hostname):
        default_id, default_origins = base.hostname, [f"https://{base.netloc}"]
    elif https and (names := [h for h in allowed_hosts if _is_name(h)]):
        default_id, default_origins = names[0], [f"https://{names[0]}"]
    else:
        port = f":{base.port}" if base.port else ""
        default_id, default_origins = "localhost", [f"http://localhost{port}"]
    return rp_id or default_id, list(origins) or default_origins
