"""The home page ("For you"), the catalog and its items, and the standing preferences shown
above the list.

Every page is a full template (``templates/catalog/<page>.html``); the parts htmx swaps are
partials under ``templates/catalog/partials/`` and the same views return them when the request
comes from htmx. Every link keeps a real ``href`` and every form a real ``action``, so the site
works without JavaScript.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from catalog import selectors, services
from catalog.query_words import query_words
from recommender import selectors as rec_selectors
from recommender.embeddings import selectors as emb_selectors
from recommender.lists import user_list
from recsite.exceptions import ApplicationError

from ..forms import CatalogFilterForm, InteractionForm
from ..htmx import INTERACTIONS_CHANGED, error_response, safe_next, triggering

FOR_YOU_SIZE = 24
CATALOG_PAGE_SIZE = 24
HYBRID_WORD_MATCHES = 500  # items matching the query's words, shown before related ones


# --- home: "For you" -----------------------------------------------------------------------------


def _for_you_context(request: HttpRequest) -> dict:
    user = request.user
    if user.is_authenticated:
        found = user_list(user=user, n=FOR_YOU_SIZE)
        recs = found.recommendations
        states = selectors.user_item_states(user=user, item_ids=[r.item.pk for r in recs])
        return {
            "recs": recs,
            "states": states,
            "personal": True,
            "preferences": found.preferences,
        }
    recs = rec_selectors.popular_items(n=FOR_YOU_SIZE)
    return {"recs": recs, "states": {}, "personal": False}


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    context = _for_you_context(request)
    user = request.user
    context["needs_onboarding"] = user.is_authenticated and not selectors.user_has_history(
        user=user
    )
    return render(request, "catalog/home.html", context)


@login_required
@require_GET
def for_you(request: HttpRequest) -> HttpResponse:
    """The "For you" list alone: htmx re-fetches it whenever the user's interactions change."""
    return render(request, "catalog/partials/for_you.html", _for_you_context(request))


@login_required
@require_POST
def preference_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Forget a standing "no more X" (the "For you" list shows them with this button)."""
    try:
        services.preference_delete(user=request.user, preference_id=pk)
    except ApplicationError as exc:
        return error_response(request, exc, safe_next(request, reverse("home")))
    if request.htmx:  # the list refetches itself on this event
        return triggering(HttpResponse(""), INTERACTIONS_CHANGED)
    return redirect(safe_next(request, reverse("home")))


# --- catalog -----------------------------------------------------------------------------------


@require_GET
def item_list(request: HttpRequest) -> HttpResponse:
    form = CatalogFilterForm(request.GET or None, genres=selectors.item_genres(cached=True))
    # a filter that does not validate (a hand-edited "?year_min=abc") is named on the page and
    # left out; the others still apply rather than the whole search being dropped
    form.is_valid()  # cleaned_data: every field that validates, also when another does not
    data = form.cleaned_data if form.is_bound else {}
    items = selectors.catalog_search(
        query=data.get("q", ""),
        genre=data.get("genre", ""),
        year_min=data.get("year_min"),
        year_max=data.get("year_max"),
        sort=data.get("sort", ""),
    )
    matches = None  # with a query: how many items match its words (the rest are related)
    if data.get("q") and data.get("sort", "") in ("", "relevance"):  # words first, then meaning
        words = query_words(data["q"])
        year_min = data.get("year_min") if data.get("year_min") is not None else words.year_min
        year_max = data.get("year_max") if data.get("year_max") is not None else words.year_max
        hybrid = emb_selectors.hybrid_catalog_ids(
            query=words.text or data["q"],
            genre=data.get("genre", ""),
            year_min=year_min,
            year_max=year_max,
        )
        if hybrid is not None:
            lexical = list(items.values_list("id", flat=True)[:HYBRID_WORD_MATCHES])
            matches = len(lexical)
            seen = set(lexical)
            items = selectors.ItemsInOrder(
                lexical + [item_id for item_id, _ in hybrid if item_id not in seen]
            )
    page = Paginator(items, CATALOG_PAGE_SIZE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "total": page.paginator.count,
        "matches": page.paginator.count if matches is None else matches,
        "related": 0 if matches is None else page.paginator.count - matches,
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
    similar = rec_selectors.similar_items(item=item, n=12, user=user)
    states = selectors.user_item_states(
        user=user, item_ids=[item.pk] + [rec.item.pk for rec in similar]
    )
    state = states[item.pk]
    context = {
        "item": item,
        "similar": similar,
        "similar_states": states,
        "state": state,
        # "why" takes the recommender a while on a long history: htmx loads it after the page,
        # into reserved space; without JavaScript, ?why=1 renders it inline. An item the user
        # already enjoyed or dismissed needs no "why": the page says what the user said.
        "why": (
            rec_selectors.recommendation_for_item(user=user, item=item)
            if user.is_authenticated
            and request.GET.get("why")
            and not (state.enjoyed or state.dismissed)
            else None
        ),
    }
    return render(request, "catalog/item_detail.html", context)


@login_required
@require_GET
def item_why(request: HttpRequest, pk: int) -> HttpResponse:
    """Why this item would be recommended to this user (or what the user said of it): the item
    page's explanation box."""
    item = get_object_or_404(selectors.item_list(), pk=pk)
    state = selectors.user_item_states(user=request.user, item_ids=[item.pk])[item.pk]
    why = (
        None
        if state.enjoyed or state.dismissed
        else rec_selectors.recommendation_for_item(user=request.user, item=item)
    )
    context = {"item": item, "why": why, "state": state}
    return render(request, "catalog/partials/item_why.html", context)


