from django.urls import path

from . import views

urlpatterns = [
    path("", views.chat, name="chat"),
    path("c/<int:pk>/", views.conversation_detail, name="chat-conversation"),
    path("send/", views.send, name="chat-send"),
    path("m/<int:pk>/stream/", views.stream, name="chat-stream"),
    path("item/<int:item_id>/feedback/", views.feedback, name="chat-feedback"),
    path("preference/<int:pk>/delete/", views.preference_delete, name="chat-preference-delete"),
]
