"""Browser pages: thin entry points that validate input and call selectors and services.

Every page is a full template (``templates/catalog/<page>.html``); the parts htmx swaps are
partials under ``templates/catalog/partials/`` and the same views return them when the request
comes from htmx. Every link keeps a real ``href`` and every form a real ``action``, so the site
works without JavaScript.
"""

from __future__ import annotations

import hashlib

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from chat import selectors as chat_selectors
from recommender import selectors as rec_selectors
from recommender.embeddings import selectors as emb_selectors
from recommender.types import Filters, Recommendation
from recsite.exceptions import ApplicationError

from . import selectors, services
from .forms import CatalogFilterForm, InteractionForm, OnboardingForm, RatingEditForm, SignupForm
from .models import Interaction

FOR_YOU_SIZE = 24
FOR_YOU_CACHE_SECONDS = 600
CATALOG_PAGE_SIZE = 24
HISTORY_PAGE_SIZE = 50
INTERACTIONS_CHANGED = "interactions-changed"


def _error(request: HttpRequest, exc: ApplicationError, fallback: str) -> HttpResponse:
    """An expected failure: an error partial for htmx (shown in the page's alert region),
    a message and a redirect otherwise."""
    if request.htmx:
        response = render(request, "partials/error.html", {"error": exc}, status=exc.status)
        response["HX-Retarget"] = "#flash"
        response["HX-Reswap"] = "innerHTML"
        return response
    messages.error(request, exc.message)
    return redirect(fallback)


