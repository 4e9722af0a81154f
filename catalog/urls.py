from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("for-you/", views.for_you, name="for-you"),
    path("welcome/", views.onboarding, name="onboarding"),
    path("items/", views.item_list, name="item-list"),
    path("items/<int:pk>/", views.item_detail, name="item-detail"),
    path("items/<int:pk>/why/", views.item_why, name="item-why"),
    path("items/<int:pk>/interact/", views.item_interact, name="item-interact"),
    path("history/", views.history, name="history"),
    path("history/<int:pk>/edit/", views.history_edit, name="history-edit"),
    path("history/<int:pk>/delete/", views.history_delete, name="history-delete"),
    path("accounts/signup/", views.signup, name="signup"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
