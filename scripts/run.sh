#!/usr/bin/env bash
# Run the site with its embedded defaults: embedded PostgreSQL + pgvector under var/, Celery tasks
# in-process unless REDIS_URL is set, the built-in explainer unless an LLM endpoint is configured.
set -euo pipefail
VENV="${1:-.venv}"
PY="$VENV/bin/python"
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-recsite.settings.base}"
"$PY" manage.py migrate --noinput
if [ -n "${DATA:-}" ] && [ -f "$DATA/movies.csv" ]; then
  "$PY" manage.py import_movielens "$DATA"
elif [ -n "${DATA:-}" ]; then
  echo "DATA=$DATA has no movies.csv: starting with the catalog as it is." >&2
fi
"$PY" manage.py bootstrap_site
# Text embeddings for semantic search fill in beside the running site (only missing or stale
# items; ~8 min for ml-latest-small on 2 cores the first time, seconds afterwards).
mkdir -p var
"$PY" manage.py embed > var/embed.log 2>&1 &
exec "$PY" manage.py runserver "${HOST:-127.0.0.1}:${PORT:-8000}"