@login_required
@require_POST
def item_interact(request: HttpRequest, pk: int) -> HttpResponse:
    """Rate, like or dismiss an item (or take a like / dismissal back), in place with htmx."""
    item = get_object_or_404(selectors.item_list(), pk=pk)
    fallback = safe_next(request, reverse("item-detail", args=[item.pk]))
    form = InteractionForm(request.POST)
    try:
        kind = interaction_apply(
            request,
            item,
            form,
            record=lambda kind, value: services.interaction_record(
                user=request.user, item=item, kind=kind, value=value
            ),
        )
    except ApplicationError as exc:
        return error_response(request, exc, fallback)
    if not request.htmx:
        return HttpResponseRedirect(fallback)
    return interaction_answer(request, item, kind)


def interaction_apply(
    request: HttpRequest,
    item,
    form: InteractionForm,
    *,
    record: Callable[[str, float | None], object],
) -> str:  # noqa: ANN001
    """Apply a posted rate / like / save / dismiss (``record(kind, value)``), or take the user's
    signal of that kind back (``remove``); returns the kind. Raises ``ApplicationError``."""
    if not form.is_valid():
        raise ApplicationError("invalid rating or action", {"errors": form.errors.get_json_data()})
    kind, remove = form.cleaned_data["kind"], form.cleaned_data["remove"]
    if remove:
        existing = selectors.user_interaction(user=request.user, item_id=item.pk, kind=kind)
        if existing is not None:
            services.interaction_delete(user=request.user, interaction_id=existing.pk)
    elif kind == "save":  # the watch-list: the same on every channel
        services.interaction_record(user=request.user, item=item, kind=kind)
    else:
        record(kind, form.cleaned_data.get("value"))
    return kind


def interaction_answer(
    request: HttpRequest, item, kind: str, interact_url: str = ""
) -> HttpResponse:  # noqa: ANN001
    """The item's controls after a change, and the event that makes lists follow. A dismissal
    on a card keeps the card where it is, dimmed, with its undo, until the page is left: a list
    refreshed at once would take the undo away with the card."""
    state = selectors.user_item_states(user=request.user, item_ids=[item.pk])[item.pk]
    compact = request.POST.get("compact") == "1"
    context = {"item": item, "state": state, "compact": compact, "interact_url": interact_url}
    response = render(request, "catalog/partials/item_actions.html", context)
    if compact and kind == "dismiss":
        return response
    return triggering(response, INTERACTIONS_CHANGED)
