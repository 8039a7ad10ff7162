"""CONTRACT §6: the merchant dashboard, the ops console and the sign-in page answer in Traditional
Chinese (Hong Kong usage) when the browser asks for zh-HK, with no English headings left behind."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from stablepay.models import Merchant
from tests.support.auth import login_as
from tests.support.local_chain import LocalChain, create_request

# path -> (Chinese strings that must appear, English strings that must not)
PAGES: dict[str, tuple[list[str], list[str]]] = {
    "/merchant/": (
        ["商戶控制台", "概覽 · ", "後過期", "結算總額", "每日交易額", "待付款要求", "最近付款", "登出"],
        ["Merchant dashboard", "Settled totals", "Daily volume", "Open requests", "Recent payments", "Sign out"],
    ),
    "/merchant/payments/": (
        ["付款 · ", "最新的排在最前", "篩選", "所有狀態"],
        ["Every payment request, newest first.", "Filters", "All statuses"],
    ),
    "/merchant/settlements/": (
        ["結算 · ", "下載 CSV", "快速選擇範圍", "數字如何計算"],
        ["Download CSV", "Quick ranges", "How the figures are made"],
    ),
    "/merchant/settings/": (
        ["設定 · ", "付款規則", "更換 API 密鑰", "Webhook 傳送記錄", "少付容許度", "你的資金去向的最近變更"],
        ["Payment rules", "Rotate API key", "Webhook delivery log", "Underpayment tolerance"],
    ),
    "/ops/": (
        ["營運控制台", "待處理", "監察器狀態", "篩選待處理清單", "所有商戶"],
        ["Ops console", "Watcher health", "Filter the queue", "All merchants", "The queue is empty"],
    ),
    "/ops/actions/": (
        ["營運記錄", "記錄永不修改", "暫時未有營運決定"],
        ["Ops activity", "Every ops decision", "No ops decisions yet"],
    ),
    "/ops/health/": (
        ["監察器狀態", "最新區塊", "已掃描", "仿冒代幣", "轉入我們地址但未入帳的轉帳"],
        ["Watcher health", "Last scan", "Look-alike tokens", "Uncredited transfers"],
    ),
    "/ops/changes/": (
        ["資金去向的變更", "等候批准", "沒有等候批准的變更", "最近的變更", "xpub"],
        ["Changes to where money goes", "No change awaits approval", "Recent changes", "Awaiting approval"],
    ),
    "/ops/screening/": (
        [
            "付款人篩查",
            "設定",
            "無回應時的放行上限",
            "篩查結果",
            "未通過篩查的付款",
            "至今所有經篩查的付款人均已通過。",
        ],
        ["Payer screening", "Fail-open limit", "Payments not cleared by screening", "Every payer screened so far"],
    ),
    "/accounts/login/": (
        ["登入", "供商戶及營運人員使用。", "用戶名稱", "密碼"],
        ["Sign in", "For merchants and operations staff.", "Username", "Password"],
    ),
}


@pytest.fixture
def zh_clients(local_chain: LocalChain) -> dict[str, Client]:
    member = User.objects.create_user("member", password="pw-123456789")
    Merchant.objects.get(slug="acme").members.add(member)
    ops = User.objects.create_user("ops", password="pw-123456789", is_staff=True)
    ops.user_permissions.add(Permission.objects.get(codename="ops_console"))
    clients = {"anonymous": Client(HTTP_ACCEPT_LANGUAGE="zh-HK")}
    for name, user in (("member", member), ("ops", ops)):
        client = Client(HTTP_ACCEPT_LANGUAGE="zh-HK")
        login_as(client, user)
        clients[name] = client
    return clients


def client_for(path: str) -> str:
    if path.startswith("/merchant/"):
        return "member"
    if path.startswith("/ops/"):
        return "ops"
    return "anonymous"


@pytest.mark.parametrize("path", list(PAGES))
def test_page_speaks_traditional_chinese(zh_clients: dict[str, Client], merchant: Merchant, path: str) -> None:
    create_request(merchant)  # an open request, so the dashboard lists something
    response = zh_clients[client_for(path)].get(path)
    assert response.status_code == 200, path
    html = response.content.decode()
    assert 'lang="zh-hant"' in html, path
    chinese, english = PAGES[path]
    for text in chinese:
        assert text in html, (path, text)
    for text in english:
        assert text not in html, (path, text)
