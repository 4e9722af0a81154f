from django.apps import AppConfig


class RecsiteConfig(AppConfig):
    name = "recsite"
    verbose_name = "recsite"

    def ready(self) -> None:
        from recsite import lookups
        from recsite.celery import announce_mode

        lookups.register()
        announce_mode()
