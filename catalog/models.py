from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .titles import display_label, display_title


class Item(models.Model):
    """One thing that can be recommended (a movie for MovieLens)."""

    external_id = models.CharField(max_length=64, unique=True)
    title = models.CharField(max_length=500)
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    description = models.TextField(blank=True, default="")
    genres = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    tags = ArrayField(models.CharField(max_length=255), default=list, blank=True)
    links = models.JSONField(default=dict, blank=True, help_text='e.g. {"imdb": "https://..."}')
    metadata = models.JSONField(default=dict, blank=True)

    # Curation (staff): hidden items are never recommended nor listed; featured and pinned items
    # are marked and placed by the recommender; boost is added to an item's rank score.
    is_hidden = models.BooleanField("hidden", default=False)
    is_featured = models.BooleanField("featured", default=False)
    is_pinned = models.BooleanField("pinned", default=False)
    boost = models.FloatField(default=0.0, help_text="Added to the ranking score; 0 = none.")

    # Maintained by a database trigger (see migration 0002) from title, tags and description.
    search_vector = SearchVectorField(null=True, editable=False)
    # The title's trigrams, by a database trigger too (migration 0005): typo-tolerant search.
    title_trigrams = ArrayField(
        models.CharField(max_length=3), default=list, blank=True, editable=False
    )

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title", "id"]
        indexes = [
            GinIndex(fields=["genres"], name="item_genres_gin"),
            GinIndex(fields=["search_vector"], name="item_search_gin"),
            GinIndex(fields=["title_trigrams"], name="item_title_trgm_gin"),
            models.Index(fields=["year"], name="item_year_idx"),
            # the catalog's fingerprint (a cache key) reads the newest edit at every expiry
            models.Index(fields=["updated_at"], name="item_updated_idx"),
            models.Index(
                fields=["is_featured"], name="item_featured_idx", condition=Q(is_featured=True)
            ),
            models.Index(fields=["is_pinned"], name="item_pinned_idx", condition=Q(is_pinned=True)),
            # every "For you" list reads the curated items (pinned, featured or boosted)
            models.Index(
                fields=["id"],
                name="item_curated_idx",
                condition=Q(is_pinned=True) | Q(is_featured=True) | ~Q(boost=0),
            ),
            models.Index(fields=["is_hidden"], name="item_hidden_idx", condition=Q(is_hidden=True)),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(year__isnull=True) | Q(year__gte=1800, year__lte=2200),
                name="item_year_plausible",
            ),
        ]

    def __str__(self) -> str:
        return display_label(self.title, self.year)

    @property
    def display_title(self) -> str:
        """The title as a person reads it ("The Matrix" for MovieLens's "Matrix, The")."""
        return display_title(self.title)


class Interaction(models.Model):
    """One signal from a user about an item. A MovieLens rating is one ``rating`` interaction."""

    class Kind(models.TextChoices):
        RATING = "rating", "rating"
        LIKE = "like", "like"
        DISMISS = "dismiss", "not interested"
        VIEW = "view", "view"
        SAVE = "save", "saved for later"  # the watch-list

    class Source(models.TextChoices):
        IMPORT = "import", "import"
        WEB = "web", "web"
        API = "api", "api"
        CHAT = "chat", "chat"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="interactions"
    )
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="interactions")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    value = models.FloatField(null=True, blank=True, help_text="The rating (0.5-5), else empty.")
    timestamp = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.WEB)

    class Meta:
        ordering = ["-timestamp", "-id"]
        constraints = [
            # One current signal of each kind per user and item; a new rating replaces the old.
            models.UniqueConstraint(
                fields=["user", "item", "kind"], name="interaction_unique_kind"
            ),
            models.CheckConstraint(
                condition=~Q(kind="rating") | Q(value__gte=0.5, value__lte=5.0),
                name="interaction_rating_range",
            ),
        ]
        indexes = [
            # per-user history, newest first, in the order serving reads it and holding the
            # columns it reads: an index-only scan with no sort (half the time of a sort of a
            # heavy user's 2,000 rows)
            models.Index(
                fields=["user", "-timestamp", "-id"],
                include=["item", "kind", "value"],
                name="interaction_history_idx",
            ),
            # per-item counts and "who interacted with this" (admin, similar users)
            models.Index(fields=["item", "kind"], name="interaction_item_kind_idx"),
            # training reads everything ordered by id in batches; incremental reads by time
            models.Index(fields=["timestamp"], name="interaction_time_idx"),
        ]

    def __str__(self) -> str:
        value = f" {self.value:g}" if self.value is not None else ""
        return f"{self.user} {self.kind}{value} {self.item}"


# What says a user wants an item (any rating, any like): what training learns from, what makes
# an item "seen" and what popularity counts. A dismissal or a view is not one.
POSITIVE_KINDS: tuple[str, ...] = (Interaction.Kind.RATING, Interaction.Kind.LIKE)


class Tagging(models.Model):
    """A user's free-text tag on an item (MovieLens tags.csv). ``Item.tags`` holds the distinct set."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="taggings")
    tag = models.CharField(max_length=255)
    timestamp = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "item", "tag"], name="tagging_unique"),
        ]
        indexes = [models.Index(fields=["item"], name="tagging_item_idx")]

    def __str__(self) -> str:
        return f"{self.tag} on {self.item_id}"


class Preference(models.Model):
    """A user's standing preference ("no more horror"), said in chat or set through the API:
    every list the user gets (pages, API, chat) honours it until the user forgets it."""

    class Kind(models.TextChoices):
        EXCLUDE_GENRE = "exclude_genre", "no more of this genre"
        PREFER_GENRE = "prefer_genre", "more of this genre"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preferences"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    value = models.CharField(max_length=200)
    # the chat conversation it was said in, if any: an id, not a foreign key, since the catalog
    # knows nothing of the chat
    conversation_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind", "value"], name="preference_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.value}"
