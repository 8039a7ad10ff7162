"""Merchant dashboard pages: parse, make one selector or service call, render.

Every page needs a signed-in member of the merchant (`merchant_page`): anonymous users go to the login
page, a user who is no member of any merchant gets a 404 page that says so, and a merchant (`?m=slug`)
or object of a merchant the user is not a member of answers 404. A user of several merchants picks one
with `?m=<slug>`; the choice is remembered in the session, and every form posts it back (`m`) so a
change always lands on the merchant that was on screen.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import wraps
from typing import Any, Concatenate, ParamSpec
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseBase,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from stablepay import secret_box
from stablepay.compliance import audit_bundle
from stablepay.errors import Conflict, StablepayError
from stablepay.governance import change_control, change_selectors
from stablepay.merchant import selectors, services
from stablepay.merchant.forms import (
    PaymentFilterForm,
    PaymentSettingsForm,
    RotateApiKeyForm,
    SettlementFilterForm,
    TokenPolicyForm,
    WebhookForm,
)
from stablepay.merchant.labels import STATUS_LABELS
from stablepay.models import Merchant
from stablepay.webhooks.signature import standard_secret

SESSION_KEY = "stablepay_merchant"
# A generated webhook secret waits here (encrypted, with its merchant) for the one page that shows it.
NEW_SECRET_SESSION_KEY = "stablepay_new_webhook_secret"
PAGE_SIZE = 25
DELIVERIES_PAGE_SIZE = 15
P = ParamSpec("P")


@dataclass(frozen=True)
class MerchantContext:
    """The merchant on screen and the others the user may switch to."""

    merchant: Merchant
    merchants: list[Merchant]

    @property
    def params(self) -> dict[str, str]:
        """The query parameter that names the merchant, for users of several merchants."""
        return {"m": self.merchant.slug} if len(self.merchants) > 1 else {}

    def url(self, name: str, *args: Any, **query: Any) -> str:
        """A dashboard URL for this merchant, with `query` (empty values left out)."""
        params = {**self.params, **{k: v for k, v in query.items() if v not in (None, "")}}
        path = reverse(f"stablepay:merchant:{name}", args=args)
        return f"{path}?{urlencode(params)}" if params else path

    def template_context(self, active: str) -> dict[str, Any]:
        nav = [
            ("overview", _("Overview")),
            ("payments", _("Payments")),
            ("settlements", _("Settlements")),
            ("settings", _("Settings")),
        ]
        return {
            "merchant": self.merchant,
            "merchants": self.merchants,
            "mctx": self,
            "m_query": f"?{urlencode(self.params)}" if self.params else "",
            "nav_links": [(key, label, self.url(key), key == active) for key, label in nav],
        }


def _actor(request: HttpRequest) -> str:
    return f"user:{request.user.get_username()}"


def merchant_page(
    view: Callable[Concatenate[HttpRequest, MerchantContext, P], HttpResponseBase],
) -> Callable[Concatenate[HttpRequest, P], HttpResponseBase]:
    """Sign-in, membership and the choice of merchant, in front of every dashboard view."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        merchants = selectors.merchants_for_user(request.user)
        if not merchants:
            return render(request, "stablepay/merchant/no_merchant.html", status=404)
        slug = (request.POST.get("m") if request.method == "POST" else None) or request.GET.get("m")
        if slug:
            merchant = next((m for m in merchants if m.slug == slug), None)
            if merchant is None:
                raise Http404("no such merchant")
        elif request.method == "POST" and len(merchants) > 1:
            return HttpResponseBadRequest("m: name the merchant this change is for")
        else:
            saved = request.session.get(SESSION_KEY)
            merchant = next((m for m in merchants if m.slug == saved), merchants[0])
        if request.session.get(SESSION_KEY) != merchant.slug:
            request.session[SESSION_KEY] = merchant.slug
        return view(request, MerchantContext(merchant, merchants), *args, **kwargs)

    return wrapper


# Overview -----------------------------------------------------------------------------------------
@require_GET
@merchant_page
def overview(request: HttpRequest, mctx: MerchantContext) -> HttpResponse:
    data = selectors.merchant_overview(merchant=mctx.merchant)
    chart = {
        "labels": [d.date.isoformat() for d in data.daily],
        "hkd": [format(d.hkd, "f") for d in data.daily],
        "counts": [d.count for d in data.daily],
    }
    context = {
        **mctx.template_context("overview"),
        "overview": data,
        "chart": chart,
        "chart_total": sum((d.hkd for d in data.daily), start=Decimal(0)),
        "review_url": mctx.url("payments", status="needs_review"),
        "open_url": mctx.url("payments", status="open"),
        "paid_url": mctx.url("payments", status="paid"),
        "settlements_30d_url": mctx.url(
            "settlements", date_from=data.periods[-1].date_from.isoformat(), date_to=data.today.isoformat()
        ),
        "chart_i18n": {
            "dataset": _("Settled, HKD-equivalent"),
            "payments": _("payments"),
            "currency": "HKD",
        },
    }
    return render(request, "stablepay/merchant/overview.html", context)


