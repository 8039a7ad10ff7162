"""A JSON parser that refuses what json.loads would quietly accept: NaN, duplicate keys (documented: a
repeated key at any depth is a 400, never last-one-wins), numbers of more than 100 digits, huge bodies."""

from __future__ import annotations

import json
import math
from typing import Any

from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

MAX_BODY_BYTES = 64 * 1024
MAX_NUMBER_DIGITS = 100


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = f"request body too large (at most {MAX_BODY_BYTES} bytes)"
    default_code = "body_too_large"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ParseError(f"JSON parse error: duplicate key {key!r}")
        result[key] = value
    return result


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise ParseError(f"JSON parse error: a number with more than {MAX_NUMBER_DIGITS} digits")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ParseError(f"JSON parse error: number {text[:20]} is out of range")
    return value


def _reject_constant(name: str) -> None:
    raise ParseError(f"JSON parse error: {name} is not valid JSON")


class StrictJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read(MAX_BODY_BYTES + 1) if stream is not None else b""
        if len(raw) > MAX_BODY_BYTES:
            raise BodyTooLarge()
        try:
            text = raw.decode("utf-8")
            return json.loads(
                text,
                object_pairs_hook=_no_duplicates,
                parse_float=_finite_float,
                parse_int=_bounded_int,
                parse_constant=_reject_constant,
            )
        except UnicodeDecodeError as exc:
            raise ParseError("JSON parse error: the body is not UTF-8") from exc
        except RecursionError as exc:
            raise ParseError("JSON parse error: nested too deeply") from exc
        except ValueError as exc:
            raise ParseError(f"JSON parse error: {exc}") from exc
