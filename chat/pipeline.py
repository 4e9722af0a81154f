"""Where the browser views (``chat/views.py``) still import :class:`ChatEvent` from; the turn's
types live in ``chat.answer``. Delete this module once the views import from there."""

from .answer import ChatEvent, ChatTurn

__all__ = ["ChatEvent", "ChatTurn"]
