"""Demo and development only: pay a request from a well-known local anvil account (chain id 31337).

Never used by the production path. The keys come from anvil's public test mnemonic and hold nothing
on any real chain; the chain id guard keeps this from ever signing for another network.
"""

from __future__ import annotations

from web3 import Web3

from stablepay.dev import chain as devchain
from stablepay.models import PaymentRequest
from stablepay.redact import scrub

LOCAL_CHAIN_IDS = {31337, 1337}


class NotALocalChain(RuntimeError):
    pass


class DevPayError(RuntimeError):
    """The demo payment failed; the message names the node by scheme and host only."""


def pay_request(request: PaymentRequest, *, amount_base_units: int | None = None, sender_index: int = 1) -> str:
    """Send the amount due (or `amount_base_units`) of the request's token to its deposit address."""
    chain = request.token.chain
    if chain.chain_id not in LOCAL_CHAIN_IDS:
        raise NotALocalChain(f"chain {chain.chain_id} is not a local development chain")
    w3 = Web3(Web3.HTTPProvider(chain.rpc_urls[0], request_kwargs={"timeout": 10}))
    try:
        if w3.eth.chain_id != chain.chain_id:
            raise NotALocalChain(f"chain {chain.chain_id} is not a local development chain")
        amount = int(request.amount_due_base_units) if amount_base_units is None else amount_base_units
        token, to = request.token.address, request.pay_to
        return devchain.transfer(w3, token, to, amount, sender_index=sender_index, wait=True)
    except NotALocalChain:
        raise
    except Exception as exc:  # the payment page shows the reason: never the node URL's path or key
        raise DevPayError(scrub(str(exc) or exc.__class__.__name__, chain.rpc_urls)) from None
