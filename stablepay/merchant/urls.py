"""Routes of the merchant dashboard, mounted at /merchant/ (namespace "stablepay:merchant")."""

from django.urls import path

from stablepay.merchant import views

app_name = "merchant"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("payments/", views.payments, name="payments"),
    path("payments/<str:request_id>/", views.payment_detail, name="payment"),
    path("payments/<str:request_id>/audit/", views.payment_audit, name="payment-audit"),
    path("settlements/", views.settlements, name="settlements"),
    path("settlements.csv", views.settlements_csv, name="settlements-csv"),
    path("settings/", views.settings_page, name="settings"),
    path("settings/webhook/", views.settings_webhook, name="settings-webhook"),
    path("settings/payments/", views.settings_payments, name="settings-payments"),
    path("settings/token-policy/", views.settings_token_policy, name="settings-token-policy"),
    path("settings/api-key/", views.settings_api_key, name="settings-api-key"),
    path(
        "settings/changes/<int:proposal_id>/approve/",
        views.settings_change_decide,
        {"decision": "approve"},
        name="settings-change-approve",
    ),
    path(
        "settings/changes/<int:proposal_id>/reject/",
        views.settings_change_decide,
        {"decision": "reject"},
        name="settings-change-reject",
    ),
    path("webhooks/<int:delivery_id>/redeliver/", views.webhook_redeliver, name="webhook-redeliver"),
]
