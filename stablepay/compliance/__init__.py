"""Payer screening, audit bundles and the checks on the secrets they depend on."""
