"""The ops console: the exceptions queue, request detail, decisions with four-eyes approval, watcher health.

services.py writes (every decision is an append-only OpsAction plus a timeline event), selectors.py
reads, lookalikes.py probes a chain on demand for look-alike token transfers, views.py is thin.
"""
