"""The settlement report (CONTRACT §4) and its CSV against a ledger paid on a real anvil chain.

The expected figures are rebuilt here from the payment requests themselves (what the watcher recorded),
to the base unit, and the fiat rule is re-implemented independently (tests/support/merchant.py).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from stablepay.merchant import selectors
from stablepay.models import Merchant, PaymentRequest, Transfer
from tests.support.local_chain import LocalChain
from tests.support.merchant import Ledger, expected_fiat

HKT = ZoneInfo("Asia/Hong_Kong")
URL = "/api/v1/settlements/"

pytestmark = pytest.mark.django_db


def hk_date(moment: datetime) -> date:
    return timezone.localtime(moment, HKT).date()


def expected_rows(requests: list[PaymentRequest]) -> dict[tuple[str, int, str, str], dict[str, object]]:
    """The report as the ledger says it should be, keyed by (date, chain_id, token, fiat_currency)."""
    rows: dict[tuple[str, int, str, str], dict[str, object]] = defaultdict(
        lambda: {"count": 0, "amount_base_units": 0, "fiat_amount": Decimal(0)}
    )
    for request in requests:
        assert request.paid_at is not None
        key = (hk_date(request.paid_at).isoformat(), 31337, request.token.symbol, request.currency)
        row = rows[key]
        row["count"] = int(row["count"]) + 1  # type: ignore[call-overload]
        row["amount_base_units"] = int(row["amount_base_units"]) + int(request.amount_paid_base_units)  # type: ignore[call-overload]
        row["fiat_amount"] = Decimal(row["fiat_amount"]) + expected_fiat(request)  # type: ignore[arg-type]
    return rows


def as_key(row: dict[str, object]) -> tuple[str, int, str, str]:
    return (str(row["date"]), int(row["chain_id"]), str(row["token"]), str(row["fiat_currency"]))  # type: ignore[call-overload]


def test_report_matches_the_ledger_to_the_base_unit(api: APIClient, ledger: Ledger) -> None:
    paid = ledger.paid()
    today = selectors.hk_today()
    response = api.get(URL, {"date_from": (today - timedelta(days=1)).isoformat(), "date_to": today.isoformat()})
    assert response.status_code == 200, response.content
    body = response.json()
    assert isinstance(body, list)
    assert all(
        set(row)
        == {"date", "chain_id", "token", "count", "amount", "amount_base_units", "fiat_currency", "fiat_amount"}
        for row in body
    )
    expected = expected_rows(paid)
    assert {as_key(row) for row in body} == set(expected)
    for row in body:
        want = expected[as_key(row)]
        assert row["count"] == want["count"]
        assert row["amount_base_units"] == str(want["amount_base_units"])
        assert Decimal(row["amount"]) == Decimal(int(want["amount_base_units"])).scaleb(-6)  # type: ignore[call-overload]
        assert len(row["amount"].split(".")[1]) == 6  # the token's own places
        assert row["fiat_amount"] == f"{want['fiat_amount']:.2f}"
    # The whole report adds up to the ledger: the paid requests' amount_paid_base_units.
    assert sum(int(r["amount_base_units"]) for r in body) == sum(int(r.amount_paid_base_units) for r in paid)
    assert sum(r["count"] for r in body) == len(paid) == 7


def test_known_figures(api: APIClient, ledger: Ledger) -> None:
    """Spot checks with the numbers worked out by hand (HKD/MOP 1.03, USD/HKD 7.80, 6 decimals)."""
    assert int(ledger["mop_hkdx"].amount_paid_base_units) == 100_000_000  # 103.00 MOP = 100 HKDX
    assert int(ledger["mop_hkdx_odd"].amount_paid_base_units) == 9_708_738  # ceil(10 / 1.03, 6 places)
    assert int(ledger["hkd_usdc"].amount_paid_base_units) == 10_000_000  # 78.00 HKD = 10 USDC
    assert int(ledger["mop_usdc"].amount_paid_base_units) == 3_174_011  # ceil(25.50 / 8.034, 6 places)
    assert expected_fiat(ledger["mop_hkdx_odd"]) == Decimal("10.00")  # paid exactly: the full price
    assert expected_fiat(ledger["hkd_hkdx_short"]) == Decimal("19.95")  # 0.25 % short
    assert expected_fiat(ledger["accepted"]) == Decimal("12.35")  # 30.00 x 12.345678 / 30 -> 12.345678

    today = selectors.hk_today().isoformat()
    body = api.get(URL, {"date_from": "2000-01-01", "date_to": "2999-12-31"}).json()
    by_key = {as_key(row): row for row in body}
    hkdx_hkd = by_key[(today, 31337, "HKDX", "HKD")]
    # 10.00 + 19.95 (short) + 12.345678 (accepted) HKDX; fiat 10.00 + 19.95 + 12.35
    assert hkdx_hkd["count"] == 3
    assert hkdx_hkd["amount_base_units"] == str(10_000_000 + 19_950_000 + 12_345_678)
    assert hkdx_hkd["amount"] == "42.295678"
    assert hkdx_hkd["fiat_amount"] == "42.30"
    hkdx_mop = by_key[(today, 31337, "HKDX", "MOP")]
    assert (hkdx_mop["count"], hkdx_mop["amount_base_units"], hkdx_mop["fiat_amount"]) == (2, "109708738", "113.00")
    assert by_key[(today, 31337, "USDC", "HKD")]["fiat_amount"] == "78.00"
    assert by_key[(today, 31337, "USDC", "MOP")]["amount"] == "3.174011"
    assert by_key[(today, 31337, "USDC", "MOP")]["fiat_amount"] == "25.50"


def test_days_are_hong_kong_days(api: APIClient, ledger: Ledger) -> None:
    """paid_at is dated in Asia/Hong_Kong: 00:00 HKT starts a day, 23:59:59.999999 HKT ends it, and
    07:30 HKT (23:30 UTC the day before) belongs to the Hong Kong day."""
    day = date(2026, 3, 10)
    moves = {
        "hkd_hkdx": datetime(2026, 3, 9, 23, 30, tzinfo=HKT),  # the day before, 23:30
        "mop_hkdx": datetime(2026, 3, 10, 0, 0, tzinfo=HKT),  # the first instant of the day
        "hkd_usdc": datetime(2026, 3, 10, 7, 30, tzinfo=HKT),  # 2026-03-09 23:30 UTC
        "mop_usdc": datetime(2026, 3, 10, 23, 59, 59, 999999, tzinfo=HKT),  # the last instant
        "mop_hkdx_odd": datetime(2026, 3, 11, 0, 0, tzinfo=HKT),  # the next day
    }
    for name, paid_at in moves.items():
        PaymentRequest.objects.filter(pk=ledger[name].pk).update(paid_at=paid_at)

    def keys(date_from: date, date_to: date) -> set[tuple[str, str, str]]:
        response = api.get(URL, {"date_from": date_from.isoformat(), "date_to": date_to.isoformat()})
        assert response.status_code == 200
        return {(r["date"], r["token"], r["fiat_currency"]) for r in response.json()}

    assert keys(day, day) == {
        ("2026-03-10", "HKDX", "MOP"),
        ("2026-03-10", "USDC", "HKD"),
        ("2026-03-10", "USDC", "MOP"),
    }
    assert keys(day - timedelta(days=1), day - timedelta(days=1)) == {("2026-03-09", "HKDX", "HKD")}
    assert keys(day + timedelta(days=1), day + timedelta(days=1)) == {("2026-03-11", "HKDX", "MOP")}
    assert len(keys(day - timedelta(days=1), day + timedelta(days=1))) == 5


def test_yesterday_2330_hkt_is_yesterday(api: APIClient, ledger: Ledger) -> None:
    today = selectors.hk_today()
    yesterday = today - timedelta(days=1)
    late = datetime.combine(yesterday, datetime.min.time(), tzinfo=HKT) + timedelta(hours=23, minutes=30)
    PaymentRequest.objects.filter(pk=ledger["hkd_usdc"].pk).update(paid_at=late)
    only_yesterday = api.get(URL, {"date_from": yesterday.isoformat(), "date_to": yesterday.isoformat()}).json()
    assert only_yesterday == [
        {
            "date": yesterday.isoformat(),
            "chain_id": 31337,
            "token": "USDC",
            "count": 1,
            "amount": "10.000000",
            "amount_base_units": "10000000",
            "fiat_currency": "HKD",
            "fiat_amount": "78.00",
        }
    ]
    only_today = api.get(URL, {"date_from": today.isoformat(), "date_to": today.isoformat()}).json()
    assert ("USDC", "HKD") not in {(r["token"], r["fiat_currency"]) for r in only_today}


def test_only_paid_requests_count(api: APIClient, ledger: Ledger, merchant: Merchant) -> None:
    today = selectors.hk_today().isoformat()
    before = api.get(URL, {"date_from": today, "date_to": today}).json()
    # A refunded or still-open request is not settled money.
    PaymentRequest.objects.filter(pk=ledger["hkd_usdc"].pk).update(status="refunded")
    after = api.get(URL, {"date_from": today, "date_to": today}).json()
    assert sum(r["count"] for r in after) == sum(r["count"] for r in before) - 1
    assert ("USDC", "HKD") not in {(r["token"], r["fiat_currency"]) for r in after}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "date_from"),
        ({"date_to": "2026-03-10"}, "date_from"),
        ({"date_from": "2026-03-10"}, "date_to"),
        ({"date_from": "2026-3-10", "date_to": "2026-03-10"}, "date_from"),
        ({"date_from": "2026-03-10", "date_to": "2026-02-30"}, "date_to"),
        ({"date_from": "10/03/2026", "date_to": "2026-03-10"}, "date_from"),
        ({"date_from": "\uff12\uff10\uff12\uff16-03-10", "date_to": "2026-03-10"}, "date_from"),  # fullwidth digits
        ({"date_from": "2026-03-10T00:00", "date_to": "2026-03-10"}, "date_from"),
        ({"date_from": "2026-03-11", "date_to": "2026-03-10"}, "date_to"),
        ({"date_from": "", "date_to": "2026-03-10"}, "date_from"),
    ],
)
def test_bad_dates_answer_400_naming_the_field(api: APIClient, params: dict[str, str], field: str) -> None:
    response = api.get(URL, params)
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_extreme_dates_are_not_a_server_error(api: APIClient, ledger: Ledger) -> None:
    response = api.get(URL, {"date_from": "0001-01-01", "date_to": "9999-12-31"})
    assert response.status_code == 200
    assert sum(r["count"] for r in response.json()) == 7


def test_needs_a_merchant_key(local_chain: LocalChain) -> None:
    response = APIClient().get(URL, {"date_from": "2026-03-10", "date_to": "2026-03-10"})
    assert response.status_code == 401


def test_another_merchant_sees_none_of_it(other_api: APIClient, ledger: Ledger, outsider_client: Client) -> None:
    response = other_api.get(URL, {"date_from": "2000-01-01", "date_to": "2999-12-31"})
    assert response.status_code == 200
    assert response.json() == []
    response = outsider_client.get("/merchant/settlements.csv", {"date_from": "2000-01-01", "date_to": "2999-12-31"})
    text = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    assert list(csv.reader(io.StringIO(text))) == [list(selectors.CSV_HEADER)]


def read_csv(client: Client, date_from: str, date_to: str) -> list[dict[str, str]]:
    response = client.get("/merchant/settlements.csv", {"date_from": date_from, "date_to": date_to})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode("utf-8")  # type: ignore[attr-defined]
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == selectors.CSV_HEADER
    return list(reader)


def test_csv_has_one_row_per_payment_and_adds_up_to_the_ledger(
    api: APIClient, member_client: Client, ledger: Ledger
) -> None:
    today = selectors.hk_today().isoformat()
    rows = read_csv(member_client, today, today)
    paid = {str(r.pk): r for r in ledger.paid()}
    assert sorted(row["request_id"] for row in rows) == sorted(paid)
    assert sum(int(row["amount_base_units"]) for row in rows) == sum(
        int(r.amount_paid_base_units) for r in paid.values()
    )

    for row in rows:
        request = paid[row["request_id"]]
        transfers = Transfer.objects.filter(payment_request=request, token=request.token).exclude(state="orphaned")
        assert row["order_reference"] == request.order_reference
        assert row["date"] == today
        assert row["tx_hash"].split() == [t.tx_hash for t in transfers.order_by("block_number", "log_index")]
        assert row["from"].split() == [t.from_address for t in transfers.order_by("block_number", "log_index")]
        assert sum(int(t.amount_base_units) for t in transfers) == int(row["amount_base_units"])
        assert Decimal(row["amount"]) == Decimal(int(request.amount_paid_base_units)).scaleb(-6)
        assert Decimal(row["fiat_amount"]) == expected_fiat(request)
        assert row["fiat_currency"] == request.currency
        assert row["price"] == f"{request.amount:.2f}"
        assert Decimal(row["rate"]) == request.rate
        assert int(row["confirmations"]) >= 3
        assert row["status"] == "paid"
        assert row["chain_id"] == "31337"

    # Per day, chain, token and fiat currency, the CSV adds up to the API's report, to the cent.
    report = api.get(URL, {"date_from": today, "date_to": today}).json()
    sums: dict[tuple[str, str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0), Decimal(0)])
    for row in rows:
        entry = sums[(row["token"], row["fiat_currency"], row["date"])]
        entry[0] += 1
        entry[1] += int(row["amount_base_units"])
        entry[2] += Decimal(row["fiat_amount"])
    assert {
        (r["token"], r["fiat_currency"], r["date"]): [
            Decimal(r["count"]),
            Decimal(r["amount_base_units"]),
            Decimal(r["fiat_amount"]),
        ]
        for r in report
    } == dict(sums)


def test_csv_disarms_spreadsheet_formulas(member_client: Client, ledger: Ledger) -> None:
    PaymentRequest.objects.filter(pk=ledger["hkd_hkdx"].pk).update(order_reference='=HYPERLINK("x")')
    today = selectors.hk_today().isoformat()
    rows = {row["request_id"]: row for row in read_csv(member_client, today, today)}
    assert rows[str(ledger["hkd_hkdx"].pk)]["order_reference"] == '\'=HYPERLINK("x")'


def test_csv_bad_dates_answer_400(member_client: Client, local_chain: LocalChain) -> None:
    response = member_client.get("/merchant/settlements.csv", {"date_from": "2026-03-11", "date_to": "2026-03-10"})
    assert response.status_code == 400
    assert "date_to" in response.json()
    assert member_client.get("/merchant/settlements.csv", {"date_from": "x"}).status_code == 400


def test_settlement_page_shows_the_report(member_client: Client, ledger: Ledger) -> None:
    today = selectors.hk_today().isoformat()
    response = member_client.get("/merchant/settlements/", {"date_from": today, "date_to": today})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="settlement-table"' in html
    assert "42.295678" in html  # HKDX priced in HKD: 10 + 19.95 + 12.345678
    assert "MOP$113.00" in html
    assert f"/merchant/settlements.csv?date_from={today}&amp;date_to={today}" in html
    bad = member_client.get("/merchant/settlements/", {"date_from": "2026-03-11", "date_to": "2026-03-10"})
    assert bad.status_code == 400
    assert "The end date must be on or after the start date." in bad.content.decode()


def test_report_is_aggregated_in_the_database(
    api: APIClient, ledger: Ledger, django_assert_max_num_queries: object
) -> None:
    """A fixed handful of queries, however many payments: the sums are the database's."""
    today = selectors.hk_today().isoformat()
    with django_assert_max_num_queries(3):  # type: ignore[operator]
        response = api.get(URL, {"date_from": today, "date_to": today})
    assert response.status_code == 200
