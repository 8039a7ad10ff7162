"""The ops console's pages: parse the input, make one service or selector call, answer.

Access: anonymous users are sent to the login page (302). A signed-in user without the
`stablepay.ops_console` permission (a merchant, a shopper) gets 403: the console is documented at
/ops/, so hiding it behind a 404 would protect nothing, and a clear "no access" page tells a merchant
who followed a link where they stand. Approving or rejecting a decision that awaits a second ops user (a
large refund, any decision on a compliance hold) also needs `stablepay.ops_approve`.

The changes page (/ops/changes/) lists proposed changes to where money goes (stablepay.governance.change_control):
open to the console's users and to anyone holding `stablepay.approve_change`; approving or rejecting one
needs `stablepay.approve_change`, and never by the person who proposed it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from stablepay.compliance import audit_bundle
from stablepay.errors import StablepayError
from stablepay.governance import change_control, change_selectors
from stablepay.ledger import reconcile
from stablepay.models import ActionState, Chain, OpsAction, Resolution
from stablepay.ops import screening_selectors, selectors, services
from stablepay.ops.forms import (
    ActionForm,
    BulkForm,
    DecisionForm,
    LookalikeForm,
    QueueFilterForm,
    RefundTxForm,
    ScreeningFilterForm,
    action_label,
)
from stablepay.ops.lookalikes import DEFAULT_BLOCKS, lookalike_transfers

View = Callable[..., HttpResponse]
BULK_SESSION_KEY = "stablepay_ops_bulk_result"
SINGLE_GROUP_ROWS = 200
SCREENING_PAGE_ROWS = 50


def _forbidden(request: HttpRequest, reason: str) -> HttpResponse:
    return render(request, "stablepay/ops/forbidden.html", {"reason": reason}, status=403)


def _guarded(permissions: tuple[str, ...]) -> Callable[[View], View]:
    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            for permission in permissions:
                if not request.user.has_perm(permission):
                    return _forbidden(request, permission)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def _guarded_any(permissions: tuple[str, ...]) -> Callable[[View], View]:
    """Like `_guarded`, but one of the permissions is enough."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not any(request.user.has_perm(permission) for permission in permissions):
                return _forbidden(request, " / ".join(permissions))
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


ops_required = _guarded((services.CONSOLE_PERMISSION,))
changes_viewer_required = _guarded_any((services.CONSOLE_PERMISSION, change_control.APPROVE_PERMISSION))
change_approver_required = _guarded((change_control.APPROVE_PERMISSION,))
approver_required = _guarded((services.CONSOLE_PERMISSION, services.APPROVE_PERMISSION))


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _page(
    request: HttpRequest, template: str, context: dict[str, Any], *, section: str, status: int = 200
) -> HttpResponse:
    context = {
        **context,
        "ops_section": section,
        "ops_nav": {
            "open": selectors.open_exception_count(),
            "pending": selectors.pending_approval_count(),
            "halted_tokens": selectors.halted_tokens(),
            "screening_outage": screening_selectors.screening_outage(),
            "changes": change_selectors.pending_change_count(),
        },
        "can_approve": request.user.has_perm(services.APPROVE_PERMISSION),
    }
    return render(request, template, context, status=status)


# the queue ------------------------------------------------------------------------------------------
@require_GET
@ops_required
def queue(request: HttpRequest) -> HttpResponse:
    form = QueueFilterForm(request.GET)
    filters = form.filters()
    per_group = SINGLE_GROUP_ROWS if filters.exception else 25
    groups = selectors.exception_queue(filters, per_group=per_group)
    counts = selectors.exception_counts(selectors.QueueFilters(**{**filters.__dict__, "exception": ""}))
    other_matches = selectors.request_search(filters.q, exclude_open=True) if filters.q else []
    base_query = request.GET.copy()
    base_query.pop("exception", None)
    context = {
        "form": form,
        "filters": filters,
        "groups": groups,
        "counts": counts,
        "total": sum(counts.values()),
        "choices": selectors.queue_filter_choices(),
        "other_matches": other_matches,
        "tab_query": base_query.urlencode(),
        "bulk_form": BulkForm(),
        "single_group_rows": SINGLE_GROUP_ROWS,
        "is_filtered": any([filters.merchant, filters.chain_id, filters.token, filters.q, filters.awaiting_approval]),
    }
    return _page(request, "stablepay/ops/queue.html", context, section="queue")


