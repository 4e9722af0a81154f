from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html

from recsite.exceptions import ApplicationError

from . import selectors, services
from .models import Interaction, Item, Tagging


class GenreFilter(admin.SimpleListFilter):
    title = "genre"
    parameter_name = "genre"

    def lookups(self, request, model_admin):
        return [(g, g) for g in selectors.item_genres()]

    def queryset(self, request, queryset):
        return queryset.filter(genres__contains=[self.value()]) if self.value() else queryset


class DecadeFilter(admin.SimpleListFilter):
    title = "year"
    parameter_name = "decade"

    def lookups(self, request, model_admin):
        years = Item.objects.exclude(year=None).values_list("year", flat=True).distinct()
        decades = sorted({y // 10 * 10 for y in years}, reverse=True)
        return [("none", "unknown")] + [(str(d), f"{d}s") for d in decades]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "none":
            return queryset.filter(year=None)
        if value and value.isdigit():
            start = int(value)
            return queryset.filter(year__gte=start, year__lt=start + 10)
        return queryset


def _curate(modeladmin, request, queryset, verb: str, **changes) -> None:
    try:
        count = services.items_curate(items=queryset, **changes)
    except ApplicationError as exc:
        modeladmin.message_user(request, exc.message, messages.ERROR)
        return
    modeladmin.message_user(request, f"{verb} {count} item(s).", messages.SUCCESS)


@admin.action(description="Hide selected items (never listed nor recommended)")
def hide(modeladmin, request, queryset):
    _curate(modeladmin, request, queryset, "Hid", is_hidden=True)


@admin.action(description="Unhide selected items")
def unhide(modeladmin, request, queryset):
    _curate(modeladmin, request, queryset, "Unhid", is_hidden=False)


@admin.action(description="Feature selected items")
def feature(modeladmin, request, queryset):
    _curate(modeladmin, request, queryset, "Featured", is_featured=True)


@admin.action(description="Unfeature selected items")
def unfeature(modeladmin, request, queryset):
    _curate(modeladmin, request, queryset, "Unfeatured", is_featured=False)


@admin.action(description="Boost selected items (+1.0 to their ranking score)")
def boost(modeladmin, request, queryset):
    _curate(modeladmin, request, queryset, "Boosted", boost=1.0)


@admin.action(description="Remove boost from selected items")
def unboost(modeladmin, request, queryset):
    _curate(modeladmin, request, queryset, "Removed the boost of", boost=0.0)


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = [
        "title",
        "year",
        "genre_list",
        "interaction_count",
        "is_hidden",
        "is_featured",
        "is_pinned",
        "boost",
    ]
    list_display_links = ["title"]
    list_editable = ["is_hidden", "is_featured", "is_pinned", "boost"]
    list_filter = [GenreFilter, DecadeFilter, "is_hidden", "is_featured", "is_pinned"]
    search_fields = ["title", "external_id", "=year"]
    actions = [hide, unhide, feature, unfeature, boost, unboost]
    readonly_fields = ["created_at", "updated_at", "interaction_link"]
    list_per_page = 50
    fieldsets = [
        (None, {"fields": ["external_id", "title", "year", "description", "genres", "tags"]}),
        ("Curation", {"fields": ["is_hidden", "is_featured", "is_pinned", "boost"]}),
        ("More", {"fields": ["links", "metadata", "interaction_link", "created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_interactions=Count("interactions"))

    @admin.display(description="genres")
    def genre_list(self, obj: Item) -> str:
        return ", ".join(obj.genres)

    @admin.display(description="interactions", ordering="_interactions")
    def interaction_count(self, obj: Item):
        url = reverse("admin:catalog_interaction_changelist") + f"?item__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, obj._interactions)

    @admin.display(description="interactions")
    def interaction_link(self, obj: Item):
        if obj.pk is None:
            return "-"
        url = reverse("admin:catalog_interaction_changelist") + f"?item__id__exact={obj.pk}"
        return format_html('<a href="{}">{} interactions</a>', url, obj.interactions.count())

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        curated = {"is_hidden", "is_featured", "is_pinned", "boost"} & set(form.changed_data)
        if change and curated:
            services.item_curation_saved(item_id=obj.pk)
        if not change or services.ITEM_TEXT_FIELDS & set(form.changed_data):
            services.items_changed_announce(item_ids=[obj.pk])


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = ["timestamp", "user_link", "item_link", "kind", "value", "source"]
    list_filter = ["kind", "source"]
    search_fields = ["user__username", "item__title", "item__external_id"]
    list_select_related = ["user", "item"]
    raw_id_fields = ["user", "item"]
    date_hierarchy = "timestamp"
    list_per_page = 100
    show_full_result_count = False

    @admin.display(description="user", ordering="user__username")
    def user_link(self, obj: Interaction):
        url = reverse("admin:catalog_interaction_changelist") + f"?user__id__exact={obj.user_id}"
        return format_html('<a href="{}">{}</a>', url, obj.user.username)

    @admin.display(description="item", ordering="item__title")
    def item_link(self, obj: Interaction):
        url = reverse("admin:catalog_interaction_changelist") + f"?item__id__exact={obj.item_id}"
        return format_html('<a href="{}">{}</a>', url, obj.item)


@admin.register(Tagging)
class TaggingAdmin(admin.ModelAdmin):
    list_display = ["tag", "item", "user", "timestamp"]
    search_fields = ["tag", "item__title"]
    list_select_related = ["user", "item"]
    raw_id_fields = ["user", "item"]
