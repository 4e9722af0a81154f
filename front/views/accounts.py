"""Signing up and onboarding (the cold start: a new user picks a few favourites)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from catalog import selectors as catalog_selectors
from catalog import services
from recommender import selectors as rec_selectors
from recsite.exceptions import ApplicationError

from ..forms import OnboardingForm, SignupForm
from ..htmx import error_response

PICKS = 24  # items offered at a time: a varied popular set, or what a search found


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.username}! Pick a few favourites to start.")
        return redirect("onboarding")
    return render(request, "registration/signup.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def onboarding(request: HttpRequest) -> HttpResponse:
    form = OnboardingForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            count = services.favourites_record(user=request.user, items=form.cleaned_data["items"])
        except ApplicationError as exc:
            return error_response(request, exc, reverse("onboarding"))
        messages.success(request, f"Thanks! Your list is built from your {count} favourites.")
        return redirect("home")
    query = request.GET.get("q", "").strip()[:200]
    if form.is_bound:
        chosen_ids = _ids(form["items"].value() or [])
    else:  # a search carries the picks made so far
        chosen_ids = _ids(request.GET.getlist("items"))
    chosen_items = list(catalog_selectors.item_list().filter(pk__in=chosen_ids))
    if query:
        found = list(catalog_selectors.catalog_search(query=query)[:PICKS])
    else:
        found = rec_selectors.onboarding_items(n=PICKS)
    picked = {item.pk for item in chosen_items}
    items = chosen_items + [item for item in found if item.pk not in picked]
    context = {
        "form": form,
        "items": items,
        "chosen": {str(pk) for pk in picked},
        "query": query,
        "found": len(found),
    }
    return render(request, "catalog/onboarding.html", context)


def _ids(values: list) -> list[int]:
    return [int(v) for v in values if str(v).isdigit()][:100]
