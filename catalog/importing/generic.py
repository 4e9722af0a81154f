"""The generic importer: any catalog as an items CSV and an interactions CSV."""

from __future__ import annotations

from pathlib import Path

from catalog.models import Interaction, Item
from catalog.services import items_changed_announce
from recsite.exceptions import ApplicationError

from .reading import ErrorLog, parse_float, parse_int, read_csv, row_timestamp, split_list
from .reports import ImportReport, Progress
from .writing import ensure_users, json_text, locked_transaction, upsert_interactions, upsert_items

ITEMS_REQUIRED = ["external_id", "title"]
ITEMS_OPTIONAL = ["year", "description", "genres", "tags", "url"]
INTERACTIONS_REQUIRED = ["user", "item", "kind"]
INTERACTIONS_OPTIONAL = ["value", "timestamp"]


def catalog_csv_import(
    *,
    items_path: Path | None = None,
    interactions_path: Path | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import any catalog from two CSV files (UTF-8, header row, LF or CRLF):

    items.csv: ``external_id,title`` required; ``year,description,genres,tags,url`` optional
    (genres and tags separated by ``|``); any other column is kept in the item's metadata.

    interactions.csv: ``user,item,kind`` required, ``value,timestamp`` optional. ``user`` is a
    username (created, with an unusable password, if new), ``item`` an external_id from items.csv
    or the catalog, ``kind`` one of rating / like / dismiss / view, ``value`` the rating (0.5-5,
    required for ratings), ``timestamp`` unix seconds or ISO 8601 (default: import time).
    """
    say = progress or (lambda _msg: None)
    if items_path is None and interactions_path is None:
        raise ApplicationError("give an items file, an interactions file, or both")
    errors = ErrorLog()
    items: dict[str, tuple] = {}
    if items_path is not None:
        items_path = Path(items_path)
        fname = items_path.name
        for line, row in read_csv(items_path, ITEMS_REQUIRED, errors):
            external_id = row["external_id"].strip()
            title = row["title"].strip()
            if not external_id or len(external_id) > 64:
                errors.add(fname, line, "external_id must be 1-64 characters")
                continue
            if not title:
                errors.add(fname, line, "title is empty")
                continue
            if external_id in items:
                errors.add(fname, line, f"duplicate external_id {external_id!r}")
                continue
            year = None
            if row.get("year", "").strip():
                try:
                    year = parse_int(row["year"], "year")
                    if not 1800 <= year <= 2200:
                        raise ValueError(f"year must be between 1800 and 2200, got {year}")
                except ValueError as exc:
                    errors.add(fname, line, str(exc))
                    continue
            links = {"url": row["url"].strip()} if row.get("url", "").strip() else {}
            extra = {
                k: v
                for k, v in row.items()
                if k not in ITEMS_REQUIRED + ITEMS_OPTIONAL and k and v.strip()
            }
            items[external_id] = (
                external_id,
                title[:500],
                year,
                split_list(row.get("genres", "")),
                json_text(links),
                row.get("description", "").strip(),
                split_list(row.get("tags", "")),
                json_text(extra),
            )
        say(f"{fname}: {len(items):,} items read")

    interactions: dict[tuple[str, str, str], tuple] = {}
    if interactions_path is not None:
        interactions_path = Path(interactions_path)
        fname = interactions_path.name
        known = set(items) | set(Item.objects.values_list("external_id", flat=True))
        kinds = set(Interaction.Kind.values)
        for line, row in read_csv(interactions_path, INTERACTIONS_REQUIRED, errors):
            user = row["user"].strip()
            item = row["item"].strip()
            kind = row["kind"].strip().lower()
            if not user or len(user) > 150:
                errors.add(fname, line, "user must be 1-150 characters")
                continue
            if kind not in kinds:
                errors.add(
                    fname, line, f"kind must be one of {', '.join(sorted(kinds))}, got {kind!r}"
                )
                continue
            if item not in known:
                errors.add(fname, line, f"unknown item {item!r} (not in items.csv nor the catalog)")
                continue
            value = None
            try:
                if row.get("value", "").strip():
                    value = parse_float(row["value"], "value")
                if kind == "rating":
                    if value is None:
                        raise ValueError("a rating needs a value")
                    if not 0.5 <= value <= 5.0:
                        raise ValueError(f"rating must be between 0.5 and 5, got {value:g}")
                ts = row_timestamp(row)
            except ValueError as exc:
                errors.add(fname, line, str(exc))
                continue
            interactions[(user, item, kind)] = (user, item, kind, value, ts)
        say(f"{fname}: {len(interactions):,} interactions read")

    errors.raise_if_any()
    report = ImportReport()
    with locked_transaction() as cursor:
        if items:
            say("writing items ...")
            report.tables["items"] = upsert_items(
                cursor, list(items.values()), update_description=True
            )
            if report.tables["items"].created or report.tables["items"].updated:
                items_changed_announce(item_ids=None)
        if interactions:
            say("writing users ...")
            report.tables["users"] = ensure_users(cursor, {k[0] for k in interactions})
            say("writing interactions ...")
            report.tables["interactions"] = upsert_interactions(
                cursor, list(interactions.values()), Interaction.Source.IMPORT
            )
    return report
