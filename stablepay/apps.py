"""App config for stablepay."""

from django.apps import AppConfig
from django.conf import settings


class StablepayConfig(AppConfig):
    name = "stablepay"
    verbose_name = "stablepay"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from stablepay import conf  # registers the settings' system checks
        from stablepay.redact import install_log_filters

        conf.validate()  # a setting of the wrong shape stops start-up here, naming where it came from
        install_log_filters()  # urllib3's and websockets' own log lines never quote a node URL's key
        if getattr(settings, "REDIS_URL", ""):  # Celery mode: new webhooks go to the workers once committed
            from stablepay import tasks

            tasks.connect_outbox()
