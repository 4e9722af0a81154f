"""What every page view shares about htmx: the error answer, a safe ``next`` and the event names.

An expected failure (``ApplicationError``) reaches a person one way: under htmx as the error
partial swapped into the page's alert region (``#flash``) whatever the request's own target,
without JavaScript as a message on the page it goes back to.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from recsite.exceptions import ApplicationError

# HX-Trigger events: the parts of a page that listen re-fetch themselves when they fire
INTERACTIONS_CHANGED = "interactions-changed"  # the user's history or preferences changed
TRAINING_FINISHED = "training-finished"  # a training run ended (active or failed)


def safe_next(request: HttpRequest, default: str) -> str:
    """The ``next`` the form or link asked for when it stays on this site, else ``default``
    (an open redirect to another host is never followed). Only a path from the site's root
    counts: ``redirect()`` would read a bare word ("abc") as a view name and fail on it."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}
    ):
        return target
    return default


def error_response(
    request: HttpRequest, exc: ApplicationError, fallback: str | None = None
) -> HttpResponse:
    """An expected failure. htmx: the error partial into ``#flash`` with the error's status.
    Otherwise, with ``fallback`` (a URL, made safe by the caller): a message and a redirect
    there; without one (a page that cannot be shown): the error partial alone, with its status."""
    if request.htmx:
        response = render(request, "partials/error.html", {"error": exc}, status=exc.status)
        response["HX-Retarget"] = "#flash"
        response["HX-Reswap"] = "innerHTML"
        return response
    if fallback is None:
        return render(request, "partials/error.html", {"error": exc}, status=exc.status)
    messages.error(request, exc.message)
    return redirect(fallback)


def done_redirect(request: HttpRequest, text: str, default: str) -> HttpResponse:
    """A form posted without JavaScript succeeded: say so, and go back (a safe ``next``)."""
    messages.success(request, text)
    return redirect(safe_next(request, default))


def triggering(response: HttpResponse, event: str) -> HttpResponse:
    """``response`` with ``event`` fired on the page's body once htmx has swapped it."""
    response["HX-Trigger"] = event
    return response