def _next_url(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


# --- accounts --------------------------------------------------------------------------------


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
            return _error(request, exc, reverse("onboarding"))
        messages.success(request, f"Thanks! Your list is built from your {count} favourites.")
        return redirect("home")
    items = rec_selectors.onboarding_items(n=24)
    chosen = {str(v) for v in (form["items"].value() or [])} if form.is_bound else set()
    return render(
        request, "catalog/onboarding.html", {"form": form, "items": items, "chosen": chosen}
    )


# --- home: "For you" -----------------------------------------------------------------------------


def _recommendations_for(user, filters: Filters) -> list[Recommendation]:
    """The user's list, cached until anything it depends on changes: the user's interactions,
    any item (curation included), the active model version or the filters (the genres they
    said "no more" of in chat). The key costs three indexed aggregates; computing the list
    costs far more on a long history."""
    version = rec_selectors.version_active()
    parts = (
        user.pk,
        selectors.user_history_fingerprint(user=user),
        selectors.catalog_fingerprint(),
        version.pk if version else 0,
        version.activated_at.timestamp() if version and version.activated_at else 0,
        filters.exclude_genres,
    )
    key = "for-you:" + hashlib.sha1(repr(parts).encode()).hexdigest()
    recs = cache.get(key)
    if recs is None:
        recs = rec_selectors.recommendations_for_user(
            user=user, n=FOR_YOU_SIZE, version=version, filters=filters
        )
        cache.set(key, recs, FOR_YOU_CACHE_SECONDS)
    return recs


def _for_you_context(request: HttpRequest) -> dict:
    user = request.user
    if user.is_authenticated:
        # the "no more X" said in chat: read once, applied to the list and shown above it
        preferences = list(
            chat_selectors.chat_preference_list(user=user).filter(kind="exclude_genre")
        )
        filters = chat_selectors.filters_with_standing(
            user=user, exclusions=tuple(p.value for p in preferences)
        )
        recs = _recommendations_for(user, filters)
        states = selectors.user_item_states(user=user, item_ids=[r.item.pk for r in recs])
        return {"recs": recs, "states": states, "personal": True, "preferences": preferences}
    recs = rec_selectors.popular_items(n=FOR_YOU_SIZE)
    return {"recs": recs, "states": {}, "personal": False}


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    context = _for_you_context(request)
    user = request.user
    context["needs_onboarding"] = user.is_authenticated and not selectors.user_has_history(
        user=user
    )
    context["version"] = rec_selectors.version_active()
    return render(request, "catalog/home.html", context)


@login_required
@require_GET
def for_you(request: HttpRequest) -> HttpResponse:
    """The "For you" list alone: htmx re-fetches it whenever the user's interactions change."""
    return render(request, "catalog/partials/for_you.html", _for_you_context(request))


# --- catalog -----------------------------------------------------------------------------------


@require_GET
def item_list(request: HttpRequest) -> HttpResponse:
    form = CatalogFilterForm(request.GET or None, genres=selectors.item_genres(cached=True))
    data = form.cleaned_data if form.is_valid() else {}
    items = selectors.catalog_search(
        query=data.get("q", ""),
        genre=data.get("genre", ""),
        year_min=data.get("year_min"),
        year_max=data.get("year_max"),
        sort=data.get("sort", ""),
    )
    if data.get("q") and data.get("sort", "") in ("", "relevance"):  # full text + meaning
        hybrid = emb_selectors.hybrid_catalog_ids(
            query=data["q"],
            genre=data.get("genre", ""),
            year_min=data.get("year_min"),
            year_max=data.get("year_max"),
        )
        if hybrid is not None:
            items = selectors.ItemsInOrder([item_id for item_id, _ in hybrid])
    page = Paginator(items, CATALOG_PAGE_SIZE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "total": page.paginator.count,
        "query_string": params.urlencode(),
        "states": selectors.user_item_states(
            user=request.user, item_ids=[item.pk for item in page]
        ),
        "year_bounds": selectors.item_year_bounds(),
    }
    if request.htmx and not request.htmx.boosted:
        return render(request, "catalog/partials/item_results.html", context)
    return render(request, "catalog/item_list.html", context)


@require_GET
def item_detail(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(selectors.item_list(), pk=pk)
    user = request.user
    context = {
        "item": item,
        "similar": rec_selectors.similar_items(item=item, n=12, user=user),
        "state": selectors.user_item_states(user=user, item_ids=[item.pk])[item.pk],
        # "why" takes the recommender a while on a long history: htmx loads it after the page,
        # into reserved space; without JavaScript, ?why=1 renders it inline
        "why": (
            rec_selectors.recommendation_for_item(user=user, item=item)
            if user.is_authenticated and request.GET.get("why")
            else None
        ),
    }
    return render(request, "catalog/item_detail.html", context)


@login_required
@require_GET
def item_why(request: HttpRequest, pk: int) -> HttpResponse:
    """Why this item would be recommended to this user: the item page's explanation box."""
    item = get_object_or_404(selectors.item_list(), pk=pk)
    why = rec_selectors.recommendation_for_item(user=request.user, item=item)
    return render(request, "catalog/partials/item_why.html", {"item": item, "why": why})


@login_required
@require_POST
def item_interact(request: HttpRequest, pk: int) -> HttpResponse:
    """Rate, like or dismiss an item (or take a like / dismissal back), in place with htmx."""
    item = get_object_or_404(selectors.item_list(), pk=pk)
    fallback = _next_url(request, reverse("item-detail", args=[item.pk]))
    form = InteractionForm(request.POST)
    try:
        if not form.is_valid():
            raise ApplicationError(
                "invalid rating or action", {"errors": form.errors.get_json_data()}
            )
        kind, remove = form.cleaned_data["kind"], form.cleaned_data["remove"]
        if remove:
            existing = selectors.user_interaction(user=request.user, item_id=item.pk, kind=kind)
            if existing is not None:
                services.interaction_delete(user=request.user, interaction_id=existing.pk)
        else:
            services.interaction_record(
                user=request.user, item=item, kind=kind, value=form.cleaned_data.get("value")
            )
    except ApplicationError as exc:
        return _error(request, exc, fallback)
    if not request.htmx:
        return HttpResponseRedirect(fallback)
    state = selectors.user_item_states(user=request.user, item_ids=[item.pk])[item.pk]
    response = render(
        request,
        "catalog/partials/item_actions.html",
        {"item": item, "state": state, "compact": request.POST.get("compact") == "1"},
    )
    response["HX-Trigger"] = INTERACTIONS_CHANGED
    return response


# --- history -----------------------------------------------------------------------------------


@login_required
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", "")
    rows = selectors.user_history_page(user=request.user, kind=kind)
    page = Paginator(rows, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "kind": kind if kind in {"rating", "like", "dismiss"} else "",
        "counts": selectors.user_history_counts(user=request.user),
        "rating_form": RatingEditForm(),
    }
    return render(request, "catalog/history.html", context)


def _own_interaction(request: HttpRequest, pk: int) -> Interaction:
    return get_object_or_404(
        Interaction.objects.select_related("item"), pk=pk, user=request.user, item__is_hidden=False
    )


@login_required
@require_POST
def history_edit(request: HttpRequest, pk: int) -> HttpResponse:
    interaction = _own_interaction(request, pk)
    form = RatingEditForm(request.POST)
    try:
        if interaction.kind != Interaction.Kind.RATING:
            raise ApplicationError("only ratings have a value to edit")
        if not form.is_valid():
            raise ApplicationError("a rating is between 0.5 and 5")
        interaction = services.interaction_record(
            user=request.user,
            item=interaction.item,
            kind=Interaction.Kind.RATING,
            value=form.cleaned_data["value"],
        )
    except ApplicationError as exc:
        return _error(request, exc, reverse("history"))
    if not request.htmx:
        messages.success(
            request, f"Your rating of {interaction.item} is now {interaction.value:g}."
        )
        return redirect(_next_url(request, reverse("history")))
    response = render(
        request, "catalog/partials/history_row.html", {"row": interaction, "saved": True}
    )
    response["HX-Trigger"] = INTERACTIONS_CHANGED
    return response


@login_required
@require_POST
def history_delete(request: HttpRequest, pk: int) -> HttpResponse:
    interaction = _own_interaction(request, pk)
    try:
        services.interaction_delete(user=request.user, interaction_id=interaction.pk)
    except ApplicationError as exc:
        return _error(request, exc, reverse("history"))
    if not request.htmx:
        messages.success(
            request, f"Removed your {interaction.get_kind_display()} of {interaction.item}."
        )
        return redirect(_next_url(request, reverse("history")))
    response = HttpResponse("")  # htmx swaps the row away
    response["HX-Trigger"] = INTERACTIONS_CHANGED
    return response
