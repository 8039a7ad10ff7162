"""The second-factor pages; the host mounts them at accounts/two-factor/ (names are not namespaced, like
Django's own `login` and `logout`)."""

from django.urls import path

from stablepay.accounts import views

urlpatterns = [
    path("", views.verify, name="two-factor-verify"),
    path("setup/", views.setup, name="two-factor-setup"),
    path("backup-codes/", views.backup_codes, name="two-factor-backup-codes"),
]
