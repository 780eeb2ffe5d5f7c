# Jobsite: `make run` starts everything on one machine (SQLite); `make test` runs the suite on SQLite,
# then on PostgreSQL. See README.md.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/jobsite

.PHONY: install run test test-sqlite test-postgres bench clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

run: install
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
	$(PY) manage.py createcachetable
	$(PY) manage.py setup_schedules
	$(PY) manage.py ensure_demo_user
	DEBUG=$${DEBUG:-1} $(PY) scripts/run_all.py --host $(HOST) --port $(PORT)

test: install
	@# The pages' browser tests (tests/pages) drive Debian's Chromium; Playwright's own download does not work here.
	@test -x /usr/bin/chromium || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)
	$(MAKE) test-sqlite
	$(MAKE) test-postgres

test-sqlite: install
	@echo "== Test suite on SQLite =="
	env -u DATABASE_URL -u REDIS_URL $(PY) -m pytest

test-postgres: install
	@echo "== Test suite on PostgreSQL ($(TEST_DATABASE_URL)) =="
	@if $(PY) scripts/db_ready.py "$(TEST_DATABASE_URL)"; then \
		env -u REDIS_URL DATABASE_URL="$(TEST_DATABASE_URL)" $(PY) -m pytest; \
	elif [ "$${CI:-}" = "true" ]; then \
		echo "FAILED: PostgreSQL at $(TEST_DATABASE_URL) is unreachable, and CI requires the PostgreSQL run."; \
		exit 1; \
	else \
		echo "!!!!! WARNING: PostgreSQL at $(TEST_DATABASE_URL) is unreachable: the PostgreSQL run was SKIPPED. !!!!!"; \
	fi

bench: install
	$(PY) bench/engine_throughput.py
	$(PY) bench/status_polling.py

clean:
	rm -rf $(VENV) var/test_db.sqlite3*
