"""What the payment page's browser-wallet button (static/stablepay/wallet.js) needs to know, as JSON data.

The chain parameters follow EIP-3085 (`wallet_addEthereumChain`). The RPC URLs given to the shopper's
wallet are public ones: `WALLET_RPC_URLS` (stablepay/conf.py) per chain id, or, for a local development chain
only, the chain's own RPC URLs that are a bare scheme and host (a deployment's node URLs often carry a
provider API key in their path, query or user-info).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from stablepay.conf import app_settings
from stablepay.models import Chain, PaymentRequest
from stablepay.redact import redact_url

LOCAL_CHAIN_IDS = {31337, 1337}
TX_PLACEHOLDER = "__TX__"
NATIVE_CURRENCY = {"name": "Ether", "symbol": "ETH", "decimals": 18}


def public_rpc_urls(chain: Chain) -> list[str]:
    """The RPC URLs a wallet may be told to add: configured public ones, else a local chain's own."""
    configured = app_settings.WALLET_RPC_URLS
    urls = configured.get(str(chain.chain_id)) or configured.get(chain.chain_id)
    if urls:
        return [str(u) for u in urls]
    if chain.chain_id in LOCAL_CHAIN_IDS:  # only a bare scheme://host[:port]: a path, query or user-info may be a key
        return [str(u) for u in chain.rpc_urls if redact_url(u) == str(u).strip().rstrip("/")]
    return []


def wallet_config(payment_request: PaymentRequest) -> dict[str, Any]:
    """The token, the deposit address and the chain's EIP-3085 parameters for the wallet button."""
    token = payment_request.token
    chain = token.chain
    explorer = chain.explorer_link(TX_PLACEHOLDER)
    return {
        "chain_id": hex(chain.chain_id),
        "chain_name": chain.name,
        "rpc_urls": public_rpc_urls(chain),
        "native_currency": NATIVE_CURRENCY,
        "token_address": token.address,
        "token_symbol": token.symbol,
        "decimals": token.decimals,
        "pay_to": payment_request.pay_to,
        "explorer_tx_url": explorer,
        "tx_placeholder": TX_PLACEHOLDER,
    }


def wallet_texts(payment_request: PaymentRequest) -> dict[str, str]:
    """The button's messages, translated. `{amount}`, `{balance}`, `{account}` and `{reason}` are filled in
    by wallet.js; everything known here is filled in now."""
    chain = payment_request.token.chain
    names = {"chain": chain.name, "chain_id": chain.chain_id, "token": payment_request.token.symbol}
    return {
        "connecting": _("Connecting to your wallet…"),
        "switching": _("Asking your wallet to switch to %(chain)s…") % names,
        "checking": _("Checking your %(token)s balance…") % names,
        # Translators: {amount} is a token amount such as 388.000000, filled in by the page.
        "confirm": _("Confirm the payment of {amount} %(token)s in your wallet.") % names,
        "sent": _("Payment sent from your wallet. The status above updates as the network confirms it."),
        "rejected": _("You declined the request in your wallet. Nothing was sent; you can try again."),
        "wrong_chain": _(
            "Your wallet is on another network and could not switch to %(chain)s (chain id %(chain_id)s). "
            "Switch it to %(chain)s and try again, or pay with the QR code above."
        )
        % names,
        # Translators: {balance} and {amount} are token amounts, {account} a shortened wallet address.
        "low_balance": _(
            "Not enough %(token)s: your account {account} holds {balance} %(token)s and this payment needs "
            "{amount} %(token)s. Nothing was sent."
        )
        % names,
        "no_wallet": _("No browser wallet was found. Pay with the QR code or the address above."),
        "no_account": _("Your wallet did not share an account. Unlock it and try again."),
        "pending": _("Your wallet already has a request waiting. Open your wallet to answer it, then try again."),
        "nothing_due": _("Nothing is left to pay on this request."),
        # Translators: {reason} is the wallet's own error message, often in English.
        "failed": _("Your wallet could not send the payment ({reason}). You can try again, or pay with the QR code."),
    }
