"""Rules for free text that merchants send us and that we hand to people (issue 16, part 6).

`order_reference` is shown on the payment page, the merchant dashboard, the ops console and in the CSV
export. A bidi override (U+202E) makes "ORDER-1‮gpj.exe" read differently from what it stores, a zero-width
character makes two references that look alike differ, and a control character (tab, CR, ESC) breaks lines,
terminals and spreadsheet cells. So such characters are refused where a reference comes in:
`reference_problem` names the first one, and the API (both of its parsers) and the service answer 400 on
`order_reference`.

`spreadsheet_cell` disarms text a spreadsheet would run as a formula (CSV injection, OWASP): a cell whose
first character that shows (past spaces and zero-width or bidi marks, which spreadsheets skip) is = + - @,
or which starts with a tab or CR, gets a leading single quote.

`clean_note` is the rule for the "why" every person's decision carries (ops decisions, changes to where
money goes): required, at most MAX_NOTE characters.

`parse_iso_date` is the one date format the API and the dashboard's report filters accept: YYYY-MM-DD.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from stablepay.errors import InvalidInput

MAX_NOTE = 2000

# Unicode categories refused in a reference: Cc control (C0, DEL, C1: tab, CR, LF, ESC...), Cf format
# (bidi embeddings, overrides and isolates U+202A-U+202E and U+2066-U+2069, the marks U+200E/U+200F/U+061C,
# zero-width U+200B-U+200D, U+2060, U+FEFF, soft hyphen, tag characters), Cs surrogates, Zl and Zp (the
# line and paragraph separators U+2028/U+2029, which break a line like LF).
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")

# What a spreadsheet reads as the start of a formula, in ASCII and as full-width forms (some spreadsheets
# normalise those), and the two characters OWASP lists because a cell may start with them.
FORMULA_STARTS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
CELL_BREAKS = frozenset("\t\r")


def unsafe_character(text: str) -> str | None:
    """The first character of `text` a reference must not hold, or None."""
    for char in text:
        if char in BIDI_CONTROLS or unicodedata.category(char) in REFUSED_CATEGORIES:
            return char
    return None


def describe(char: str) -> str:
    """U+202E (RIGHT-TO-LEFT OVERRIDE)."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")


def reference_problem(text: str) -> str | None:
    """Why `text` cannot be an order reference as given, or None."""
    char = unsafe_character(text)
    if char is None:
        return None
    kind = "a bidi control" if char in BIDI_CONTROLS else "an invisible or control character"
    return (
        f"must not hold control, bidi or zero-width characters: {describe(char)} at position"
        f" {text.index(char) + 1} is {kind}"
    )


def _skipped_before_formula(char: str) -> bool:
    """What a spreadsheet passes over before deciding a cell is a formula: spaces and invisible marks."""
    return char.isspace() or unicodedata.category(char) in ("Cf", "Cc", "Zl", "Zp")


def formula_like(value: str) -> bool:
    """Whether a spreadsheet could read `value` as a formula (or a cell break) when it opens the CSV."""
    if value[:1] in CELL_BREAKS:
        return True
    for char in value:
        if not _skipped_before_formula(char):
            return char in FORMULA_STARTS
    return False


def spreadsheet_cell(value: str) -> str:
    """`value` as a CSV cell: a leading ' disarms one a spreadsheet could run as a formula."""
    return "'" + value if formula_like(value) else value


def clean_note(note: str | None, *, field: str = "note") -> str:
    """A decision's note, stripped: required (say why), at most MAX_NOTE characters."""
    text = (note or "").strip()
    if not text:
        raise InvalidInput(field, "a note is required: say why")
    if len(text) > MAX_NOTE:
        raise InvalidInput(field, f"at most {MAX_NOTE} characters")
    return text


ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z", re.ASCII)


def parse_iso_date(text: str) -> date:
    """A YYYY-MM-DD date (ASCII digits, zero-padded); ValueError otherwise."""
    if not ISO_DATE.match(text):
        raise ValueError("must be a date as YYYY-MM-DD")
    return date.fromisoformat(text)
