"""Every browser page. Paths and names are the ones templates and bookmarks use."""

from django.contrib.auth import views as auth_views
from django.urls import path

from .views import accounts, catalog, chat, history, staff

urlpatterns = [
    # accounts and onboarding
    path("accounts/signup/", accounts.signup, name="signup"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("welcome/", accounts.onboarding, name="onboarding"),
    # "For you" and the catalog
    path("", catalog.home, name="home"),
    path("for-you/", catalog.for_you, name="for-you"),
    path("items/", catalog.item_list, name="item-list"),
    path("items/<int:pk>/", catalog.item_detail, name="item-detail"),
    path("items/<int:pk>/why/", catalog.item_why, name="item-why"),
    path("items/<int:pk>/interact/", catalog.item_interact, name="item-interact"),
    # history
    path("history/", history.history, name="history"),
    path("history/<int:pk>/edit/", history.history_edit, name="history-edit"),
    path("history/<int:pk>/delete/", history.history_delete, name="history-delete"),
    # chat
    path("chat/", chat.chat, name="chat"),
    path("chat/c/<int:pk>/", chat.conversation_detail, name="chat-conversation"),
    path("chat/send/", chat.send, name="chat-send"),
    path("chat/m/<int:pk>/stream/", chat.stream, name="chat-stream"),
    path("chat/item/<int:item_id>/feedback/", chat.feedback, name="chat-feedback"),
    path(
        "chat/preference/<int:pk>/delete/",
        catalog.preference_delete,
        name="chat-preference-delete",
    ),
    # staff dashboard
    path("staff/", staff.dashboard, name="dashboard"),
    path("staff/versions/", staff.dashboard_versions, name="dashboard-versions"),
    path("staff/train/", staff.training_create, name="training-create"),
    path("staff/train/<int:pk>/", staff.training_progress, name="training-progress"),
]
