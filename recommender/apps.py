from django.apps import AppConfig


class RecommenderConfig(AppConfig):
    name = "recommender"
    verbose_name = "Recommender"

    def ready(self) -> None:
        # the receivers connect, and the tasks are in Celery's registry for services to enqueue
        from . import signals, tasks  # noqa: F401
