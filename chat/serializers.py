"""API serializers of the chat: conversations, messages (with grounded results)."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from recommender.serializers import RecommendationSerializer
from recsite.api.serializers import StrictInput

from .models import Conversation, Message
from .services import MAX_MESSAGE_CHARS


def recorded_with_undo(message: Message) -> list[dict]:
    """What the message recorded (``intent["recorded"]``), each with its API undo URL."""
    out = []
    for row in (message.intent or {}).get("recorded", []):
        if row.get("interaction_id"):
            undo = reverse("api:history-detail", args=[row["interaction_id"]])
        elif row.get("preference_id"):
            undo = reverse("api:preference-detail", args=[row["preference_id"]])
        else:
            continue
        out.append({"kind": row.get("kind", ""), "text": row.get("text", ""), "undo": undo})
    return out


class ChatRecommendationSerializer(RecommendationSerializer):
    label = serializers.CharField(allow_blank=True, required=False)


class RecordedSerializer(serializers.Serializer):
    """A write the user asked for in this message, and where to undo it."""

    kind = serializers.CharField()
    text = serializers.CharField()
    undo = serializers.CharField(help_text="DELETE this URL to undo")


class MessageSerializer(serializers.ModelSerializer):
    results = ChatRecommendationSerializer(many=True, read_only=True)
    # the user message an assistant message answers; null on the user's own messages
    reply_to = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    recorded = serializers.SerializerMethodField()

    @extend_schema_field(RecordedSerializer(many=True))
    def get_recorded(self, message: Message) -> list[dict]:
        return recorded_with_undo(message)

    class Meta:
        model = Message
        fields = (
            "id",
            "role",
            "text",
            "status",
            "reply_to",
            "results",
            "produced_by",
            "notice",
            "recorded",
            "repairs",
            "created_at",
        )
        read_only_fields = fields


class ConversationSerializer(StrictInput, serializers.ModelSerializer):
    class Meta:
        model = Conversation
        fields = ("id", "title", "created_at", "updated_at")
        read_only_fields = ("id", "created_at", "updated_at")
        extra_kwargs = {"title": {"required": False, "allow_blank": True, "max_length": 200}}


class ConversationDetailSerializer(ConversationSerializer):
    messages = MessageSerializer(many=True, read_only=True)

    class Meta(ConversationSerializer.Meta):
        fields = (*ConversationSerializer.Meta.fields, "messages")


class MessageInput(StrictInput, serializers.Serializer):
    text = serializers.CharField(max_length=MAX_MESSAGE_CHARS)


class TurnSerializer(serializers.Serializer):
    """One answered turn: my message and the assistant's grounded answer."""

    user_message = MessageSerializer()
    message = MessageSerializer()
    produced_by = serializers.ChoiceField(choices=["llm", "builtin"])
