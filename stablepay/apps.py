"""App config for stablepay."""

from django.apps import AppConfig


class StablepayConfig(AppConfig):
    name = "stablepay"
    verbose_name = "stablepay"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from stablepay.compliance import secret_checks  # noqa: F401  (register the checks)
        from stablepay.redact import install_log_filters

        install_log_filters()  # urllib3's and websockets' own log lines never quote a node URL's key
