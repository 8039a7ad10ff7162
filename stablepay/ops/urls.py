"""The ops console under /ops/ (mounted by stablepay.urls)."""

from django.urls import path

from stablepay.ops import views

app_name = "ops"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("bulk/", views.bulk, name="bulk"),
    path("bulk/result/", views.bulk_result, name="bulk-result"),
    path("requests/<str:request_id>/", views.detail, name="detail"),
    path("requests/<str:request_id>/audit/", views.audit, name="audit"),
    path("requests/<str:request_id>/decide/", views.act, name="act"),
    path("requests/<str:request_id>/refund-tx/", views.refund_tx, name="refund-tx"),
    path("actions/", views.actions, name="actions"),
    path("actions/<int:action_id>/approve/", views.approve, name="approve"),
    path("actions/<int:action_id>/reject/", views.reject, name="reject"),
    path("changes/", views.changes, name="changes"),
    path("changes/<int:change_id>/approve/", views.change_approve, name="change-approve"),
    path("changes/<int:change_id>/reject/", views.change_reject, name="change-reject"),
    path("screening/", views.screening, name="screening"),
    path("health/", views.health, name="health"),
]
