"""Webhook delivery to merchants: signing (stablepay and Standard Webhooks formats), where a delivery may go,
retries and secret rotation.
"""
