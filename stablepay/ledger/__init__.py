"""The money's record: request workflows (services), reads (selectors), the pure reconciliation rules, the
representation of a payment request, the webhook outbox (and its signal), the set-based pass, reports, archive
and retention.
"""
