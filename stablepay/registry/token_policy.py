"""Which tokens a merchant accepts: its licence-status and currency policy, and the token's contract health.

`refusal` answers why a token may not be quoted for a merchant (or None); quotes and the checkout's list
of payment options both ask it, so a token outside the policy is neither offered nor quoted.
"""

from __future__ import annotations

from stablepay.models import Merchant, Token


def refusal(merchant: Merchant, token: Token) -> str | None:
    """Why `token` may not be quoted for `merchant`, or None when it may."""
    if token.halted_reason:
        return f"{token.symbol} is suspended: {token.halted_reason}"
    statuses = merchant.accepted_licence_statuses
    if isinstance(statuses, list) and token.licence_status not in statuses:
        return (
            f"{token.symbol} is {token.licence_status}; this merchant accepts only {', '.join(statuses) or 'no'} tokens"
        )
    currencies = merchant.accepted_token_currencies
    if currencies and token.currency not in currencies:
        return f"{token.symbol} is a {token.currency} coin; this merchant accepts only {', '.join(currencies)} coins"
    return None
