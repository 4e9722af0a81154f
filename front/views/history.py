"""The user's history page: ratings, likes and dismissals, edited and deleted in place."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from catalog import selectors, services
from catalog.models import Interaction
from recsite.exceptions import ApplicationError

from ..forms import RatingEditForm
from ..htmx import INTERACTIONS_CHANGED, done_redirect, error_response, triggering

HISTORY_PAGE_SIZE = 50


@login_required
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", "")
    rows = selectors.user_history_page(user=request.user, kind=kind)
    page = Paginator(rows, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "kind": kind if kind in {"rating", "like", "dismiss", "save"} else "",
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
        return error_response(request, exc, reverse("history"))
    if not request.htmx:
        text = f"Your rating of {interaction.item} is now {interaction.value:g}."
        return done_redirect(request, text, reverse("history"))
    response = render(
        request, "catalog/partials/history_row.html", {"row": interaction, "saved": True}
    )
    return triggering(response, INTERACTIONS_CHANGED)


@login_required
@require_POST
def history_delete(request: HttpRequest, pk: int) -> HttpResponse:
    interaction = _own_interaction(request, pk)
    try:
        services.interaction_delete(user=request.user, interaction_id=interaction.pk)
    except ApplicationError as exc:
        return error_response(request, exc, reverse("history"))
    if not request.htmx:
        text = f"Removed your {interaction.get_kind_display()} of {interaction.item}."
        return done_redirect(request, text, reverse("history"))
    return triggering(HttpResponse(""), INTERACTIONS_CHANGED)  # htmx swaps the row away
