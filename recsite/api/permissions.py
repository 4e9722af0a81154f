"""Per-object permissions. Owner-scoped endpoints also filter their querysets by the requesting
user, so a foreign id is simply "not found" (404, no existence leak); these checks are the second
line of defence should a queryset ever be widened."""

from __future__ import annotations

from rest_framework import permissions


class IsOwner(permissions.IsAuthenticated):
    """Authenticated, and the object's ``user`` (or ``owner_field``) is the requesting user."""

    def has_object_permission(self, request, view, obj) -> bool:
        field = getattr(view, "owner_field", "user_id")
        owner = obj
        for part in field.split("__"):
            owner = getattr(owner, part)
        return owner == request.user.pk


class IsStaff(permissions.BasePermission):
    message = "Staff only."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)
