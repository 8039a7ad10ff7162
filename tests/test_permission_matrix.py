"""Who may open what: every dashboard page for anonymous users, members of merchant A and B, ops and
ops approvers; and the API, which only a merchant key opens (a signed-in session never does)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from stablepay.models import Merchant
from tests.support.auth import login_as
from tests.support.local_chain import LocalChain, create_request

MERCHANT_PAGES = ["/merchant/", "/merchant/payments/", "/merchant/settlements/", "/merchant/settings/"]
OPS_PAGES = ["/ops/", "/ops/actions/", "/ops/health/", "/ops/screening/"]
ROLES = ["anonymous", "member_a", "member_b", "ops", "approver"]

# role -> (status for merchant pages, status for ops pages, status for the admin index)
EXPECTED = {
    "anonymous": (302, 302, 302),
    "member_a": (200, 403, 302),
    "member_b": (200, 403, 302),
    "ops": (404, 200, 200),  # ops staff belong to no merchant: the merchant pages are not theirs
    "approver": (404, 200, 200),
}


@pytest.fixture
def clients(local_chain: LocalChain) -> dict[str, Client]:
    acme, other = Merchant.objects.get(slug="acme"), Merchant.objects.get(slug="other")
    users = {name: User.objects.create_user(name, password="pw-123456789") for name in ROLES[1:]}
    acme.members.add(users["member_a"])
    other.members.add(users["member_b"])
    console = Permission.objects.get(codename="ops_console")
    approve = Permission.objects.get(codename="ops_approve")
    for name in ("ops", "approver"):
        users[name].is_staff = True
        users[name].save()
        users[name].user_permissions.add(console)
    users["approver"].user_permissions.add(approve)
    result = {"anonymous": Client()}
    for name, user in users.items():
        client = Client()
        login_as(client, user)
        result[name] = client
    return result


@pytest.mark.parametrize("role", ROLES)
def test_pages_per_role(clients: dict[str, Client], role: str) -> None:
    merchant_status, ops_status, admin_status = EXPECTED[role]
    client = clients[role]
    for path in MERCHANT_PAGES:
        response = client.get(path)
        assert response.status_code == merchant_status, (role, path)
        if merchant_status == 302:
            assert response["Location"].startswith("/accounts/login/")
    for path in OPS_PAGES:
        response = client.get(path)
        assert response.status_code == ops_status, (role, path)
        if ops_status == 302:
            assert response["Location"].startswith("/accounts/login/")
    assert client.get("/admin/").status_code == admin_status


def test_a_member_of_b_gets_404_for_a_payment_of_a(clients: dict[str, Client], merchant: Merchant) -> None:
    request = create_request(merchant)
    assert clients["member_a"].get(f"/merchant/payments/{request.pk}/").status_code == 200
    assert clients["member_b"].get(f"/merchant/payments/{request.pk}/").status_code == 404
    assert clients["member_b"].get("/merchant/?m=acme").status_code == 404
    assert clients["ops"].get(f"/ops/requests/{request.pk}/").status_code == 200
    assert clients["member_a"].get(f"/ops/requests/{request.pk}/").status_code == 403


@pytest.mark.parametrize("role", ROLES)
def test_the_api_needs_a_merchant_key_not_a_session(clients: dict[str, Client], role: str) -> None:
    for path in ("/api/v1/tokens/", "/api/v1/payment-requests/", "/api/v1/settlements/"):
        assert clients[role].get(path).status_code == 401, (role, path)
