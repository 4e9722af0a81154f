# The two commands of README.md:  `make run`  and  `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
DATA   ?= ../shared/data/ml-latest-small
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test setup browser lint worker beat bench clean-db

$(VENV)/.installed: pyproject.toml
	bash scripts/setup.sh $(VENV)
	touch $@

setup: $(VENV)/.installed

# Install, migrate, collect static files, import DATA (idempotent), train if no model is active,
# serve on HOST:PORT with gunicorn, DEBUG off (DJANGO_DEBUG=true make run for a debug session).
run: setup
	DATA="$(DATA)" HOST="$(HOST)" PORT="$(PORT)" bash scripts/run.sh $(VENV)

# Install (Python packages and Debian's chromium for the browser tests), then the whole suite.
test: setup browser
	$(PY) -m pytest $(PYTEST_ARGS)

browser:
	bash scripts/browser.sh

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

worker: setup
	$(VENV)/bin/celery -A recsite worker -l info --concurrency 2

beat: setup
	$(VENV)/bin/celery -A recsite beat -l info --schedule var/celerybeat-schedule

bench: setup
	for f in benchmarks/bench_*.py; do $(PY) $$f || exit 1; done

clean-db: setup
	$(PY) manage.py embedded_db stop; rm -rf var/pgdata
