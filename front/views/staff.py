"""The staff dashboard (beside the Django admin): model versions and their metrics, a plot of the
quality metrics across versions, "train now" with a live progress bar, the curation state.

The progress bar polls the ModelVersion row (``training_progress``), never Celery's result
backend, so it works the same with a Redis worker and without one: then the run trains in a
thread of the site (``recommender.runner``) and the POST answers at once with the bar.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from catalog import selectors as catalog_selectors
from recommender import selectors, services
from recommender.models import ModelVersion
from recsite.exceptions import ApplicationError

from ..htmx import TRAINING_FINISHED, done_redirect, error_response, triggering

PLOT_METRICS = ("recall@20", "ndcg@10")
PLOT_COLOURS = {"recall@20": "#3b5bdb", "ndcg@10": "#e8590c"}


@dataclass
class Plot:
    width: int
    height: int
    series: list[dict]
    x_labels: list[dict]
    y_ticks: list[dict]
    empty: bool


def metrics_plot(versions: list[ModelVersion], *, width: int = 640, height: int = 240) -> Plot:
    """Server-side SVG coordinates of recall@20 and ndcg@10 across versions, oldest first."""
    rated = [v for v in reversed(versions) if any(m in (v.metrics or {}) for m in PLOT_METRICS)]
    left, right, top, bottom = 48, 16, 16, 36
    inner_w, inner_h = width - left - right, height - top - bottom
    values = [float(v.metrics[m]) for v in rated for m in PLOT_METRICS if m in v.metrics]
    y_max = max(values + [0.05]) * 1.15
    n = len(rated)

    def x(i: int) -> float:
        return left + (inner_w / 2 if n == 1 else inner_w * i / (n - 1))

    def y(value: float) -> float:
        return top + inner_h * (1 - value / y_max)

    series = []
    for metric in PLOT_METRICS:
        points = [
            {
                "x": round(x(i), 1),
                "y": round(y(float(v.metrics[metric])), 1),
                "value": v.metrics[metric],
                "label": f"v{v.pk}",
            }
            for i, v in enumerate(rated)
            if metric in v.metrics
        ]
        series.append(
            {
                "name": metric,
                "colour": PLOT_COLOURS[metric],
                "points": points,
                "path": " ".join(f"{p['x']},{p['y']}" for p in points),
            }
        )
    ticks = [{"y": round(y(y_max * k / 4), 1), "label": f"{y_max * k / 4:.2f}"} for k in range(5)]
    labels = [{"x": round(x(i), 1), "label": f"v{v.pk}"} for i, v in enumerate(rated)]
    return Plot(width, height, series, labels, ticks, empty=not rated)


def _versions_context() -> dict:
    versions = list(selectors.version_list()[:30])
    return {
        "versions": versions,
        "plot": metrics_plot(versions),
        "active": next((v for v in versions if v.status == ModelVersion.Status.ACTIVE), None),
    }


@staff_member_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    context = _versions_context()
    context["running"] = next((v for v in context["versions"] if v.is_running), None)
    context["curation"] = catalog_selectors.curation_state()
    return render(request, "recommender/dashboard.html", context)


@staff_member_required
@require_GET
def dashboard_versions(request: HttpRequest) -> HttpResponse:
    """The versions table and the metrics plot (re-fetched when a training run finishes)."""
    return render(request, "recommender/partials/versions.html", _versions_context())


@staff_member_required
@require_POST
def training_create(request: HttpRequest) -> HttpResponse:
    """ "Train now": start a run (or return the one already running) and answer with its
    progress bar, which polls until the run is active or failed."""
    try:
        version = services.training_request(requested_by=request.user)
    except ApplicationError as exc:
        return error_response(request, exc, reverse("dashboard"))
    if not request.htmx:
        return done_redirect(request, f"Training run v{version.pk} started.", reverse("dashboard"))
    return _progress_response(request, version)


@staff_member_required
@require_GET
def training_progress(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion.objects.defer("artifact"), pk=pk)
    return _progress_response(request, version)


def _progress_response(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    response = render(request, "recommender/partials/progress.html", {"version": version})
    still_going = version.is_running or version.is_measuring
    return response if still_going else triggering(response, TRAINING_FINISHED)