@require_POST
@ops_required
def bulk(request: HttpRequest) -> HttpResponse:
    form = BulkForm(request.POST)
    selected = request.POST.getlist("requests")
    back = reverse("stablepay:ops:queue") + ("?" + request.POST["query"] if request.POST.get("query") else "")
    if not form.is_valid() or not selected:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        if not selected:
            messages.error(request, _("Select at least one request."))
        return redirect(back)
    try:
        outcomes = services.ops_action_bulk(
            request_ids=selected,
            action=form.cleaned_data["action"],
            note=form.cleaned_data["note"],
            user=_user(request),
        )
    except StablepayError as exc:
        messages.error(request, exc.message)
        return redirect(back)
    request.session[BULK_SESSION_KEY] = {
        "action": form.cleaned_data["action"],
        "note": form.cleaned_data["note"],
        "back": back,
        "outcomes": [o.__dict__ for o in outcomes],
    }
    return redirect("stablepay:ops:bulk-result")


@require_GET
@ops_required
def bulk_result(request: HttpRequest) -> HttpResponse:
    result = request.session.get(BULK_SESSION_KEY)
    if not result:
        return redirect("stablepay:ops:queue")
    outcomes = result["outcomes"]
    context = {
        "result": result,
        "outcomes": outcomes,
        "succeeded": sum(1 for o in outcomes if o["ok"] and o["message"] != ActionState.PENDING_APPROVAL),
        "pending": sum(1 for o in outcomes if o["ok"] and o["message"] == ActionState.PENDING_APPROVAL),
        "failed": sum(1 for o in outcomes if not o["ok"]),
    }
    return _page(request, "stablepay/ops/bulk_result.html", context, section="queue")


# one request ----------------------------------------------------------------------------------------
def _detail(request: HttpRequest, request_id: str, *, status: int = 200, error: str = "", **forms: Any) -> HttpResponse:
    detail = selectors.request_detail(request_id)
    if detail is None:
        raise Http404("no such payment request")
    user = _user(request)
    pending = detail.pending
    context = {
        "d": detail,
        "pr": detail.pr,
        "error": error,
        "action_form": forms.get("action_form") or ActionForm(allowed=detail.allowed_actions),
        "decision_form": forms.get("decision_form") or DecisionForm(),
        "tx_form": forms.get("tx_form") or RefundTxForm(),
        "is_requester": pending is not None and pending.requested_by_id == user.pk,
        "may_decide": pending is not None
        and pending.requested_by_id != user.pk
        and user.has_perm(services.APPROVE_PERMISSION),
    }
    return _page(request, "stablepay/ops/detail.html", context, section="queue", status=status)


def _refused(
    request: HttpRequest, request_id: str, form: Any, exc: StablepayError, name: str, *, field: str = ""
) -> HttpResponse:
    """The detail page again, with the service's reason on its field, or at the top of the page."""
    field = field or exc.field
    if field in form.fields:
        form.add_error(field, exc.message)
        return _detail(request, request_id, status=exc.status_code, **{name: form})
    return _detail(request, request_id, status=exc.status_code, error=exc.message, **{name: form})


@require_GET
@ops_required
def detail(request: HttpRequest, request_id: str) -> HttpResponse:
    return _detail(request, request_id)


