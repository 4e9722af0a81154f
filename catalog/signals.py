"""Signals the catalog sends; other apps (the recommender) listen. The catalog knows none of them."""

from django.dispatch import Signal

# sent after commit with user_id=...: a user's interactions changed (refresh their vector/cache)
interactions_changed = Signal()
# sent after commit with item_ids=[...]: curation flags changed
items_curated = Signal()
# sent after commit with item_ids=[...] (None: any item may have changed, e.g. after an import):
# items were added or their text (title, year, genres, tags, description, metadata) edited
items_changed = Signal()
