"""Bulk upkeep of the screening list (the allow/deny table ops also edit in the admin): load a file of
addresses, e.g. a sanctions list's crypto addresses, all or nothing.

A file is one address per line; blank lines and `#` comments are skipped, and a CSV row counts by its
first column. Every line is checked before anything is written: one malformed address refuses the whole
file, naming its line, and the list stays as it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction

from stablepay.models import ScreeningListEntry, ScreeningListKind

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}\Z")
MAX_REASON = 255


class ListFileError(ValueError):
    """The file cannot be loaded; nothing was written."""


@dataclass(frozen=True)
class ListImport:
    added: int
    updated: int
    unchanged: int


def parse_addresses(lines: Iterable[str]) -> list[str]:
    """The lower-case addresses of a list file, in order and without repeats."""
    found: dict[str, None] = {}
    for number, raw in enumerate(lines, start=1):
        text = raw.split("#", 1)[0].split(",", 1)[0].strip().strip('"')
        if not text:
            continue
        if not _ADDRESS.match(text):
            raise ListFileError(f"line {number}: {text[:60]!r} is not an address (0x followed by 40 hex digits)")
        found[text.lower()] = None
    return list(found)


def import_addresses(addresses: Iterable[str], *, kind: str, reason: str) -> ListImport:
    """Put each address on the list as `kind` with `reason`, in one transaction: new ones are added, listed
    ones of another kind or reason are updated (an allow entry becomes deny, and back)."""
    if kind not in ScreeningListKind.values:
        raise ListFileError(f"kind must be one of {', '.join(ScreeningListKind.values)}")
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise ListFileError(f"a reason of 1 to {MAX_REASON} characters is required (say which list and its date)")
    wanted = [address.lower() for address in addresses]
    added = updated = 0
    with transaction.atomic():
        existing = {e.address: e for e in ScreeningListEntry.objects.select_for_update().filter(address__in=wanted)}
        new = [ScreeningListEntry(address=a, kind=kind, reason=reason) for a in wanted if a not in existing]
        for entry in new:
            entry.clean()
        ScreeningListEntry.objects.bulk_create(new)
        added = len(new)
        stale = [e.pk for e in existing.values() if (e.kind, e.reason) != (kind, reason)]
        updated = ScreeningListEntry.objects.filter(pk__in=stale).update(kind=kind, reason=reason)
    return ListImport(added=added, updated=updated, unchanged=len(existing) - updated)