@require_GET
@ops_required
def audit(request: HttpRequest, request_id: str) -> HttpResponse:
    """The request's signed audit bundle, as a file: the same bundle the merchant downloads."""
    found = selectors.request_detail(request_id)
    if found is None:
        raise Http404("no such payment request")
    return audit_bundle.download_response(found.pr)


@require_POST
@ops_required
def act(request: HttpRequest, request_id: str) -> HttpResponse:
    found = selectors.request_detail(request_id)
    if found is None:
        raise Http404("no such payment request")
    form = ActionForm(request.POST, allowed=found.allowed_actions or ("accept", "refund", "void"))
    if not form.is_valid():
        return _detail(request, request_id, status=400, action_form=form)
    try:
        op = services.ops_action_request(request_id=found.pr.pk, user=_user(request), **form.cleaned_data)
    except StablepayError as exc:
        return _refused(request, request_id, form, exc, "action_form")
    action = action_label(op.action)
    if op.state != ActionState.PENDING_APPROVAL:
        messages.success(request, _("Decision recorded: %(action)s.") % {"action": action})
    elif op.exception == reconcile.HELD:
        messages.warning(
            request,
            _(
                "Decision requested: %(action)s. Every decision on a compliance hold needs four eyes: it awaits"
                " a second ops user's approval and is carried out only then."
            )
            % {"action": action},
        )
    elif op.action == Resolution.ACCEPT:
        messages.warning(
            request,
            _("Accept requested. The shortfall is at or above the four-eyes limit: another ops user must approve it."),
        )
    else:
        messages.warning(
            request, _("Refund requested. It is above the four-eyes limit: another ops user must approve it.")
        )
    return redirect("stablepay:ops:detail", request_id=found.pr.pk)


def _decide(request: HttpRequest, action_id: int, *, approve: bool) -> HttpResponse:
    form = DecisionForm(request.POST)
    request_id = OpsAction.objects.filter(pk=action_id).values_list("payment_request_id", flat=True).first()
    if request_id is None:
        raise Http404("no such ops action")
    if not form.is_valid():
        return _detail(request, str(request_id), status=400, decision_form=form)
    decide = services.ops_action_approve if approve else services.ops_action_reject
    try:
        op = decide(action_id=action_id, user=_user(request), note=form.cleaned_data["note"])
    except StablepayError as exc:
        return _refused(request, str(request_id), form, exc, "decision_form")
    action = action_label(op.action)
    if approve:
        messages.success(request, _("Approved and carried out: %(action)s.") % {"action": action})
    else:
        messages.success(
            request, _("Rejected (%(action)s): nothing was carried out. The exception stays open.") % {"action": action}
        )
    return redirect("stablepay:ops:detail", request_id=request_id)


@require_POST
@approver_required
def approve(request: HttpRequest, action_id: int) -> HttpResponse:
    return _decide(request, action_id, approve=True)


@require_POST
@approver_required
def reject(request: HttpRequest, action_id: int) -> HttpResponse:
    return _decide(request, action_id, approve=False)


@require_POST
@ops_required
def refund_tx(request: HttpRequest, request_id: str) -> HttpResponse:
    if selectors.as_uuid(request_id) is None:
        raise Http404("no such payment request")
    form = RefundTxForm(request.POST)
    if not form.is_valid():
        return _detail(request, request_id, status=400, tx_form=form)
    try:
        services.ops_refund_tx_record(request_id=request_id, tx_hash=form.cleaned_data["tx_hash"], user=_user(request))
    except services.NotFound as exc:
        raise Http404("no such payment request") from exc
    except StablepayError as exc:
        return _refused(request, request_id, form, exc, "tx_form", field="tx_hash")
    messages.success(request, _("Refund transaction recorded."))
    return redirect("stablepay:ops:detail", request_id=request_id)


