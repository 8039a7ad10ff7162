"""How token amounts are stored: `BaseUnitsField`, an integer number of base units from 0 to 10**78 - 1
(every uint256), exact on every backend.

PostgreSQL keeps it in numeric(78, 0), exact as it always was. SQLite has no exact type for it: a decimal
column keeps 15 significant digits (an 18-decimal coin's 97087378640776699030 came back as
97087378640776700000) and an INTEGER 63 bits. There the column is text: every value is written as exactly
78 ASCII digits, zero-padded, and a CHECK constraint refuses anything else. Padded to one width, text
compares and sorts as the numbers do, so `=`, `<`, `>`, ORDER BY, MIN and MAX in SQL stay right; SUM
does not (SQLite would add through floating point): sum these columns in Python on SQLite (see
stablepay.merchant.selectors.settlement_rows). Values come back as `Decimal` integers on both backends.

A value that is not a whole number of base units is refused rather than rounded, on every backend.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models

DIGITS = 78  # 2**256 - 1 has 78 digits
LIMIT = 10**DIGITS


def sqlite_text(value: int) -> str:
    """A base-units value as SQLite stores it: 78 digits, zero-padded."""
    return f"{value:0{DIGITS}d}"


class BaseUnitsField(models.DecimalField):
    """A token amount in integer base units, 0 to 10**78 - 1 (see the module docstring)."""

    description = "Token amount in integer base units (exact, up to 78 digits)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["max_digits"], kwargs["decimal_places"] = DIGITS, 0
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        del kwargs["max_digits"], kwargs["decimal_places"]
        return name, path, args, kwargs

    def get_internal_type(self) -> str:
        # Not "DecimalField": Django's SQLite backend would read every value through a 15-digit float
        # converter and wrap expressions in CAST(... AS NUMERIC).
        return "BaseUnitsField"

    def db_type(self, connection: Any) -> str | None:
        if connection.vendor == "sqlite":
            return f"varchar({DIGITS})"
        return str(connection.data_types["DecimalField"] % self.db_type_parameters(connection))

    def db_check(self, connection: Any) -> str | None:
        if connection.vendor != "sqlite":
            return None
        column = connection.ops.quote_name(self.column)
        return f"length({column}) = {DIGITS} AND {column} NOT GLOB '*[^0-9]*'"

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if not prepared:
            value = self.get_prep_value(value)
        if value is None or hasattr(value, "as_sql"):
            return value
        units = whole_units(self.to_python(value))
        if connection.vendor != "sqlite":
            return Decimal(units)
        # A negative value cannot be padded: written as it is, the CHECK constraint refuses it (as the
        # ledger's own check constraints do on PostgreSQL), and in a lookup it sorts below every amount.
        return sqlite_text(units) if units >= 0 else str(units)

    def get_db_converters(self, connection: Any) -> list[Any]:
        # PostgreSQL's driver already answers Decimal for numeric: no converter, nothing changes there.
        return [self.from_db_value] if connection.vendor == "sqlite" else []

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Decimal | None:
        if value is None or isinstance(value, Decimal):
            return value
        if isinstance(value, str):
            return Decimal(int(value))
        if isinstance(value, int):
            return Decimal(value)
        # A float can only come from SQLite arithmetic over the column (SUM, +): it is not exact.
        raise ValueError(f"base units read as {type(value).__name__} {value!r}: not exact, sum them in Python")


def whole_units(value: Decimal) -> int:
    """The integer a base-units Decimal holds; ValueError for a fraction, infinity or NaN, or 79 digits."""
    if not value.is_finite() or value != value.to_integral_value():
        raise ValueError(f"base units must be a whole number, got {value}")
    units = int(value)
    if abs(units) >= LIMIT:
        raise ValueError(f"base units must have at most {DIGITS} digits, got {units}")
    return units
