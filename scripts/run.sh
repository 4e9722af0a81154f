#!/usr/bin/env bash
# Run the site as a person uses it, with its embedded defaults: embedded PostgreSQL + pgvector
# under var/, Celery tasks in-process unless REDIS_URL is set (long work started from a page then
# runs in a thread of the site), the built-in explainer unless an LLM endpoint is configured.
# Served by gunicorn with DEBUG off (error pages say nothing about the code) and whitenoise
# serving the collected static files.
set -euo pipefail
VENV="${1:-.venv}"
PY="$VENV/bin/python"
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-recsite.settings.base}"
export DJANGO_DEBUG="${DJANGO_DEBUG:-false}"
export LOG_JSON="${LOG_JSON:-false}"
"$PY" manage.py migrate --noinput
"$PY" manage.py collectstatic --noinput -v 0
# a MovieLens folder: ml-latest-small's CSV files, ML-100K's u.item or ML-1M's / ML-10M's movies.dat
if [ -n "${DATA:-}" ] && { [ -f "$DATA/movies.csv" ] || [ -f "$DATA/u.item" ] || [ -f "$DATA/movies.dat" ]; }; then
  "$PY" manage.py import_movielens "$DATA"
elif [ -n "${DATA:-}" ]; then
  echo "DATA=$DATA has no movies.csv (nor u.item, movies.dat): starting with the catalog as it is." >&2
fi
"$PY" manage.py bootstrap_site
# Text embeddings for semantic search fill in beside the running site (only missing or stale
# items; ~8 min for ml-latest-small on 2 cores the first time, seconds afterwards). This shell
# stays the embedder's parent and reaps it when it ends (an exec'd server would not: a zombie),
# and stops it with the server.
mkdir -p var
"$PY" manage.py embed > var/embed.log 2>&1 &
EMBED_PID=$!
SERVER_PID=""
stop() {
  trap - EXIT INT TERM
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
  kill "$EMBED_PID" 2>/dev/null
  wait 2>/dev/null
}
trap stop EXIT INT TERM
echo "recsite on http://${HOST:-127.0.0.1}:${PORT:-8000}/ (staff: ${RECSITE_ADMIN_USER:-admin}, password in var/admin-password.txt)"
GUNICORN_BIND="${HOST:-127.0.0.1}:${PORT:-8000}" "$VENV/bin/gunicorn" \
  -c recsite/gunicorn.conf.py recsite.wsgi:application &
SERVER_PID=$!
# wait returns when either child ends or a signal arrives; the server ending ends the script
while kill -0 "$SERVER_PID" 2>/dev/null; do
  wait -n || true
done