# the audit log ----------------------------------------------------------------------------------------
@require_GET
@ops_required
def actions(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    if state not in ActionState.values:
        state = ""
    paginator = Paginator(selectors.ops_action_list(state=state), 50)
    page = paginator.get_page(request.GET.get("page"))
    context = {"page": page, "state": state, "states": ActionState.values}
    return _page(
        request,
        "stablepay/ops/actions.html",
        context,
        section="approvals" if state == "pending_approval" else "actions",
    )


# changes to where money goes ------------------------------------------------------------------------
def _changes_page(request: HttpRequest, *, status: int = 200, error: str = "", form: Any = None) -> HttpResponse:
    context = {
        "pending": change_selectors.pending_changes(),
        "recent": change_selectors.recent_changes(),
        "can_approve_change": request.user.has_perm(change_control.APPROVE_PERMISSION),
        "decision_form": form or DecisionForm(),
        "error": error,
    }
    return _page(request, "stablepay/ops/changes.html", context, section="changes", status=status)


@require_GET
@changes_viewer_required
def changes(request: HttpRequest) -> HttpResponse:
    return _changes_page(request)


def _decide_change(request: HttpRequest, change_id: int, *, approve: bool) -> HttpResponse:
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return _changes_page(request, status=400, form=form)
    decide = change_control.change_approve if approve else change_control.change_reject
    try:
        decide(proposal_id=change_id, user=_user(request), note=form.cleaned_data["note"])
    except change_control.ChangeNotFound as exc:
        raise Http404("no such change") from exc
    except StablepayError as exc:
        return _changes_page(request, status=exc.status_code, error=exc.message)
    if approve:
        messages.success(request, _("Change #%(id)s approved and applied.") % {"id": change_id})
    else:
        messages.success(request, _("Change #%(id)s rejected: nothing was changed.") % {"id": change_id})
    return redirect("stablepay:ops:changes")


@require_POST
@change_approver_required
def change_approve(request: HttpRequest, change_id: int) -> HttpResponse:
    return _decide_change(request, change_id, approve=True)


@require_POST
@change_approver_required
def change_reject(request: HttpRequest, change_id: int) -> HttpResponse:
    return _decide_change(request, change_id, approve=False)


# payer screening ------------------------------------------------------------------------------------
@require_GET
@ops_required
def screening(request: HttpRequest) -> HttpResponse:
    form = ScreeningFilterForm(request.GET)
    outcome = form.chosen()
    paginator = Paginator(screening_selectors.not_clear_transfers(outcome=outcome), SCREENING_PAGE_ROWS)
    page = paginator.get_page(request.GET.get("page"))
    context = {
        "config": screening_selectors.screening_config(),
        "outcome_counts": screening_selectors.outcome_counts(),
        "not_clear_counts": screening_selectors.not_clear_counts(),
        "outcome": outcome,
        "page": page,
        "rows": screening_selectors.screening_rows(page.object_list),
    }
    return _page(request, "stablepay/ops/screening.html", context, section="screening")


# watcher health -------------------------------------------------------------------------------------
@require_GET
@ops_required
def health(request: HttpRequest) -> HttpResponse:
    reason = request.GET.get("reason", "")
    if reason not in selectors.UNCREDITED_REASONS:
        reason = ""
    report = None
    probe_form = LookalikeForm(request.GET if "probe" in request.GET else None)
    if probe_form.is_bound and probe_form.is_valid():
        chain = Chain.objects.filter(chain_id=probe_form.cleaned_data["probe"]).first()
        if chain is None:
            probe_form.add_error("probe", _("No such chain."))
        else:
            report = lookalike_transfers(chain=chain, blocks=probe_form.cleaned_data["blocks"] or DEFAULT_BLOCKS)
    context = {
        "chains": selectors.watcher_health(),
        "tokens": selectors.token_registry(),
        "uncredited": selectors.uncredited_transfers(reason=reason),
        "uncredited_counts": selectors.uncredited_counts(),
        "reason": reason,
        "probe_form": probe_form,
        "report": report,
        "default_blocks": DEFAULT_BLOCKS,
    }
    return _page(request, "stablepay/ops/health.html", context, section="health")
