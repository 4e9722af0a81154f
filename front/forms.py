"""Forms of the browser pages: sign-up, catalog filters, ratings, onboarding picks."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm

from catalog.models import Item
from recsite.usernames import username_clash_message, username_taken

SORT_CHOICES = [
    ("relevance", "Relevance"),
    ("popular", "Most popular"),
    ("newest", "Newest first"),
    ("oldest", "Oldest first"),
    ("title", "Title A–Z"),
]
RATING_CHOICES = [(f"{v / 2:g}", f"{v / 2:g}") for v in range(1, 11)]


class SignupForm(UserCreationForm):
    """Django's sign-up form, with the API's rule for names: one that differs from an existing
    name only by case or by look-alike letters is refused (``recsite.usernames``)."""

    class Meta(UserCreationForm.Meta):
        fields = ("username",)

    def clean_username(self) -> str | None:
        username = super().clean_username()  # NFKC-normalised by Django's UsernameField
        clash = username_taken(username) if username else None
        if clash:
            raise forms.ValidationError(username_clash_message(clash), code="unique")
        return username


class CatalogFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=200)
    genre = forms.ChoiceField(label="Genre", required=False)
    year_min = forms.IntegerField(label="From year", required=False, min_value=1800, max_value=2200)
    year_max = forms.IntegerField(label="To year", required=False, min_value=1800, max_value=2200)
    sort = forms.ChoiceField(label="Sort by", required=False, choices=SORT_CHOICES)

    def __init__(self, *args, genres: list[str] = (), **kwargs) -> None:  # type: ignore[assignment]
        super().__init__(*args, **kwargs)
        self.fields["genre"].choices = [("", "All genres")] + [(g, g) for g in genres]
        self.fields["q"].widget.attrs.update(
            {"type": "search", "placeholder": "Title, tag or description", "autocomplete": "off"}
        )
        for name in ("year_min", "year_max"):
            self.fields[name].widget.attrs.update({"placeholder": "yyyy", "inputmode": "numeric"})

    def clean(self) -> dict:
        data = super().clean()
        lo, hi = data.get("year_min"), data.get("year_max")
        if lo and hi and lo > hi:
            data["year_min"], data["year_max"] = hi, lo
        return data


class InteractionForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[("rating", "rating"), ("like", "like"), ("dismiss", "dismiss"), ("save", "save")]
    )
    value = forms.FloatField(required=False, min_value=0.5, max_value=5.0)
    # "1" removes the user's signal of this kind instead of recording it (un-like, un-dismiss)
    remove = forms.BooleanField(required=False)


class RatingEditForm(forms.Form):
    value = forms.TypedChoiceField(label="Rating", choices=RATING_CHOICES, coerce=float)


class OnboardingForm(forms.Form):
    items = forms.ModelMultipleChoiceField(
        queryset=Item.objects.filter(is_hidden=False),
        error_messages={"required": "Pick at least one favourite."},
    )
