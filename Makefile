# make demo  — virtualenv, install, migrate SQLite, seed, serve the example shop on :8000
# make test  — virtualenv, install, lint, type-check, the whole suite with coverage
# make bench — the benchmarks, against PostgreSQL (DATABASE_URL, default the local one)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PG_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: install test lint demo bench clean

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
		tests/test_allauth.py
	$(BIN)/coverage report --fail-under=90

demo: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py runserver 127.0.0.1:8000

bench: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-$(PG_URL)} $(BIN)/python -m tests.benchmarks

clean:
	rm -rf $(VENV) .coverage example.sqlite3 .tox
