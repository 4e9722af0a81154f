"""API endpoints of the chat: my conversations, posting a message (answered with grounded,
guarded recommendations; also as a server-sent event stream). Standing preferences are the
catalog's (``catalog.api``).

Every object is looked up through the requesting user (selectors), so another user's
conversation or message id is "not found".
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, permissions, renderers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from recsite.api.caching import cache_headers
from recsite.api.permissions import IsOwner
from recsite.api.renderers import JSONRenderer
from recsite.api.schema import sse_event_schema

from . import selectors, services
from .answer import ChatEvent
from .models import Conversation
from .serializers import (
    ConversationDetailSerializer,
    ConversationSerializer,
    MessageInput,
    MessageSerializer,
    TurnSerializer,
)
from .streaming import sse_event


class ConversationListView(generics.ListCreateAPIView):
    """My conversations, most recent first; POST starts a new one."""

    serializer_class = ConversationSerializer
    permission_classes = [permissions.IsAuthenticated]
    cursor_ordering = ("-updated_at", "-id")

    def get_queryset(self) -> QuerySet[Conversation]:
        return selectors.conversation_list(user=self.request.user)

    @extend_schema(tags=["chat"])
    @cache_headers(public=False)
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(tags=["chat"], responses={201: ConversationSerializer})
    def post(self, request: Request, *args, **kwargs) -> Response:
        data = ConversationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        conversation = services.conversation_create(
            user=request.user, title=data.validated_data.get("title", "")
        )
        return Response(ConversationSerializer(conversation).data, status=status.HTTP_201_CREATED)


class ConversationDetailView(APIView):
    """One of my conversations with all its messages."""

    permission_classes = [IsOwner]

    @extend_schema(tags=["chat"], responses={200: ConversationDetailSerializer})
    @cache_headers(public=False)
    def get(self, request: Request, pk: int) -> Response:
        conversation = selectors.conversation_get(user=request.user, conversation_id=pk)
        self.check_object_permissions(request, conversation)
        data = ConversationSerializer(conversation).data
        data["messages"] = MessageSerializer(
            selectors.message_list(conversation=conversation), many=True
        ).data
        return Response(data)


class MessagePostView(APIView):
    """Post a message to my conversation and get the grounded answer (the whole turn)."""

    permission_classes = [IsOwner]
    throttle_scope = "chat"

    def conversation(self, request: Request, pk: int) -> Conversation:
        conversation = selectors.conversation_get(user=request.user, conversation_id=pk)
        self.check_object_permissions(request, conversation)
        return conversation

    @extend_schema(tags=["chat"], request=MessageInput, responses={201: TurnSerializer})
    def post(self, request: Request, pk: int) -> Response:
        conversation = self.conversation(request, pk)
        data = MessageInput(data=request.data)
        data.is_valid(raise_exception=True)
        turn = services.message_post(
            conversation=conversation, user=request.user, text=data.validated_data["text"]
        )
        # the turn marks the user message answered in the database, not on this instance
        turn.user_message.refresh_from_db(fields=["status"])
        body = {
            "user_message": MessageSerializer(turn.user_message).data,
            "message": MessageSerializer(turn.message).data,
            "produced_by": turn.produced_by,
        }
        return Response(body, status=status.HTTP_201_CREATED)


class EventStreamRenderer(renderers.BaseRenderer):
    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return _sse("error", data)


def _sse(event: str, data) -> bytes:
    return sse_event(event, data).encode()


def _event_stream(events: Iterator[ChatEvent]) -> Iterator[bytes]:
    for ev in events:
        if ev.kind == "rec" and ev.rec is not None:
            yield _sse("rec", ev.rec.as_dict())
        elif ev.kind in {"intro", "notice"}:
            yield _sse(ev.kind, {"text": ev.text})
        elif ev.kind == "retract":  # dismissed or hidden while the answer was written
            yield _sse("retract", {"item_id": int(ev.text)})
        elif ev.kind == "done" and ev.turn is not None:
            yield _sse("done", MessageSerializer(ev.turn.message).data)


_TEXT_EVENT = {
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
}
# the stream's event names and the schema of each one's data (see _event_stream)
SSE_EVENTS = {
    "intro": _TEXT_EVENT,
    "notice": _TEXT_EVENT,
    "rec": {"$ref": "#/components/schemas/ChatRecommendation"},
    "retract": {
        "type": "object",
        "properties": {"item_id": {"type": "integer"}},
        "required": ["item_id"],
    },
    "done": {"$ref": "#/components/schemas/Message"},
}


class MessageStreamView(MessagePostView):
    """The same as posting a message, answered as server-sent events while it is produced:
    ``intro`` / ``notice`` (``{"text"}``; the intro once checked, whole), ``rec`` (one
    recommendation with its evidence), ``retract`` (``{"item_id"}``: a card already sent that was
    dismissed or hidden meanwhile) and a final ``done`` (the saved assistant message, the list to
    keep). Errors before the stream starts are JSON."""

    renderer_classes = [JSONRenderer, EventStreamRenderer]

    def finalize_response(self, request: Request, response, *args, **kwargs):
        if isinstance(response, Response):  # an error: always the JSON error shape
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = "application/json"
        return super().finalize_response(request, response, *args, **kwargs)

    @extend_schema(
        tags=["chat"],
        request=MessageInput,
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                sse_event_schema(SSE_EVENTS),
                description="Server-sent events, each an `event: <name>` line and one "
                "`data: <JSON>` line; the JSON's schema is the event's `x-data-schema`.",
            )
        },
    )
    def post(self, request: Request, pk: int) -> StreamingHttpResponse:  # type: ignore[override]
        conversation = self.conversation(request, pk)
        data = MessageInput(data=request.data)
        data.is_valid(raise_exception=True)
        events = services.message_post_stream(
            conversation=conversation, user=request.user, text=data.validated_data["text"]
        )
        response = StreamingHttpResponse(_event_stream(events), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
        return response
