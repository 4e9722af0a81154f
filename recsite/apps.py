from django.apps import AppConfig


class RecsiteConfig(AppConfig):
    name = "recsite"
    verbose_name = "recsite"

    def ready(self) -> None:
        from recsite.celery import announce_mode

        announce_mode()
