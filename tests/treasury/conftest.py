"""Treasury fixtures: a private anvil's web3 and our test stablecoin, funded at the payer account."""

from __future__ import annotations

import pytest
from web3 import Web3

from stablepay.dev import chain as devchain
from tests.support.services import Anvil
from tests.support.treasury import PAYER


@pytest.fixture
def w3(anvil: Anvil) -> Web3:
    return anvil.w3


@pytest.fixture
def hkdx(w3: Web3) -> str:
    token = devchain.deploy_token(w3, name="HKD Stablecoin", symbol="HKDX", decimals=6)
    devchain.mint(w3, token, devchain.dev_account(PAYER).address, 10**15)
    return token
