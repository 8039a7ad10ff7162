"""Hand decoding of Transfer logs against web3's generic decoder, and refusal of malformed answers."""

from __future__ import annotations

import pytest

from stablepay.chain.reader import TRANSFER_TOPIC, BlockRef, ChainError
from stablepay.chain.rpc import RpcChainReader, decode_transfer_logs
from stablepay.dev import chain as devchain
from tests.support.services import Anvil


def test_hand_decoder_matches_web3(anvil: Anvil) -> None:
    w3 = anvil.w3
    token = devchain.deploy_token(w3, name="T", symbol="T", decimals=6)
    devchain.mint(w3, token, devchain.dev_account(1).address, 10**12)
    devchain.transfer(w3, token, devchain.dev_account(2).address, 123_456_789)
    reader = RpcChainReader([anvil.url])
    logs, tip = reader.transfer_logs([token], 0, w3.eth.block_number)
    assert tip.number == w3.eth.block_number and tip.hash == w3.eth.get_block("latest")["hash"].to_0x_hex()
    contract = devchain.token_contract(w3, token)
    expected = [
        contract.events.Transfer().process_log(raw) for raw in w3.eth.get_logs({"address": token, "fromBlock": 0})
    ]
    assert [(log.from_address, log.to_address, log.value) for log in logs] == [
        (e["args"]["from"].lower(), e["args"]["to"].lower(), e["args"]["value"]) for e in expected
    ]
    assert all(log.block_timestamp for log in logs)
    # The same logs asked block by block, by hash (EIP-234): one call each, the same decoding.
    by_hash = []
    for number in sorted({log.block_number for log in logs}):
        (header,) = reader.blocks([number]).values()
        assert header is not None
        by_hash += reader.block_transfer_logs([token], header)
    assert by_hash == logs


def test_logs_by_hash_of_a_block_the_node_lacks_are_an_error(anvil: Anvil) -> None:
    reader = RpcChainReader([anvil.url])
    head = reader.head()
    gone = BlockRef(head.number, "0x" + "ab" * 32, head.timestamp, head.parent_hash)
    with pytest.raises(ChainError, match="unknown block"):
        reader.block_transfer_logs(["0x" + "11" * 20], gone)
    before = reader.calls
    reader.blocks([0, 1])
    assert reader.calls - before == 2  # a batch is billed per call in it


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
        reader.head()


def _transfer_log(to: str, *, data: str = "0x" + "0" * 63 + "5") -> dict[str, object]:
    return {
        "address": "0x" + "11" * 20,
        "topics": [TRANSFER_TOPIC, "0x" + "0" * 24 + "22" * 20, "0x" + "0" * 24 + to],
        "data": data,
        "blockHash": "0x" + "33" * 32,
        "blockNumber": "0x10",
        "transactionHash": "0x" + "44" * 32,
        "logIndex": "0x0",
    }


def test_keep_sees_every_recipient_and_only_kept_logs_are_decoded() -> None:
    watched, other = "ab" * 20, "cd" * 20
    seen: list[set[str]] = []

    def keep(recipients: set[str]) -> set[str]:
        seen.append(recipients)
        return {"0x" + watched}

    # The unwatched log is malformed past its recipient: with `keep` it is never decoded.
    raw = [_transfer_log(watched.upper()), _transfer_log(other, data="0x" + "zz" * 32)]
    [log] = decode_transfer_logs(raw, keep)
    assert seen == [{"0x" + watched, "0x" + other}]
    assert (log.to_address, log.value, log.block_number) == ("0x" + watched, 5, 16)
    with pytest.raises(ChainError):
        decode_transfer_logs(raw)  # without it, every log is decoded and checked


@pytest.mark.parametrize(
    "broken",
    [{"removed": True}, {"topics": [TRANSFER_TOPIC, "0x1", "0x2"]}, {"topics": None}],
)
def test_a_malformed_or_removed_log_voids_the_answer_even_unwatched(broken: dict[str, object]) -> None:
    raw = [_transfer_log("ab" * 20), {**_transfer_log("cd" * 20), **broken}]
    with pytest.raises(ChainError):
        decode_transfer_logs(raw, lambda recipients: {"0x" + "ab" * 20})
