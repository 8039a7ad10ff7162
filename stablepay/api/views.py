"""API views: parse, make one service or selector call, answer. A merchant only ever sees its own requests."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from stablepay.api.base import PAGE_SIZE, StablepayApiView, extend_schema
from stablepay.api.schema import AUDIT_DOCUMENT_SCHEMA, AUDIT_KEY_SCHEMA, PaymentRequestPageOut, errors
from stablepay.api.serializers import (
    ListFiltersIn,
    PaymentRequestCreateIn,
    PaymentRequestOut,
    ResolveIn,
    SettlementFiltersIn,
    SettlementRowOut,
    TokenOut,
    create_body,
    fingerprint,
)
from stablepay.api.throttling import PaymentRequestCreateThrottle, RateLimitedOut
from stablepay.compliance import audit_bundle
from stablepay.ledger import selectors, services
from stablepay.ledger.representation import payment_request_data
from stablepay.merchant.selectors import settlement_rows
from stablepay.models import Merchant, PaymentRequest
from stablepay.ops import services as ops_services

MAX_IDEMPOTENCY_KEY = 255
REQUEST_ID = OpenApiParameter(
    "request_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The payment request's id."
)
PAGE = OpenApiParameter(
    "page",
    {"type": "integer", "minimum": 1},
    OpenApiParameter.QUERY,
    description="1 by default; a page past the last answers 404.",
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY},
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "The same key with the same body answers the request made first; with another body, 409. "
        f"1 to {MAX_IDEMPOTENCY_KEY} characters; a longer one answers 400 naming the header."
    ),
)


class StrictPagination(PageNumberPagination):
    """`?page=` is a positive integer or absent (DRF would read an empty or "last" page too)."""

    page_size = PAGE_SIZE

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any] | None:
        page = request.query_params.get(self.page_query_param)
        if page is not None and not (page.isascii() and page.isdigit() and int(page) >= 1):
            raise ValidationError({self.page_query_param: ["must be a positive integer"]})
        return super().paginate_queryset(queryset, request, view)


def _merchant(request: Request) -> Merchant:
    assert isinstance(request.auth, Merchant)
    return request.auth


def _actor(request: Request) -> str:
    return f"merchant:{_merchant(request).slug}"


def _own_request(request: Request, request_id: str) -> PaymentRequest:
    found = selectors.payment_request_for_merchant(merchant=_merchant(request), request_id=request_id)
    if found is None:
        raise NotFound("no such payment request")
    return found


class TokenListApi(StablepayApiView):
    @extend_schema(responses={200: TokenOut(many=True), **errors()})
    def get(self, request: Request) -> Response:
        return Response([TokenOut().to_representation(t) for t in selectors.token_list()])


class PaymentRequestListCreateApi(StablepayApiView):
    throttle_classes = [PaymentRequestCreateThrottle]  # POST only: stablepay/ratelimit.py

    @extend_schema(
        parameters=[ListFiltersIn, PAGE],
        responses={200: PaymentRequestPageOut, **errors(400, 404)},  # 404: a page number past the end
        operation_id="payment_requests_list",
    )
    def get(self, request: Request) -> Response:
        filters = ListFiltersIn(data=request.query_params)
        filters.is_valid(raise_exception=True)
        queryset = selectors.payment_request_list(merchant=_merchant(request), **filters.validated_data)
        paginator = StrictPagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response([payment_request_data(pr, request) for pr in page or []])

    @extend_schema(
        request=PaymentRequestCreateIn,
        responses={201: PaymentRequestOut, **errors(400, 409, 413, 415), 429: RateLimitedOut},
        parameters=[
            IDEMPOTENCY_KEY,
            OpenApiParameter("Retry-After", int, OpenApiParameter.HEADER, response=[429]),
        ],
    )
    def post(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key")
        if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY):
            raise ValidationError({"Idempotency-Key": [f"must be 1 to {MAX_IDEMPOTENCY_KEY} characters"]})
        data = create_body(request.data)
        if data is None:  # not plainly valid: the serializer decides, and names what is wrong
            body = PaymentRequestCreateIn(data=request.data)
            body.is_valid(raise_exception=True)
            data = body.validated_data
        payment_request, _ = services.payment_request_create(
            merchant=_merchant(request),
            order_reference=data["order_reference"],
            amount=data["amount"],
            currency=data["currency"],
            chain_id=data["chain_id"],
            token_symbol=data["token"],
            expiry_minutes=data.get("expiry_minutes"),
            metadata=data.get("metadata"),
            idempotency_key=key,
            fingerprint=fingerprint(request.data),
            actor=_actor(request),
            serialize_now=True,
        )
        return Response(payment_request_data(payment_request, request), status=status.HTTP_201_CREATED)


class PaymentRequestDetailApi(StablepayApiView):
    @extend_schema(parameters=[REQUEST_ID], responses={200: PaymentRequestOut, **errors(404)})
    def get(self, request: Request, request_id: str) -> Response:
        return Response(payment_request_data(_own_request(request, request_id), request))


class PaymentRequestCancelApi(StablepayApiView):
    @extend_schema(parameters=[REQUEST_ID], request=None, responses={200: PaymentRequestOut, **errors(404, 409)})
    def post(self, request: Request, request_id: str) -> Response:
        own = _own_request(request, request_id)
        canceled = services.payment_request_cancel(request_id=own.pk, actor=_actor(request))
        return Response(payment_request_data(canceled, request))


class PaymentRequestResolveApi(StablepayApiView):
    @extend_schema(
        parameters=[REQUEST_ID],
        request=ResolveIn,
        responses={200: PaymentRequestOut, **errors(400, 403, 404, 409, 413, 415)},
    )
    def post(self, request: Request, request_id: str) -> Response:
        own = _own_request(request, request_id)
        body = ResolveIn(data=request.data)
        body.is_valid(raise_exception=True)
        resolved = ops_services.merchant_resolve(
            request_id=own.pk,
            action=body.validated_data["action"],
            note=body.validated_data["note"],
            refund_tx_hash=body.validated_data.get("refund_tx_hash"),
            actor=_actor(request),
        )
        return Response(payment_request_data(resolved, request))


class PaymentRequestAuditApi(StablepayApiView):
    """The request's signed audit bundle (stablepay/compliance/audit_bundle.py), as a JSON file download."""

    @extend_schema(
        parameters=[REQUEST_ID],
        responses={200: OpenApiResponse(AUDIT_DOCUMENT_SCHEMA, description="The signed bundle."), **errors(404)},
    )
    def get(self, request: Request, request_id: str) -> HttpResponse:
        return audit_bundle.download_response(_own_request(request, request_id))


class AuditKeyApi(StablepayApiView):
    """The public key that verifies audit bundles (needs no API key: it is public)."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    @extend_schema(responses={200: OpenApiResponse(AUDIT_KEY_SCHEMA), 406: errors()[406]}, auth=[])
    def get(self, request: Request) -> Response:
        return Response(audit_bundle.public_key_info())


class SettlementListApi(StablepayApiView):
    """The settlement report: one row per Hong Kong day, chain, token (and fiat currency) of `paid` requests."""

    @extend_schema(parameters=[SettlementFiltersIn], responses={200: SettlementRowOut(many=True), **errors(400)})
    def get(self, request: Request) -> Response:
        filters = SettlementFiltersIn(data=request.query_params)
        filters.is_valid(raise_exception=True)
        rows = settlement_rows(merchant=_merchant(request), **filters.validated_data)
        return Response([row.as_api() for row in rows])


@extend_schema(exclude=True)
class NotFoundApi(StablepayApiView):
    """Any other path under the API: a JSON 404, whoever asks."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    def get(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        raise NotFound("no such API endpoint")

    post = put = patch = delete = options = get
