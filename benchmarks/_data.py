"""What the server benchmarks need in their database: ml-latest-small and an active model.

Imported after ``django.setup()`` by benchmarks run from the repository root."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ensure_data() -> None:
    """Migrate; import ml-latest-small (RECSITE_MOVIELENS_DIR, else ../shared/data) if it is
    not loaded; train and activate the default model if none is active."""
    from django.core.management import call_command

    from catalog.importing.movielens import movielens_import
    from catalog.models import Interaction, Item
    from recommender import services
    from recommender.models import ModelVersion

    call_command("migrate", verbosity=0)
    data = Path(
        os.environ.get("RECSITE_MOVIELENS_DIR", ROOT.parent / "shared" / "data" / "ml-latest-small")
    )
    if Item.objects.count() < 9000 or Interaction.objects.filter(source="import").count() < 100000:
        print("loading ml-latest-small ...", flush=True)
        movielens_import(path=data)
    if not ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exists():
        print("training the default model ...", flush=True)
        version = services.training_start(trigger="benchmark")
        services.model_train(version_id=version.pk)
