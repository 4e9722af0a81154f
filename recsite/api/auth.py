"""Accounts for mobile clients: sign up, obtain / revoke a token, the current user, and ping."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from recsite.usernames import (
    USERNAME_MAX_LENGTH,
    USERNAME_PATTERN,
    username_normalize,
    username_problem,
)

from . import services
from .serializers import StrictInput

User = get_user_model()


class UserSerializer(serializers.ModelSerializer):
    email = serializers.CharField(read_only=True, help_text="May be empty.")

    class Meta:
        model = User
        fields = ("id", "username", "email", "is_staff", "date_joined")
        read_only_fields = fields


class SignupInput(StrictInput, serializers.Serializer):
    username = serializers.RegexField(
        USERNAME_PATTERN,
        max_length=USERNAME_MAX_LENGTH,
        min_length=1,
        help_text="Stored NFKC-normalised; a name that differs from an existing one only by case "
        "or by look-alike letters (Cyrillic, Greek, fullwidth) is refused.",
    )
    password = serializers.CharField(
        max_length=128, min_length=1, write_only=True, trim_whitespace=False
    )
    # the database's column is varchar(254)
    email = serializers.EmailField(required=False, allow_blank=True, default="", max_length=254)

    def validate_username(self, value: str) -> str:
        normalized = username_normalize(value)
        problem = username_problem(normalized)
        if problem:
            raise serializers.ValidationError(problem)
        return normalized


class CredentialsInput(StrictInput, serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)


class TokenOutput(serializers.Serializer):
    token = serializers.CharField()
    user = UserSerializer()


class SignupView(APIView):
    """Create an account and return its API token."""

    permission_classes = [permissions.AllowAny]
    throttle_scope = "auth"

    @extend_schema(request=SignupInput, responses={201: TokenOutput}, tags=["auth"])
    def post(self, request: Request) -> Response:
        data = SignupInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_signup(**data.validated_data)
        token = services.token_for(user=user)
        return Response(
            TokenOutput({"token": token.key, "user": user}).data, status=status.HTTP_201_CREATED
        )


class TokenView(APIView):
    """POST: exchange a username and password for the API token. DELETE: revoke it."""

    throttle_scope = "auth"

    def get_permissions(self):
        if self.request.method == "POST":
            return [permissions.AllowAny()]
        return [permissions.IsAuthenticated()]

    def get_authenticators(self):
        # obtaining a token needs no prior authentication (and no CSRF token)
        if getattr(self, "request", None) is not None and self.request.method == "POST":
            return []
        return super().get_authenticators()

    @extend_schema(request=CredentialsInput, responses={200: TokenOutput}, tags=["auth"])
    def post(self, request: Request) -> Response:
        data = CredentialsInput(data=request.data)
        data.is_valid(raise_exception=True)
        token = services.token_issue(request=request._request, **data.validated_data)
        return Response(TokenOutput({"token": token.key, "user": token.user}).data)

    @extend_schema(request=None, responses={204: None}, tags=["auth"])
    def delete(self, request: Request) -> Response:
        services.token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: UserSerializer}, tags=["auth"])
    def get(self, request: Request) -> Response:
        return Response(UserSerializer(request.user).data)


class PingView(APIView):
    """A trivial endpoint: liveness, and the framework's latency floor in benchmarks."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        responses={200: inline_serializer("Ping", {"status": serializers.CharField()})},
        tags=["meta"],
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})
