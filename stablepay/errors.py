"""Domain errors raised by services; the API and the pages turn them into 4xx answers."""

from __future__ import annotations


class StablepayError(Exception):
    """Base class: a request the domain refuses, with the field (or reason) it is about."""

    status_code = 400

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidInput(StablepayError):
    status_code = 400


class Conflict(StablepayError):
    status_code = 409
