from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html

from recsite.exceptions import ApplicationError

from . import services, versions
from .models import ModelVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "algorithm",
        "status",
        "progress_bar",
        "recall",
        "ndcg",
        "n_interactions",
        "train_seconds",
        "created_at",
        "activated_at",
    ]
    list_filter = ["status", "algorithm", "trigger"]
    actions = ["train_now", "activate"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields if f.name != "artifact"]
    exclude = ["artifact"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="progress")
    def progress_bar(self, obj: ModelVersion):
        pct = round(obj.progress * 100)
        return format_html(
            '<progress max="100" value="{}" aria-label="training progress">{}%</progress> {}',
            pct,
            pct,
            obj.progress_message,
        )

    @admin.display(description="Recall@20")
    def recall(self, obj: ModelVersion):
        value = obj.metrics.get("recall@20")
        return f"{value:.3f}" if value is not None else "-"

    @admin.display(description="NDCG@10")
    def ndcg(self, obj: ModelVersion):
        value = obj.metrics.get("ndcg@10")
        return f"{value:.3f}" if value is not None else "-"

    @admin.display(description="train s")
    def train_seconds(self, obj: ModelVersion):
        value = obj.timings.get("total")
        return f"{value:.1f}" if value is not None else "-"

    @admin.action(description="Train now (a new version with the default model)")
    def train_now(self, request, queryset):
        try:
            version = services.training_request(requested_by=request.user)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(
            request, f"Training run v{version.pk} is {version.status}.", messages.SUCCESS
        )

    @admin.action(description="Activate the selected version (roll back / forward)")
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version.", messages.ERROR)
            return
        try:
            version = versions.version_activate(version_id=queryset.get().pk)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(request, f"v{version.pk} is now active.", messages.SUCCESS)

    def changelist_view(self, request, extra_context=None):
        # "train now" must work with nothing selected
        if request.method == "POST" and request.POST.get("action") == "train_now":
            post = request.POST.copy()
            if not post.getlist("_selected_action"):
                self.train_now(request, ModelVersion.objects.none())
                from django.shortcuts import redirect

                return redirect(request.get_full_path())
        return super().changelist_view(request, extra_context)
