"""API serializers of the catalog: items, interactions (history), standing
preferences, curation, query parameters."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from recsite.api.serializers import StrictInput

from .models import Interaction, Item, Preference

ITEM_ORDERINGS = ("relevance", "popular", "title", "-title", "year", "-year")


class ItemSerializer(serializers.ModelSerializer):
    display_title = serializers.CharField(read_only=True)

    class Meta:
        model = Item
        fields = (
            "id",
            "external_id",
            "title",
            "display_title",
            "year",
            "description",
            "genres",
            "tags",
            "links",
            "is_featured",
            "is_pinned",
        )
        read_only_fields = fields

    def to_representation(self, instance: Item) -> dict:
        # the fields' own to_representation, field by field, cost more than the rest of a search
        # page (20 items x 11 fields); these are the values they return for these model fields
        return {
            "id": instance.pk,
            "external_id": instance.external_id,
            "title": instance.title,
            "display_title": instance.display_title,
            "year": instance.year,
            "description": instance.description,
            "genres": list(instance.genres),
            "tags": list(instance.tags),
            "links": instance.links,
            "is_featured": instance.is_featured,
            "is_pinned": instance.is_pinned,
        }


class ItemBriefSerializer(serializers.ModelSerializer):
    display_title = serializers.CharField(read_only=True)

    class Meta:
        model = Item
        fields = ("id", "title", "display_title", "year", "genres")
        read_only_fields = fields


class ItemCurationSerializer(StrictInput, serializers.ModelSerializer):
    """Staff: an item with its curation flags; PATCH any of them."""

    boost = serializers.FloatField(min_value=-10.0, max_value=10.0, required=False)

    class Meta:
        model = Item
        fields = (
            "id",
            "title",
            "year",
            "is_hidden",
            "is_featured",
            "is_pinned",
            "boost",
            "updated_at",
        )
        read_only_fields = ("id", "title", "year", "updated_at")


class ItemListQuery(StrictInput, serializers.Serializer):
    q = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="Full-text search (websearch syntax).",
    )
    genre = serializers.CharField(required=False, allow_blank=True, max_length=64)
    year_min = serializers.IntegerField(required=False, min_value=1800, max_value=2200)
    year_max = serializers.IntegerField(required=False, min_value=1800, max_value=2200)
    ordering = serializers.ChoiceField(
        choices=ITEM_ORDERINGS,
        required=False,
        help_text="Default: relevance with a query, else popular.",
    )
    semantic = serializers.BooleanField(
        required=False,
        default=False,
        help_text="With q: rank by full text and meaning together (text embeddings), so "
        '"a feel-good film about space" finds films without those words.',
    )

    def validate(self, attrs: dict) -> dict:
        lo, hi = attrs.get("year_min"), attrs.get("year_max")
        if lo is not None and hi is not None and lo > hi:
            raise serializers.ValidationError({"year_max": "must not be before year_min"})
        if attrs.get("ordering") == "relevance" and not (attrs.get("q") or "").strip():
            raise serializers.ValidationError({"ordering": "relevance needs a query (q)"})
        return attrs


class InteractionSerializer(serializers.ModelSerializer):
    item = ItemBriefSerializer(read_only=True)

    class Meta:
        model = Interaction
        fields = ("id", "item", "kind", "value", "timestamp", "source")
        read_only_fields = fields


class InteractionCreateSerializer(StrictInput, serializers.Serializer):
    item_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    kind = serializers.ChoiceField(choices=Interaction.Kind.choices)
    value = serializers.FloatField(
        required=False, allow_null=True, min_value=0.5, max_value=5.0, help_text="Ratings only."
    )

    def validate(self, attrs: dict) -> dict:
        if attrs["kind"] == Interaction.Kind.RATING and attrs.get("value") is None:
            raise serializers.ValidationError({"value": "a rating needs a value between 0.5 and 5"})
        if attrs["kind"] != Interaction.Kind.RATING and attrs.get("value") is not None:
            raise serializers.ValidationError({"value": "only ratings have a value"})
        return attrs


class InteractionUpdateSerializer(StrictInput, serializers.Serializer):
    value = serializers.FloatField(min_value=0.5, max_value=5.0)


class HistoryQuery(StrictInput, serializers.Serializer):
    kind = serializers.ChoiceField(choices=Interaction.Kind.choices, required=False)


@extend_schema_serializer(component_name="ChatPreference")  # its name since the API began
class PreferenceSerializer(StrictInput, serializers.ModelSerializer):
    conversation = serializers.IntegerField(
        source="conversation_id",
        read_only=True,
        allow_null=True,
        help_text="The chat conversation it was said in, if any.",
    )

    class Meta:
        model = Preference
        fields = ("id", "kind", "value", "conversation", "created_at")
        read_only_fields = ("id", "conversation", "created_at")
        extra_kwargs = {"value": {"max_length": 200}}
        # the (user, kind, value) uniqueness is enforced by the service, not a validator here
        validators: list = []
