"""The local dev chain and demo helpers: anvil, the test tokens, paying a request from a test key. Never imported
by production code paths.
"""
