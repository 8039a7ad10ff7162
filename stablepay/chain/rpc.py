"""The only module that speaks JSON-RPC: raw HTTP calls, batches, fail-over and hand decoding of logs.

Transfer logs are decoded by hand (from = topics[1], to = topics[2], value = data), which is two orders
of magnitude faster than web3's generic ABI decoder; only those paying a watched address are decoded in
full. An answer that does not parse is an error: the whole call is discarded, never half-used.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import orjson
import requests

from stablepay.chain.reader import TRANSFER_TOPIC, BlockRef, ChainError, Keep, RangeTooLarge, TransferLog
from stablepay.redact import redact_url, scrub

logger = logging.getLogger(__name__)

_RANGE_ERRORS = re.compile(
    r"block range|range too (large|wide)|too many (results|blocks|logs)|more than \d+ results|"
    r"response size|limit exceeded|query timeout|exceed(s|ed)? .*range",
    re.IGNORECASE,
)
_SUGGESTED_RANGE = re.compile(r"\[\s*(0x[0-9a-fA-F]+)\s*,\s*(0x[0-9a-fA-F]+)\s*\]")
_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")


def _hex_int(value: Any) -> int:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ChainError(f"expected a hex quantity, got {value!r:.40}")
    return int(value, 16)


def _hash32(value: Any) -> str:
    if not isinstance(value, str) or not _HEX32.match(value):
        raise ChainError(f"expected a 32-byte hash, got {value!r:.80}")
    return value.lower()


def parse_answer(body: bytes) -> Any:
    """A JSON-RPC answer body, parsed with orjson (twice json's speed on getLogs answers; bench P2).
    Raises ValueError on malformed JSON, and on integers past 64 bits, which JSON-RPC never sends."""
    return orjson.loads(body)


def decode_block(raw: Any) -> BlockRef | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ChainError("malformed block")
    return BlockRef(
        number=_hex_int(raw.get("number")),
        hash=_hash32(raw.get("hash")),
        timestamp=_hex_int(raw.get("timestamp")),
        parent_hash=_hash32(raw.get("parentHash")),
    )


def decode_transfer_logs(raw_logs: Any, keep: Keep | None = None) -> list[TransferLog]:
    """Transfer(address indexed from, address indexed to, uint256 value) logs, decoded by hand.

    Logs that are not ERC-20 Transfers (ERC-721 has a 4th topic) are skipped; a removed log, or one
    whose shape is malformed, makes the whole answer invalid. With `keep`, a first cheap pass collects
    every recipient, `keep` picks the ones the caller watches, and only their logs are fully decoded and
    checked: with 1% hits that is most of the decoding cost saved.
    """
    if not isinstance(raw_logs, list):
        raise ChainError("eth_getLogs did not return a list")
    transfers: list[tuple[str, dict[str, Any]]] = []
    for log in raw_logs:
        try:
            topics = log["topics"]
            if len(topics) != 3 or topics[0].lower() != TRANSFER_TOPIC:
                continue
            if log.get("removed"):
                raise ChainError("removed log in a getLogs answer")
            to_word = topics[2]
            if not isinstance(to_word, str) or len(to_word) != 66:
                raise ChainError(f"expected a 32-byte topic, got {to_word!r:.80}")
            transfers.append(("0x" + to_word[26:].lower(), log))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ChainError(f"malformed log: {exc}") from exc
    if keep is not None:
        wanted = keep({to for to, _ in transfers})
        transfers = [(to, log) for to, log in transfers if to in wanted]
    return [decoded for _, log in transfers if (decoded := _decode_transfer(log)) is not None]


def _decode_transfer(log: dict[str, Any]) -> TransferLog | None:
    try:
        topics, data = log["topics"], log["data"]
        if not isinstance(data, str) or len(data) != 66:
            return None  # not a plain uint256 value
        timestamp = log.get("blockTimestamp")
        return TransferLog(
            token=log["address"].lower(),
            tx_hash=_hash32(log["transactionHash"]),
            log_index=_hex_int(log["logIndex"]),
            block_number=_hex_int(log["blockNumber"]),
            block_hash=_hash32(log["blockHash"]),
            block_timestamp=_hex_int(timestamp) if timestamp is not None else None,
            from_address="0x" + _hash32(topics[1])[-40:],
            to_address="0x" + _hash32(topics[2])[-40:],
            value=int(data, 16),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ChainError(f"malformed log: {exc}") from exc


class RpcChainReader:
    """A ChainReader over one or more JSON-RPC URLs, failing over in order."""

    def __init__(self, urls: Sequence[str], *, timeout: float = 10.0, session: requests.Session | None = None) -> None:
        if not urls:
            raise ValueError("at least one RPC URL is needed")
        self.urls = list(urls)
        self.timeout = timeout
        self.session = session or requests.Session()
        self.calls = 0  # JSON-RPC calls sent, each element of a batch counted, as providers bill them
        self.http_requests = 0
        self.last_url = self.urls[0]  # the URL that gave the last answer

    def _post(self, url: str, payload: Any) -> Any:
        self.calls += len(payload) if isinstance(payload, list) else 1
        self.http_requests += 1
        try:
            response = self.session.post(
                url, data=json.dumps(payload), timeout=self.timeout, headers={"Content-Type": "application/json"}
            )
        except requests.RequestException as exc:  # its text quotes the URL's path: only the class is kept
            raise ChainError(f"{redact_url(url)}: {exc.__class__.__name__}") from None
        if response.status_code != 200:
            raise ChainError(f"{redact_url(url)}: HTTP {response.status_code}")
        try:
            return parse_answer(response.content)
        except ValueError as exc:
            raise ChainError(f"{redact_url(url)}: malformed JSON") from exc

    @staticmethod
    def _result(answer: Any) -> Any:
        if not isinstance(answer, dict):
            raise ChainError("malformed JSON-RPC answer")
        if "error" in answer:
            error = answer["error"]
            message = str(error.get("message", error)) if isinstance(error, dict) else str(error)
            if _RANGE_ERRORS.search(message):
                match = _SUGGESTED_RANGE.search(message)
                suggested = int(match.group(2), 16) - int(match.group(1), 16) + 1 if match else None
                raise RangeTooLarge(message, suggested)
            raise ChainError(f"JSON-RPC error: {message[:200]}")
        if "result" not in answer:
            raise ChainError("JSON-RPC answer without a result")
        return answer["result"]

    def _each_url(self, payload: Any, handle: Any, urls: Sequence[str] | None = None) -> Any:
        errors = []
        for url in urls or self.urls:
            try:
                answer = handle(self._post(url, payload))
                self.last_url = url
                return answer
            except RangeTooLarge as exc:
                raise RangeTooLarge(scrub(exc, self.urls), exc.suggested) from None
            except ChainError as exc:
                # Each node named by scheme and host only, and a node echoing its key has it taken out.
                host, message = redact_url(url), scrub(exc, self.urls)
                errors.append(message if message.startswith(host) else f"{host}: {message}")
                logger.warning("rpc %s failed: %s", host, message)
        raise ChainError("; ".join(errors))

    def call(self, method: str, params: list[Any]) -> Any:
        return self._each_url({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, self._result)

    @staticmethod
    def _payload(calls: Sequence[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
        return [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]

    def _batch_results(self, answer: Any, size: int) -> list[Any]:
        if not isinstance(answer, list) or len(answer) != size:
            raise ChainError("malformed batch answer")
        by_id = {item.get("id"): item for item in answer if isinstance(item, dict)}
        if set(by_id) != set(range(size)):
            raise ChainError("batch answer ids do not match")
        return [self._result(by_id[i]) for i in range(size)]

    def batch(self, calls: Sequence[tuple[str, list[Any]]], urls: Sequence[str] | None = None) -> list[Any]:
        return list(self._each_url(self._payload(calls), lambda answer: self._batch_results(answer, len(calls)), urls))

    def head(self) -> BlockRef:
        head = decode_block(self.call("eth_getBlockByNumber", ["latest", False]))
        if head is None:
            raise ChainError("the node has no latest block")
        return head

    def blocks(self, numbers: Sequence[int]) -> Mapping[int, BlockRef | None]:
        if not numbers:
            return {}
        results = self.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        known = {n: decode_block(r) for n, r in zip(numbers, results, strict=True)}
        for n, block in known.items():
            if block is not None and block.number != n:
                raise ChainError(f"asked for block {n}, got {block.number}")
        return known

    def finalized(self) -> BlockRef | None:
        return decode_block(self.call("eth_getBlockByNumber", ["finalized", False]))

    @staticmethod
    def _logs_params(tokens: Sequence[str], from_block: int, to_block: int) -> list[Any]:
        return [
            {
                "address": list(tokens),
                "topics": [TRANSFER_TOPIC],
                "fromBlock": hex(from_block),
                "toBlock": hex(to_block),
            }
        ]

    def transfer_logs(
        self, tokens: Sequence[str], from_block: int, to_block: int, keep: Keep | None = None
    ) -> tuple[list[TransferLog], BlockRef]:
        """The range's Transfer logs, from a node that has the range's last block: the same batch asks
        for that block, and a node without it (behind the others) is passed over, since its answer
        would silently lack the blocks it has not seen (found by the fault suite, tests/chaos)."""
        calls = [("eth_getLogs", self._logs_params(tokens, from_block, to_block))]
        calls.append(("eth_getBlockByNumber", [hex(to_block), False]))

        def handle(answer: Any) -> tuple[Any, BlockRef]:
            logs, last = self._batch_results(answer, len(calls))
            tip = decode_block(last)
            if tip is None:
                raise ChainError(f"the node has no block {to_block} yet")
            if tip.number != to_block:
                raise ChainError(f"asked for block {to_block}, got {tip.number}")
            return logs, tip

        try:
            logs, tip = self._each_url(self._payload(calls), handle)
        except ChainError as exc:
            if str(exc).count("ReadTimeout") == len(self.urls):  # every node timed out: ask for less
                raise RangeTooLarge(f"getLogs timed out on every node: {exc}") from exc
            raise
        return self._in_range(decode_transfer_logs(logs, keep), from_block, to_block), tip

    def block_transfer_logs(
        self, tokens: Sequence[str], block: BlockRef, keep: Keep | None = None
    ) -> list[TransferLog]:
        logs = self._each_url(
            {"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": self._block_logs_params(tokens, block)},
            self._result,
        )
        return self._in_block(decode_transfer_logs(logs, keep), block)

    @staticmethod
    def _block_logs_params(tokens: Sequence[str], block: BlockRef) -> list[Any]:
        return [{"address": list(tokens), "topics": [TRANSFER_TOPIC], "blockHash": block.hash}]

    @staticmethod
    def _in_block(decoded: list[TransferLog], block: BlockRef) -> list[TransferLog]:
        for log in decoded:
            if (log.block_number, log.block_hash) != (block.number, block.hash):
                raise ChainError(f"log of block {log.block_number} in the answer for block {block.number}")
        return decoded

    def second_source(self) -> RpcChainReader | None:
        """Itself when it has several URLs: a log one node reported is then asked of another."""
        return self if len(self.urls) > 1 else None

    def _others(self) -> list[str]:
        others = [url for url in self.urls if url != self.last_url]
        if not others:
            raise ChainError("no second RPC source is configured")
        return others

    def second_opinion(
        self, tokens: Sequence[str], from_block: int, to_block: int, heights: Sequence[int]
    ) -> tuple[int, list[TransferLog], dict[int, BlockRef | None]]:
        """Another URL's head, logs for the range and blocks at `heights`, in one batch (ChainError if none)."""
        calls = [("eth_blockNumber", []), ("eth_getLogs", self._logs_params(tokens, from_block, to_block))]
        calls += [("eth_getBlockByNumber", [hex(n), False]) for n in heights]
        primary = self.last_url
        try:
            results = self.batch(calls, urls=self._others())
        finally:
            self.last_url = primary
        logs = self._in_range(decode_transfer_logs(results[1]), from_block, to_block)
        return _hex_int(results[0]), logs, {n: decode_block(r) for n, r in zip(heights, results[2:], strict=True)}

    def second_opinion_at(
        self, tokens: Sequence[str], block: BlockRef, expected: Collection[tuple[str, int]]
    ) -> tuple[list[TransferLog], bool]:
        """Another URL's logs of exactly `block` (by its hash: one call), and whether that node has the
        block. Only when a log in `expected` (tx hash, log index) is missing from its answer is the
        block itself asked for, since some nodes answer an unknown block hash with no logs."""
        primary = self.last_url
        try:
            others = self._others()
            payload = {"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs"}
            logs = self._in_block(
                decode_transfer_logs(
                    self._each_url({**payload, "params": self._block_logs_params(tokens, block)}, self._result, others)
                ),
                block,
            )
            if set(expected) <= {(log.tx_hash, log.log_index) for log in logs}:
                return logs, True
            header = self._each_url(
                {**payload, "method": "eth_getBlockByHash", "params": [block.hash, False]}, self._result, others
            )
            return logs, decode_block(header) is not None
        finally:
            self.last_url = primary

    @staticmethod
    def _in_range(decoded: list[TransferLog], from_block: int, to_block: int) -> list[TransferLog]:
        for log in decoded:
            if not from_block <= log.block_number <= to_block:
                raise ChainError(f"log at block {log.block_number} outside the asked range")
        return decoded

    def head_number(self) -> int:
        return _hex_int(self.call("eth_blockNumber", []))
