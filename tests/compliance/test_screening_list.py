"""Loading a file onto the screening list: all or nothing, lower-case, counted; the admin normalises too."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from stablepay.models import ScreeningListEntry

pytestmark = pytest.mark.django_db

A = "0x" + "Ab" * 20
B = "0x" + "cd" * 20
C = "0x" + "EF" * 20


def _load(tmp_path: Path, text: str, *args: str) -> dict[str, int]:
    path = tmp_path / "list.txt"
    path.write_text(text, encoding="utf-8")
    out = StringIO()
    call_command("stablepay_screening_list", *args, str(path), stdout=out)
    return dict(json.loads(out.getvalue()))


def test_a_file_is_loaded_with_comments_csv_and_repeats(tmp_path: Path) -> None:
    text = f'# OFAC SDN digital currency addresses\n\n{A}\n{B},ETH,Lazarus\n"{C}"  # quoted\n{A.lower()}\n'
    result = _load(tmp_path, text, "--reason", "OFAC SDN 2026-11-20", "--deny")
    assert result == {"kind": "deny", "addresses": 3, "added": 3, "updated": 0, "unchanged": 0}
    rows = dict(ScreeningListEntry.objects.values_list("address", "kind"))
    assert rows == {A.lower(): "deny", B: "deny", C.lower(): "deny"}


def test_loading_again_updates_kind_and_reason_and_counts_the_rest(tmp_path: Path) -> None:
    _load(tmp_path, f"{A}\n{B}\n", "--reason", "list v1", "--deny")
    result = _load(tmp_path, f"{A}\n", "--reason", "exchange hot wallet", "--allow")
    assert (result["added"], result["updated"], result["unchanged"]) == (0, 1, 0)
    assert ScreeningListEntry.objects.get(address=A.lower()).kind == "allow"
    assert _load(tmp_path, f"{B}\n", "--reason", "list v1", "--deny")["unchanged"] == 1


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (f"{A}\n0x1234\n", "line 2"),
        (f"{A}\n{B}x\n", "line 2"),
        ("not an address\n", "line 1"),
        (f"{A}\n\n# c\n0X{'a' * 40}\n", "line 4"),
    ],
)
def test_one_bad_line_refuses_the_whole_file(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(CommandError, match=named) as info:
        _load(tmp_path, text, "--reason", "r", "--deny")
    assert "nothing was changed" in str(info.value)
    assert not ScreeningListEntry.objects.exists()


def test_a_reason_is_required_and_bounded(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="reason"):
        _load(tmp_path, f"{A}\n", "--reason", "  ", "--deny")
    with pytest.raises(CommandError, match="reason"):
        _load(tmp_path, f"{A}\n", "--reason", "x" * 256, "--deny")
    assert not ScreeningListEntry.objects.exists()


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="nothing was changed"):
        call_command("stablepay_screening_list", "--deny", str(tmp_path / "absent.txt"), "--reason", "r")


def test_an_entry_saved_by_hand_is_stored_lower_case_and_checked() -> None:
    entry = ScreeningListEntry.objects.create(address=f"  {A} ", kind="deny", reason="manual")
    assert entry.address == A.lower()
    with pytest.raises(ValidationError):
        ScreeningListEntry.objects.create(address="0x12", kind="deny", reason="bad")
