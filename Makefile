# make demo  — virtualenv, install, migrate SQLite, seed, serve the example shop on :8000
# make test  — virtualenv, install, lint, type-check, the whole suite with coverage
# make bench — the benchmarks, against PostgreSQL (DATABASE_URL, default the local one)
# make bench-load — bursts of new visitors under gunicorn: anonauth, django-guest-user, none
# make bench-purge-spread — the purge on 1 and 2 Celery workers vs SQL (STALE=, ROUNDS=)
# make docs  — the documentation site (Sphinx, warnings are errors) in docs/_build/html
# make dist  — the sdist and the wheel in dist/, checked by twine
# make messages — update and compile the translation catalogues in anonauth/locale

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
REDIS_BENCH_URL ?= redis://127.0.0.1:6379/12

.PHONY: install test lint demo bench bench-load bench-purge-spread docs dist messages clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/coverage erase
	$(BIN)/pytest --cov --cov-report=
	$(BIN)/pytest --ds=tests.settings_email_user --cov --cov-append --cov-report= \
		-m "not auth_user_only"
	$(BIN)/pytest --ds=tests.settings_allauth --cov --cov-append --cov-report= \
		tests/test_allauth.py tests/test_scenarios.py
	$(BIN)/coverage report --fail-under=98

demo: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py runserver 127.0.0.1:8000

bench: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-$(PG_URL)} REDIS_URL=$${REDIS_URL:-$(REDIS_BENCH_URL)} \
		$(BIN)/python -m tests.benchmarks

# Creates (and drops) <DATABASE_URL's database>_burst_* beside DATABASE_URL's database.
bench-load: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	DATABASE_URL=$${DATABASE_URL:-$(PG_URL)} REDIS_URL=$${REDIS_URL:-$(REDIS_BENCH_URL)} \
		$(BIN)/python -m tests.benchmarks.bench_burst

# Real Celery workers on Redis (broker CELERY_BROKER_URL, lock cache REDIS_URL); opt-in,
# since a million guests take a while. Creates (and drops) test_<database> and a copy.
STALE ?= 1000000
ROUNDS ?= 3
bench-purge-spread: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-$(PG_URL)} REDIS_URL=$${REDIS_URL:-$(REDIS_BENCH_URL)} \
		CELERY_BROKER_URL=$${CELERY_BROKER_URL:-redis://127.0.0.1:6379/13} \
		$(BIN)/python -m tests.benchmarks.bench_purge_spread --stale $(STALE) --rounds $(ROUNDS)

# -E: a fresh environment every time, so -W sees the warnings of every page, not only
# of the pages changed since the last build. The lifecycle diagram needs Graphviz.
docs: $(STAMP)
	@command -v dot >/dev/null || { echo "make docs needs Graphviz: apt-get install graphviz" >&2; exit 1; }
	$(BIN)/sphinx-build -W --keep-going -E -b html docs docs/_build/html

dist: $(STAMP)
	rm -rf dist build
	$(BIN)/python -m build
	$(BIN)/twine check --strict dist/*

# Every language in anonauth/locale (NEW=it adds one). The options are also those of the
# catalogue check in tests/test_i18n.py, which fails when this target would change a msgid.
MAKEMESSAGES_OPTIONS := --no-obsolete --no-wrap --add-location file
DJANGO_ADMIN := cd anonauth && DJANGO_SETTINGS_MODULE=tests.settings PYTHONPATH=.. \
	$(abspath $(BIN))/django-admin

messages: $(STAMP)
	@command -v msgfmt >/dev/null || { echo "make messages needs gettext: apt-get install gettext" >&2; exit 1; }
	$(DJANGO_ADMIN) makemessages $(if $(NEW),--locale $(NEW),--all) $(MAKEMESSAGES_OPTIONS)
	$(DJANGO_ADMIN) compilemessages

clean:
	rm -rf $(VENV) .coverage example.sqlite3 .tox build dist docs/_build
