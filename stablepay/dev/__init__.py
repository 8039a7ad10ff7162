"""The local dev chain and demo helpers: anvil, the test tokens, paying a request from a test key, the payment
page's demo button (views). Never imported by production code paths (.importlinter says which dev-only faces may).
"""