# Payments -----------------------------------------------------------------------------------------
@require_GET
@merchant_page
def payments(request: HttpRequest, mctx: MerchantContext) -> HttpResponse:
    labels = {key: str(label) for key, label in STATUS_LABELS.items()}
    form = PaymentFilterForm(request.GET or None, status_labels=labels)
    status = query = ""
    if form.is_bound and form.is_valid():
        status, query = form.cleaned_data["status"], form.cleaned_data["q"]
    queryset = selectors.payment_list(merchant=mctx.merchant, status=status, query=query)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        **mctx.template_context("payments"),
        "form": form,
        "page": page,
        "filters": {"status": status, "q": query},
        "page_urls": {
            "previous": mctx.url("payments", status=status, q=query, page=page.previous_page_number())
            if page.has_previous()
            else "",
            "next": mctx.url("payments", status=status, q=query, page=page.next_page_number())
            if page.has_next()
            else "",
        },
    }
    return render(request, "stablepay/merchant/payments.html", context)


@require_GET
@merchant_page
def payment_detail(request: HttpRequest, mctx: MerchantContext, request_id: str) -> HttpResponse:
    payment = selectors.payment_for_merchant(merchant=mctx.merchant, request_id=request_id)
    if payment is None:
        raise Http404("no such payment request")
    context = {
        **mctx.template_context("payments"),
        "pr": payment,
        "chain": payment.token.chain,
        "deliveries": list(selectors.webhook_deliveries(merchant=mctx.merchant, payment_request=payment)[:50]),
        "return_to": request.get_full_path(),
    }
    return render(request, "stablepay/merchant/payment_detail.html", context)


@require_GET
@merchant_page
def payment_audit(request: HttpRequest, mctx: MerchantContext, request_id: str) -> HttpResponse:
    """The request's signed audit bundle, as a file (stablepay/compliance/audit_bundle.py)."""
    payment = selectors.payment_for_merchant(merchant=mctx.merchant, request_id=request_id)
    if payment is None:
        raise Http404("no such payment request")
    return audit_bundle.download_response(payment)


# Settlements --------------------------------------------------------------------------------------
def _settlement_range(form: SettlementFilterForm) -> tuple[date, date] | None:
    return form.date_range(selectors.hk_today()) if form.is_valid() else None


@require_GET
@merchant_page
def settlements(request: HttpRequest, mctx: MerchantContext) -> HttpResponse:
    form = SettlementFilterForm(request.GET)
    chosen = _settlement_range(form)
    today = selectors.hk_today()
    rows: list[selectors.SettlementRow] = []
    totals: list[selectors.SettlementTotal] = []
    date_from: date | None = None
    date_to: date | None = None
    if chosen is not None:
        date_from, date_to = chosen
        rows = selectors.settlement_rows(merchant=mctx.merchant, date_from=date_from, date_to=date_to)
        totals = selectors.settlement_totals(rows)
    range_query = {"date_from": date_from.isoformat(), "date_to": date_to.isoformat()} if date_from and date_to else {}
    month_start = today.replace(day=1)
    last_month_end = month_start - timedelta(days=1)
    presets = [
        (pgettext("stablepay", "Today"), today, today),  # context: Django's admin catalogue has "Today" too
        (_("Last 7 days"), today - timedelta(days=6), today),
        (_("Last 30 days"), today - timedelta(days=29), today),
        (_("This month"), month_start, today),
        (_("Last month"), last_month_end.replace(day=1), last_month_end),
    ]
    context = {
        **mctx.template_context("settlements"),
        "form": form,
        "rows": rows,
        "totals": totals,
        "date_from": date_from,
        "date_to": date_to,
        "presets": [
            (
                label,
                mctx.url("settlements", date_from=start.isoformat(), date_to=end.isoformat()),
                (start, end) == (date_from, date_to),
            )
            for label, start, end in presets
        ],
        "csv_url": mctx.url("settlements-csv", **range_query) if range_query else "",
        "api_path": reverse("stablepay:api-settlements") + (f"?{urlencode(range_query)}" if range_query else ""),
    }
    return render(request, "stablepay/merchant/settlements.html", context, status=200 if chosen else 400)


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@merchant_page
def settlements_csv(request: HttpRequest, mctx: MerchantContext) -> HttpResponseBase:
    """One row per payment (selectors.settlement_csv_rows), streamed; 400 naming the bad field."""
    form = SettlementFilterForm(request.GET)
    chosen = _settlement_range(form)
    if chosen is None:
        return HttpResponseBadRequest(
            json.dumps({name: [str(e) for e in errors] for name, errors in form.errors.items()}),
            content_type="application/json",
        )
    date_from, date_to = chosen
    writer = csv.writer(_Echo())
    rows: Iterator[list[str]] = selectors.settlement_csv_rows(
        merchant=mctx.merchant, date_from=date_from, date_to=date_to
    )
    response = StreamingHttpResponse((writer.writerow(row) for row in rows), content_type="text/csv; charset=utf-8")
    filename = f"stablepay-{mctx.merchant.slug}-settlements-{date_from.isoformat()}-to-{date_to.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


