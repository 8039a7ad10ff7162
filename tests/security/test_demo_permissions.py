"""The demo's users (shop/management/commands/demo.py `_seed_users`) hold what their job needs (issue 16 part 3):
ops work the console and approve refunds but cannot change where money goes; "admin" proposes such changes
and cannot approve them; "treasurer" approves them and can change nothing itself."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from shop.management.commands.demo import Command
from stablepay.governance import change_control
from tests.factories import MerchantFactory

MONEY = {"stablepay.change_merchant", "stablepay.change_fxrate", "stablepay.approve_change"}


@pytest.fixture
def demo_users(db: None) -> dict[str, User]:
    MerchantFactory(slug="demo", name="Demo")
    Command()._seed_users()
    return {u.username: User.objects.get(pk=u.pk) for u in User.objects.all()}


def test_ops_users_get_only_what_ops_needs(demo_users: dict[str, User]) -> None:
    for name in ("ops", "ops2"):
        ops = demo_users[name]
        assert ops.has_perm("stablepay.ops_console") and ops.has_perm("stablepay.ops_approve")
        assert ops.has_perm("stablepay.view_paymentrequest") and ops.has_perm("stablepay.add_screeninglistentry")
        assert not any(ops.has_perm(p) for p in MONEY), name
        assert not ops.has_perm("stablepay.delete_merchant") and not ops.has_perm("stablepay.change_token")
        with pytest.raises(change_control.ChangeNotAllowed):
            change_control.propose_fx_change(base="USD", quote="HKD", rate="0.000001", note="x", user=ops)


def test_changing_where_money_goes_takes_the_admin_and_the_treasurer(demo_users: dict[str, User]) -> None:
    admin, treasurer = demo_users["admin"], demo_users["treasurer"]
    assert admin.has_perm("stablepay.change_merchant") and admin.has_perm("stablepay.change_fxrate")
    assert not admin.has_perm("stablepay.approve_change")
    assert treasurer.has_perm("stablepay.approve_change")
    assert not treasurer.has_perm("stablepay.change_merchant") and not treasurer.has_perm("stablepay.change_fxrate")
    proposal = change_control.propose_fx_change(base="HKD", quote="MOP", rate="1.04", note="peg review", user=admin)
    with pytest.raises(change_control.ChangeNotAllowed):
        change_control.change_approve(proposal_id=proposal.pk, user=admin, note="self")
    change_control.change_approve(proposal_id=proposal.pk, user=treasurer, note="checked with the desk")
    proposal.refresh_from_db()
    assert proposal.state == "applied" and proposal.decided_by == treasurer
