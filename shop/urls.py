"""Root URLs: the store, stablepay (payment page, API, dashboards), admin, login, second factors and language
switching."""

from django.contrib import admin
from django.urls import include, path

from stablepay.interface import SECOND_FACTOR_URLCONF, URLCONF

urlpatterns = [
    path("", include(URLCONF)),
    path("", include("shop.store_urls")),
    # Second factors (before auth.urls): verify and enrol, and django-otp-webauthn's passkey endpoints.
    path("accounts/two-factor/", include(SECOND_FACTOR_URLCONF)),
    path("accounts/webauthn/", include("django_otp_webauthn.urls", namespace="otp_webauthn")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