# Settings -----------------------------------------------------------------------------------------
def _settings_response(
    request: HttpRequest,
    mctx: MerchantContext,
    *,
    webhook_form: WebhookForm | None = None,
    payment_form: PaymentSettingsForm | None = None,
    rotate_form: RotateApiKeyForm | None = None,
    policy_form: TokenPolicyForm | None = None,
    status: int = 200,
    new_webhook_secret: str = "",
) -> HttpResponse:
    merchant = mctx.merchant
    until = merchant.webhook_secret_previous_until if merchant.webhook_secret_previous else None
    deliveries = Paginator(selectors.webhook_deliveries(merchant=merchant), DELIVERIES_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        **mctx.template_context("settings"),
        "webhook_form": webhook_form or WebhookForm(initial={"webhook_url": merchant.webhook_url}),
        "payment_form": payment_form
        or PaymentSettingsForm(
            initial={
                "payment_tolerance_percent": merchant.payment_tolerance_percent,
                "expiry_minutes": merchant.expiry_minutes,
            }
        ),
        "rotate_form": rotate_form or RotateApiKeyForm(),
        "token_rows": selectors.token_policy_rows(merchant=merchant),
        "policy_form": policy_form
        or TokenPolicyForm(
            initial={
                "accepted_licence_statuses": merchant.accepted_licence_statuses,
                "accepted_token_currencies": merchant.accepted_token_currencies,
            }
        ),
        "deliveries": deliveries,
        "deliveries_urls": {
            "previous": mctx.url("settings", page=deliveries.previous_page_number())
            if deliveries.has_previous()
            else "",
            "next": mctx.url("settings", page=deliveries.next_page_number()) if deliveries.has_next() else "",
        },
        "return_to": request.get_full_path() if request.method == "GET" else mctx.url("settings"),
        "api_key_prefix": merchant.api_key_prefix,
        "webhook_secret_set": bool(merchant.webhook_secret),
        "webhook_secret_previous_until": until if until and until > timezone.now() else None,
        "new_webhook_secret": new_webhook_secret,
        "new_webhook_secret_standard": standard_secret(new_webhook_secret) if new_webhook_secret else "",
        "money_changes": change_selectors.merchant_changes(merchant=merchant),
    }
    response = render(request, "stablepay/merchant/settings.html", context, status=status)
    if new_webhook_secret:
        response["Cache-Control"] = "no-store, no-cache, must-revalidate, private"
        response["Pragma"] = "no-cache"
    return response


def _pop_new_webhook_secret(request: HttpRequest, merchant: Merchant) -> str:
    """The secret generated by the last save, once: it leaves the session as it is shown."""
    pending = request.session.pop(NEW_SECRET_SESSION_KEY, None)
    if not isinstance(pending, dict) or pending.get("merchant") != merchant.pk:
        return ""
    try:
        secret = secret_box.decrypt(str(pending.get("secret", "")))
    except secret_box.SecretDecryptionError:
        return ""
    return secret if secret == merchant.webhook_secret else ""  # rotated again since: not worth showing


@require_GET
@merchant_page
def settings_page(request: HttpRequest, mctx: MerchantContext) -> HttpResponse:
    return _settings_response(request, mctx, new_webhook_secret=_pop_new_webhook_secret(request, mctx.merchant))


