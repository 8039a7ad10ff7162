"""stablepay: stablecoin payment requests for Django stores, watched on EVM chains without private keys."""
