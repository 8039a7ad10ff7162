"""App config for stablepay."""

from django.apps import AppConfig


class StablepayConfig(AppConfig):
    name = "stablepay"
    verbose_name = "stablepay"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from stablepay import screening_checks, secret_checks  # noqa: F401  (register the system checks)
