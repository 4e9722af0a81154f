"""Catalog imports: MovieLens (``movielens``) and a generic items/interactions CSV (``generic``).

Every import follows the same rules (DESIGN.md, reliability):
1. Read and validate *every* file completely before writing anything (``reading``). Each bad row
   is reported with its file and line number (the header is line 1).
2. Write everything in one transaction, under an advisory lock (``writing``): a file set is
   imported whole or not at all, and two imports never interleave.
3. Idempotent: rows are matched on natural keys (item external id, username, (user, item, kind))
   and only rows whose values differ are updated, so a second run reports 0 created, 0 updated.

Callers import from the submodules; this package re-exports nothing.
"""
