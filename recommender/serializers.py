"""API serializers of the recommender: the explanation contract, hard filters, model versions."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from recsite.api.serializers import StrictInput

from . import selection
from .models import ModelVersion
from .types import EVIDENCE_KINDS, SOURCES, Filters

DEFAULT_N = 20  # recommendations when the client does not say


class EvidenceSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=EVIDENCE_KINDS)
    label = serializers.CharField()
    weight = serializers.FloatField()
    item_id = serializers.IntegerField(required=False, help_text="history_item evidence only")


class RecommendedItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    title = serializers.CharField()
    display_title = serializers.CharField(
        help_text='The title as a person reads it ("The Matrix").'
    )
    year = serializers.IntegerField(allow_null=True)
    genres = serializers.ListField(child=serializers.CharField())
    is_featured = serializers.BooleanField()
    is_pinned = serializers.BooleanField()


class RecommendationSerializer(serializers.Serializer):
    """One recommendation as ``Recommendation.as_dict()`` gives it (the explanation contract)."""

    item = RecommendedItemSerializer()
    rank = serializers.IntegerField(min_value=1)
    score = serializers.FloatField()
    source = serializers.ChoiceField(choices=SOURCES)
    reason = serializers.CharField(allow_blank=True, help_text="Built only from the evidence.")
    evidence = EvidenceSerializer(many=True)


class RecommendationListSerializer(serializers.Serializer):
    model_version = serializers.IntegerField(allow_null=True, help_text="Active version, if any.")
    count = serializers.IntegerField()
    results = RecommendationSerializer(many=True)


class FiltersQuery(StrictInput, serializers.Serializer):
    """Hard filters, as query parameters (repeat ``genre`` / ``exclude_genre`` for several)."""

    n = serializers.IntegerField(required=False, default=DEFAULT_N, min_value=1, max_value=100)
    genre = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        max_length=20,
        help_text="Item has at least one of these genres.",
    )
    exclude_genre = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=20
    )
    year_min = serializers.IntegerField(required=False, min_value=1800, max_value=2200)
    year_max = serializers.IntegerField(required=False, min_value=1800, max_value=2200)
    exclude_item = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        max_length=200,
    )

    def validate_n(self, value: int) -> int:
        return min(value, getattr(settings, "API_MAX_N", 100))

    def validate(self, attrs: dict) -> dict:
        lo, hi = attrs.get("year_min"), attrs.get("year_max")
        if lo is not None and hi is not None and lo > hi:
            raise serializers.ValidationError({"year_max": "must not be before year_min"})
        return attrs

    def filters(self) -> Filters:
        data = self.validated_data
        return Filters(
            genres=tuple(data.get("genre") or ()),
            exclude_genres=tuple(data.get("exclude_genre") or ()),
            year_min=data.get("year_min"),
            year_max=data.get("year_max"),
            exclude_ids=frozenset(data.get("exclude_item") or ()),
        )


class ModelVersionSerializer(serializers.ModelSerializer):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    # blank until the run has written its rows: a run is answered while it is still queued
    serving = serializers.ChoiceField(
        choices=ModelVersion.Serving.choices,
        allow_blank=True,
        read_only=True,
        help_text="How the version serves; blank until the run has written its rows.",
    )
    error = serializers.SerializerMethodField(help_text="The error's first line (failed runs).")

    class Meta:
        model = ModelVersion
        fields = (
            "id",
            "algorithm",
            "params",
            "status",
            "serving",
            "progress",
            "progress_message",
            "trigger",
            "requested_by",
            "n_users",
            "n_items",
            "n_interactions",
            "metrics",
            "timings",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "activated_at",
        )
        read_only_fields = fields

    def get_error(self, obj: ModelVersion) -> str:
        return (obj.error or "").split("\n", 1)[0][:300]


class TrainingStartSerializer(StrictInput, serializers.Serializer):
    algorithm = serializers.ChoiceField(
        choices=selection.TRAINABLE,
        required=False,
        help_text="Default: RECOMMENDER_MODEL; auto: the per-site model selection.",
    )
