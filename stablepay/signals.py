"""The one outward signal: a payment request changed status (paid, confirming, resolved, canceled...).

Sent inside the transaction that made the change, so a receiver's writes (the store marking its
order paid) commit or roll back with it. Arguments: payment_request, previous_status, status,
exception, actor.
"""

from django.dispatch import Signal

payment_request_status_changed = Signal()
