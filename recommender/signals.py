"""Listen to the catalog: a user's new interaction refreshes their vector (factor models)."""

from __future__ import annotations

from django.dispatch import receiver

from catalog.signals import interactions_changed


@receiver(interactions_changed)
def refresh_user(sender, user_id: int, **kwargs) -> None:
    from .models import ModelVersion
    from .selectors import version_active
    from .tasks import user_refresh_task

    version = version_active()
    if version is not None and version.serving == ModelVersion.Serving.FACTORS:
        user_refresh_task.delay(user_id)
