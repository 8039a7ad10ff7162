"""App config for stablepay."""

from django.apps import AppConfig


class StablepayConfig(AppConfig):
    name = "stablepay"
    verbose_name = "stablepay"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from stablepay import secret_checks  # noqa: F401  (registers the system checks)
