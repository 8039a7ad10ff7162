"""Hand decoding of Transfer logs against web3's generic decoder, and refusal of malformed answers."""

from __future__ import annotations

import pytest

from stablepay.chain import devchain
from stablepay.chain.reader import ChainError
from stablepay.chain.rpc import RpcChainReader, decode_transfer_logs
from tests.support.services import Anvil


def test_hand_decoder_matches_web3(anvil: Anvil) -> None:
    w3 = anvil.w3
    token = devchain.deploy_token(w3, name="T", symbol="T", decimals=6)
    devchain.mint(w3, token, devchain.dev_account(1).address, 10**12)
    devchain.transfer(w3, token, devchain.dev_account(2).address, 123_456_789)
    reader = RpcChainReader([anvil.url])
    logs = reader.transfer_logs([token], 0, w3.eth.block_number)
    contract = devchain.token_contract(w3, token)
    expected = [
        contract.events.Transfer().process_log(raw) for raw in w3.eth.get_logs({"address": token, "fromBlock": 0})
    ]
    assert [(log.from_address, log.to_address, log.value) for log in logs] == [
        (e["args"]["from"].lower(), e["args"]["to"].lower(), e["args"]["value"]) for e in expected
    ]
    assert all(log.block_timestamp for log in logs)


@pytest.mark.parametrize(
    "raw",
    [
        {"not": "a list"},
        [
            {
                "topics": ["0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef", "0x1", "0x2"],
                "data": "0x" + "0" * 64,
            }
        ],
        [{"address": "0x1"}],
    ],
)
def test_malformed_logs_discard_the_answer(raw: object) -> None:
    with pytest.raises(ChainError):
        decode_transfer_logs(raw)


def test_unreachable_nodes_fail_over_then_error() -> None:
    reader = RpcChainReader(["http://127.0.0.1:9", "http://127.0.0.1:10"], timeout=1)
    with pytest.raises(ChainError, match=r"127\.0\.0\.1:9.*127\.0\.0\.1:10"):
        reader.snapshot([])
