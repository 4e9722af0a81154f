"""The chat pages: the chat, sending a message, the answer as server-sent events, card feedback."""

from __future__ import annotations

from collections.abc import Iterator

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST

from catalog import selectors as catalog_selectors
from chat import selectors, services
from chat.answer import ChatEvent
from chat.models import Message
from chat.streaming import sse_event
from recsite.exceptions import ApplicationError

from ..forms import InteractionForm
from ..htmx import error_response, safe_next
from .catalog import interaction_answer, interaction_apply


def _page(request: HttpRequest, conversation=None) -> HttpResponse:  # noqa: ANN001
    messages = list(selectors.message_list(conversation=conversation)) if conversation else []
    return render(
        request,
        "chat/chat.html",
        {
            "conversation": conversation,
            "conversations": selectors.conversation_list(user=request.user)[:30],
            "thread": messages,
            "mode": selectors.chat_mode(),
        },
    )


@login_required
def chat(request: HttpRequest) -> HttpResponse:
    return _page(request)


@login_required
def conversation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        conversation = selectors.conversation_get(user=request.user, conversation_id=pk)
    except ApplicationError as exc:
        return error_response(request, exc)
    return _page(request, conversation)


@login_required
@require_POST
def send(request: HttpRequest) -> HttpResponse:
    try:
        conversation_id = request.POST.get("conversation")
        if conversation_id:
            conversation = selectors.conversation_get(
                user=request.user, conversation_id=int(conversation_id)
            )
        else:
            conversation = services.conversation_create(user=request.user)
        message = services.message_create(
            conversation=conversation, user=request.user, text=request.POST.get("text", "")
        )
    except (ApplicationError, ValueError) as exc:
        if isinstance(exc, ValueError):
            exc = ApplicationError("bad conversation id")
        return error_response(request, exc, reverse("chat"))
    if not request.htmx:  # no JavaScript: answer now, then show the conversation
        for _event in services.message_answer_stream(message=message, user=request.user):
            pass
        return redirect("chat-conversation", pk=conversation.pk)
    return render(
        request,
        "chat/partials/exchange.html",
        {
            "conversation": conversation,
            "user_message": message,
            "new_conversation": not conversation_id,
            "conversations": selectors.conversation_list(user=request.user)[:30],
        },
    )


def _card(request: HttpRequest, data: dict) -> str:
    return render_to_string("chat/partials/card.html", {"r": data}, request=request)


def _events(request: HttpRequest, message: Message) -> Iterator[str]:
    yield ": " + " " * 2048 + "\n\n"  # defeat proxy buffering; EventSource ignores comments
    yield "retry: 3000\n\n"
    try:
        events: Iterator[ChatEvent] = services.message_answer_stream(
            message=message, user=request.user
        )
    except ApplicationError:  # answered already (a reconnect, a second tab): send the saved answer
        message.refresh_from_db()
        reply = getattr(message, "reply", None)
        if reply is not None:
            html = render_to_string("chat/partials/assistant.html", {"m": reply}, request=request)
            yield sse_event("done", {"html": html})
        else:
            yield sse_event("wait", {})
        return
    labels: dict[int, str] = {}
    for event in events:
        if event.kind == "intro":
            yield sse_event("intro", {"text": event.text})
        elif event.kind == "notice":
            yield sse_event("notice", {"text": event.text})
        elif event.kind == "retract":  # the final "done" shows the list without it
            yield sse_event("retract", {"item_id": int(event.text)})
        elif event.kind == "rec" and event.rec is not None:
            yield sse_event(
                "card",
                {
                    "html": _card(
                        request, {**event.rec.as_dict(), "label": labels.get(event.rec.item.pk, "")}
                    )
                },
            )
        elif event.kind == "done" and event.turn is not None:
            html = render_to_string(
                "chat/partials/assistant.html",
                {"m": event.turn.message},
                request=request,
            )
            yield sse_event("done", {"html": html})


@login_required
def stream(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        message = selectors.message_get(user=request.user, message_id=pk)
    except ApplicationError as exc:
        return error_response(request, exc)
    response = StreamingHttpResponse(_events(request, message), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


@login_required
@require_POST
def feedback(request: HttpRequest, item_id: int) -> HttpResponse:
    """Rate, like, save or dismiss a chat card's item (or take it back): the same controls as
    every other card, recorded with source "chat"."""
    fallback = safe_next(request, reverse("chat"))
    form = InteractionForm(request.POST)
    item = catalog_selectors.item_list().filter(pk=item_id).first()
    try:
        if item is None:
            raise ApplicationError("this item is not available", status=404)
        kind = interaction_apply(
            request,
            item,
            form,
            record=lambda kind, value: services.chat_feedback_record(
                user=request.user, item_id=item.pk, kind=kind, value=value
            ),
        )
    except ApplicationError as exc:
        return error_response(request, exc, fallback)
    if not request.htmx:
        return redirect(fallback)
    return interaction_answer(request, item, kind, reverse("chat-feedback", args=[item.pk]))
