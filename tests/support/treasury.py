"""The treasury tests' payer: the anvil dev account that pays the deposit addresses (funded with the test
stablecoin by tests/treasury/conftest.py's `hkdx`)."""

PAYER = 1
