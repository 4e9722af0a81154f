from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from pgvector.django import VectorField


class ModelVersion(models.Model):
    """One training run and, once trained, the model it produced.

    A run writes its rows beside the active version and is activated in one transaction
    (``versions.version_activate``); a failed or killed run never touches what is served.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        TRAINING = "training", "training"
        READY = "ready", "trained, not active"
        ACTIVE = "active", "active"
        RETIRED = "retired", "retired"
        FAILED = "failed", "failed"

    class Serving(models.TextChoices):
        NEIGHBORS = "neighbors", "item-item neighbour lists"
        FACTORS = "factors", "item/user vectors (pgvector)"

    algorithm = models.CharField(max_length=64)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    serving = models.CharField(max_length=16, choices=Serving.choices, blank=True)
    dimensions = models.PositiveIntegerField(null=True, blank=True)
    indexed = models.BooleanField(default=False, help_text="HNSW index on the item vectors")

    progress = models.FloatField(default=0.0)
    progress_message = models.CharField(max_length=200, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    # "host:pid" of the process running it: a redelivered task can tell a dead owner from a live one
    claimed_by = models.CharField(max_length=200, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trigger = models.CharField(max_length=32, default="manual")

    n_users = models.PositiveIntegerField(null=True, blank=True)
    n_items = models.PositiveIntegerField(null=True, blank=True)
    n_interactions = models.PositiveIntegerField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # small numpy state needed at serving time (e.g. ALS's Gram matrix for user fold-in), npz
    artifact = models.BinaryField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="active"), name="one_active_model_version"
            ),
        ]

    def __str__(self) -> str:
        return f"v{self.pk} {self.algorithm} ({self.status})"

    @property
    def is_running(self) -> bool:
        return self.status in {self.Status.PENDING, self.Status.TRAINING}

    # what a run says while it serves and its quality is still being measured
    MEASURING_MESSAGE = "serving; measuring quality"

    @property
    def is_measuring(self) -> bool:
        """Serving already, its quality still being measured: progress pages keep polling."""
        return self.status == self.Status.ACTIVE and self.progress_message == self.MEASURING_MESSAGE


class VersionItem(models.Model):
    """An item as one model version serves it: popularity, and either its vector (factor models)
    or its outgoing item-item weights (neighbour models: score(u, i) = sum over u's history h of
    the weight of i in h's list)."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="items")
    item = models.ForeignKey("catalog.Item", on_delete=models.CASCADE, related_name="+")
    popularity = models.PositiveIntegerField(default=0)
    vector = VectorField(null=True, blank=True)
    # neighbour models: the item's top-K outgoing weights as packed little-endian arrays
    # (int64 item ids, float32 weights): ~10x cheaper to write and read than SQL arrays.
    neighbors = models.BinaryField(null=True, blank=True)
    weights = models.BinaryField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "item"], name="version_item_unique"),
        ]
        indexes = [
            models.Index(fields=["version", "-popularity"], name="version_item_pop_idx"),
        ]

    def __str__(self) -> str:
        return f"item {self.item_id} in version {self.version_id}"


class UserVector(models.Model):
    """A user's vector for a factor model version, refreshed after each new interaction."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="users")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    vector = VectorField()
    # the user's best items by inner product with ``vector``, outside what they had when it was
    # computed, best first, as packed little-endian arrays (int64 item ids, float32 scores): a
    # list reads them with the vector instead of searching the catalog (storage.nearest_by_vector)
    candidates = models.BinaryField(null=True, blank=True)
    candidate_scores = models.BinaryField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "user"], name="user_vector_unique"),
        ]

    def __str__(self) -> str:
        return f"user {self.user_id} in version {self.version_id}"


class ItemEmbedding(models.Model):
    """An item's text embedding in one backend's vector space (``recommender/embeddings``).

    ``text_hash`` is the md5 of the exact text that was embedded (``embeddings.text.ITEM_TEXT_SQL``
    computes that text inside PostgreSQL): serving compares it with the item's current text, so a
    vector whose item has been edited since is never served. Vectors are L2-normalised (inner
    product = cosine); an HNSW index per backend and size is created by the bulk refresh.
    """

    item = models.ForeignKey("catalog.Item", on_delete=models.CASCADE, related_name="+")
    backend = models.CharField(max_length=100)
    dims = models.PositiveIntegerField()
    text_hash = models.CharField(max_length=32)
    vector = VectorField()
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["backend", "item"], name="item_embedding_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.backend} vector of item {self.item_id}"


class UserHistory(models.Model):
    """A user's history as serving reads it (``history.History``), packed, and the generation of
    their interactions it was read at.

    Triggers on the interactions table (migration 0006) bump ``generation`` when a transaction
    that added, edited or deleted any of the user's rows commits, whatever wrote them (the
    site, an import, the admin, a cascade); a reader uses ``packed`` only while
    ``packed_generation`` equals it, else reads the rows and stores them packed under the
    generation it saw first.
    A long history is then one row to read instead of thousands. The foreign key is the
    database's own (ON DELETE CASCADE): the triggers write here while Django deletes a user's
    interactions, before it deletes the user.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        primary_key=True,
        db_constraint=False,
        related_name="+",
    )
    generation = models.BigIntegerField(default=1)
    packed_generation = models.BigIntegerField(default=0)
    packed = models.BinaryField(null=True, blank=True)

    def __str__(self) -> str:
        return f"history of user {self.user_id} (generation {self.generation})"
