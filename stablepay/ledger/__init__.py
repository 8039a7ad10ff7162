"""The money's record: request workflows (services), reads (selectors), the pure reconciliation rules, the
outbox, the set-based pass, reports, archive and retention.
"""
