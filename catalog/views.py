from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render

from . import selectors


def home(request):
    return item_list(request)


def item_list(request):
    items = selectors.item_list().order_by("-year", "title")
    page = Paginator(items, 48).get_page(request.GET.get("page"))
    return render(request, "catalog/item_list.html", {"page": page, "total": page.paginator.count})


def item_detail(request, pk: int):
    item = get_object_or_404(selectors.item_list(), pk=pk)
    return render(request, "catalog/item_detail.html", {"item": item})
