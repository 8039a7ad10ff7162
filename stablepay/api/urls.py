"""Routes of the REST API, mounted at /api/v1/."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView

from stablepay.api import views
from stablepay.api.base import SCHEMA_SETTINGS

urlpatterns = [
    path(
        "schema/",
        SpectacularAPIView.as_view(
            authentication_classes=[],
            permission_classes=[],
            throttle_classes=[],
            custom_settings=SCHEMA_SETTINGS,
            schema=None,  # not an endpoint of any OpenAPI document (drf-spectacular's deploy check included)
        ),
        name="api-schema",
    ),
    path("tokens/", views.TokenListApi.as_view(), name="api-tokens"),
    path("audit-key/", views.AuditKeyApi.as_view(), name="api-audit-key"),
    path("settlements/", views.SettlementListApi.as_view(), name="api-settlements"),
    path("payment-requests/", views.PaymentRequestListCreateApi.as_view(), name="api-payment-requests"),
    path("payment-requests/<str:request_id>/", views.PaymentRequestDetailApi.as_view(), name="api-payment-request"),
    path(
        "payment-requests/<str:request_id>/cancel/",
        views.PaymentRequestCancelApi.as_view(),
        name="api-payment-request-cancel",
    ),
    path(
        "payment-requests/<str:request_id>/resolve/",
        views.PaymentRequestResolveApi.as_view(),
        name="api-payment-request-resolve",
    ),
    path(
        "payment-requests/<str:request_id>/audit/",
        views.PaymentRequestAuditApi.as_view(),
        name="api-payment-request-audit",
    ),
    # Any other path under /api/v1/ ending in "/" (e.g. an id holding a "/") answers a JSON 404, not the
    # site's HTML page; one without the slash is still redirected to it first (APPEND_SLASH).
    re_path(r"^.*/\Z", views.NotFoundApi.as_view(), name="api-not-found"),
]
