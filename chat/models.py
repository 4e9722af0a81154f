"""Conversations and their messages (standing preferences belong to the user: catalog.Preference)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Conversation(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, blank=True)
    # the merged constraints carried from turn to turn (refinement): see chat.intent.State
    state = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["user", "-updated_at"], name="conversation_user_idx")]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", "user"
        ASSISTANT = "assistant", "assistant"

    class Status(models.TextChoices):
        PENDING = "pending", "waiting for an answer"
        RUNNING = "running", "being answered"
        DONE = "done", "answered"

    class ProducedBy(models.TextChoices):
        LLM = "llm", "LLM"
        BUILTIN = "builtin", "built-in parser and template explainer"
        NONE = "", "-"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    text = models.TextField(blank=True)
    # user messages: pending -> running -> done (claimed once by whoever answers them)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DONE)
    reply_to = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="reply"
    )

    # assistant messages: everything needed to audit the turn
    intent = models.JSONField(default=dict, blank=True)
    candidates = models.JSONField(default=list, blank=True)  # [{label, item_id, source}]
    results = models.JSONField(default=list, blank=True)  # Recommendation.as_dict() + label
    repairs = models.JSONField(default=dict, blank=True)  # {kind: count}
    produced_by = models.CharField(max_length=16, choices=ProducedBy.choices, blank=True)
    llm_usage = models.JSONField(default=dict, blank=True)  # tokens, latency, calls, cache hits
    pipeline_ms = models.FloatField(null=True, blank=True)  # our own time, LLM excluded
    llm_ms = models.FloatField(null=True, blank=True)
    notice = models.CharField(max_length=300, blank=True)

    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["conversation", "created_at"], name="message_conv_idx")]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:40]}"
