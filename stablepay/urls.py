"""stablepay's pages and API. A host project mounts it with `path("", include("stablepay.urls"))`."""

from django.urls import include, path

from stablepay.checkout import views
from stablepay.dev import views as dev_views  # the demo's button: 404 unless DEMO_MODE

app_name = "stablepay"

urlpatterns = [
    path("pay/<str:request_id>/", views.pay_page, name="pay"),
    path("pay/<str:request_id>/status/", views.pay_status, name="pay-status"),
    path("pay/<str:request_id>/simulate/", dev_views.pay_simulate, name="pay-simulate"),
    path("healthz", views.healthz, name="healthz"),
    path("api/v1/", include("stablepay.api.urls")),
    path("merchant/", include("stablepay.merchant.urls")),
    path("ops/", include("stablepay.ops.urls")),
]