@require_POST
@merchant_page
def settings_webhook(request: HttpRequest, mctx: MerchantContext) -> HttpResponse:
    form = WebhookForm(request.POST)
    if not form.is_valid():
        return _settings_response(request, mctx, webhook_form=form, status=400)
    saved, secret_changed = services.merchant_webhook_update(
        merchant=mctx.merchant,
        webhook_url=form.cleaned_data["webhook_url"],
        webhook_secret=form.cleaned_data["webhook_secret"],
        new_secret=form.cleaned_data["new_secret"],
        actor=_actor(request),
    )
    if secret_changed and saved.webhook_secret and not form.cleaned_data["webhook_secret"]:
        # Generated here: show it once, on the page this redirects to (the merchant typed any other).
        request.session[NEW_SECRET_SESSION_KEY] = {
            "merchant": saved.pk,
            "secret": secret_box.encrypt(saved.webhook_secret),
        }
    if not form.cleaned_data["webhook_url"]:
        messages.success(request, _("Webhooks are off."))
    elif secret_changed:
        messages.success(request, _("Webhook endpoint saved with a new signing secret."))
    else:
        messages.success(request, _("Webhook endpoint saved."))
    return redirect(mctx.url("settings") + "#webhooks")


@require_POST
@merchant_page
def settings_payments(request: HttpRequest, mctx: MerchantContext) -> HttpResponse:
    form = PaymentSettingsForm(request.POST)
    if not form.is_valid():
        return _settings_response(request, mctx, payment_form=form, status=400)
    try:
        proposal = services.merchant_payment_settings_update(
            merchant=mctx.merchant,
            payment_tolerance_percent=form.cleaned_data["payment_tolerance_percent"],
            expiry_minutes=form.cleaned_data["expiry_minutes"],
            user=request.user,
        )[1]
    except Conflict:
        messages.error(request, _("A change to these settings already awaits approval: decide on it first."))
        return redirect(mctx.url("settings") + "#money-changes")
    if proposal is None:
        messages.success(request, _("Payment settings saved."))
        return redirect(mctx.url("settings") + "#payment-settings")
    messages.success(
        request,
        _(
            "Expiry saved. The new payment tolerance is proposed: it applies once another member of your team, "
            "or the payments operator, approves it."
        ),
    )
    return redirect(mctx.url("settings") + "#money-changes")


@require_POST
@merchant_page
def settings_change_decide(
    request: HttpRequest, mctx: MerchantContext, proposal_id: int, decision: str
) -> HttpResponse:
    """Another member approves or rejects a member's proposed change
    (stablepay.governance.change_control.may_decide)."""
    if not change_selectors.merchant_has_change(merchant=mctx.merchant, proposal_id=proposal_id):
        raise Http404("no such change")
    decide = change_control.change_approve if decision == "approve" else change_control.change_reject
    try:
        decide(proposal_id=proposal_id, user=request.user, note=request.POST.get("note", ""))
    except StablepayError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Change approved and applied.") if decision == "approve" else _("Change rejected."))
    return redirect(mctx.url("settings") + "#money-changes")


@require_POST
@merchant_page
def settings_token_policy(request: HttpRequest, mctx: MerchantContext) -> HttpResponse:
    form = TokenPolicyForm(request.POST)
    if not form.is_valid():
        return _settings_response(request, mctx, policy_form=form, status=400)
    services.merchant_token_policy_update(
        merchant=mctx.merchant,
        accepted_licence_statuses=form.cleaned_data["accepted_licence_statuses"],
        accepted_token_currencies=form.cleaned_data["accepted_token_currencies"],
        actor=_actor(request),
    )
    messages.success(request, _("Token policy saved."))
    return redirect(mctx.url("settings") + "#token-policy")


@require_POST
@never_cache
@merchant_page
def settings_api_key(request: HttpRequest, mctx: MerchantContext) -> HttpResponse:
    """Rotate the API key and show the new one on this response only (it is never stored in plaintext)."""
    form = RotateApiKeyForm(request.POST)
    if not form.is_valid():
        return _settings_response(request, mctx, rotate_form=form, status=400)
    key = services.merchant_rotate_api_key(merchant=mctx.merchant, actor=_actor(request))
    context = {**mctx.template_context("settings"), "api_key": key, "settings_url": mctx.url("settings")}
    response = render(request, "stablepay/merchant/api_key.html", context)
    response["Cache-Control"] = "no-store, no-cache, must-revalidate, private"
    response["Pragma"] = "no-cache"
    return response


@require_POST
@merchant_page
def webhook_redeliver(request: HttpRequest, mctx: MerchantContext, delivery_id: int) -> HttpResponse:
    try:
        delivery = services.webhook_redeliver(merchant=mctx.merchant, delivery_id=delivery_id, actor=_actor(request))
    except Conflict:
        delivery = None
        messages.error(request, _("Webhooks are off: set an endpoint URL first."))
    else:
        if delivery is None:
            raise Http404("no such webhook delivery")
        messages.success(request, _("Event %(type)s queued for redelivery.") % {"type": delivery.type})
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        target = mctx.url("settings") + "#deliveries"
    return HttpResponseRedirect(target)
