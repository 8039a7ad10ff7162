"""stablepay: stablecoin payment requests for Django stores, watched on EVM chains without private keys."""

__version__ = "1.0.0"  # the one place: pyproject.toml reads it (hatch version)
