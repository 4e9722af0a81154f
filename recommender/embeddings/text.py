"""The text an item is embedded from, built once, in SQL.

Title (year), genres, tags, description and, when an LLM wrote one, the item's profile
(``Item.metadata["llm_profile"]``, editable by staff). The same expression produces the text
to embed (read by the refresh) and the md5 that serving compares with the stored
``ItemEmbedding.text_hash``: Python and SQL can never disagree on what is stale.
"""

from __future__ import annotations

PROFILE_KEY = "llm_profile"
MAX_TAGS = 20

# ``i`` is catalog_item. concat_ws skips NULL parts; nullif drops empty ones.
ITEM_TEXT_SQL = (
    "concat_ws(E'\\n',"
    " i.title || coalesce(' (' || i.year::text || ')', ''),"
    " 'Genres: ' || nullif(array_to_string(i.genres, ', '), ''),"
    f" 'Tags: ' || nullif(array_to_string(i.tags[1:{MAX_TAGS}], ', '), ''),"
    " nullif(btrim(i.description), ''),"
    f" nullif(btrim(i.metadata->>'{PROFILE_KEY}'), ''))"
)
ITEM_HASH_SQL = f"md5({ITEM_TEXT_SQL})"
