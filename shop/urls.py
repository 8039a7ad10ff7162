"""Root URLs: the store, stablepay (payment page, API, dashboards), admin, login and language switching."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("stablepay.urls")),
    path("", include("shop.store_urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
