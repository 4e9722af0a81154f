from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("versions/", views.dashboard_versions, name="dashboard-versions"),
    path("train/", views.training_create, name="training-create"),
    path("train/<int:pk>/", views.training_progress, name="training-progress"),
]
