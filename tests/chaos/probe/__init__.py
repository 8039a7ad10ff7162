"""A receiver for stablepay's status signals that writes each one to `chaos_signal_log`.

It runs inside the transaction that sent the signal (as the store's own receiver does), so a row
exists exactly when the change committed: the fault suite counts the `paid` signals per request from
it. The table is made by tests.support.stack (no migration: it exists only in the suite's database).
"""
