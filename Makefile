# Anyhour: `make run` starts the app with embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint check-vendor lock engine-sim bench bench-knowledge messages check-deploy clean

# Every top-level Python package (apps, config, test and benchmark equipment): what mypy checks.
PACKAGES := $(sort $(patsubst %/__init__.py,%,$(wildcard */__init__.py)))

# DEBUG is off unless asked for (config/settings.py). The development commands turn it on; a key
# is then generated once in var/secret_key. Set DJANGO_DEBUG=0 yourself to try production mode.
run messages: export DJANGO_DEBUG ?= 1

$(VENV)/.python-ok:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Anyhour needs Python 3.11 or newer (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@touch $@

# Installs exactly what the lock files pin (with hashes).
$(VENV)/.base: requirements/base.txt $(VENV)/.python-ok
	$(BIN)/pip install -q --require-hashes -r requirements/base.txt
	@touch $@

$(VENV)/.dev: requirements/dev.txt $(VENV)/.base
	$(BIN)/pip install -q --require-hashes -r requirements/dev.txt
	@touch $@

run: $(VENV)/.base
	$(BIN)/python manage.py migrate --noinput -v 0
	$(BIN)/python manage.py collectstatic --noinput -v 0
	$(BIN)/python manage.py knowledge_demo
	@echo ""
	@echo "  Anyhour is running: open http://$(HOST):$(PORT)/   (Ctrl+C stops it)"
	@echo "  Development mode (DJANGO_DEBUG=$$DJANGO_DEBUG): not for production, see README"
	@echo "  Engine: $${ENGINE_URLS:-none configured (answers are quoted from the demo help articles)}"
	@echo "  Knowledge base: http://$(HOST):$(PORT)/knowledge/ (admins); ingestion worker started beside Daphne"
	@echo ""
	@# One command: the background worker (knowledge ingestion) runs beside Daphne and stops with it.
	@# In production run `manage.py db_worker` as its own service (docs/knowledge.md).
	$(BIN)/python manage.py db_worker --no-reload --interval 1 & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/daphne -b $(HOST) -p $(PORT) config.asgi:application

test: $(VENV)/.dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Static checks, all configured in pyproject.toml and .importlinter; CI runs this before the tests.
lint: $(VENV)/.dev .mypy_cache/.pyproject
	$(BIN)/ruff check .
	$(BIN)/mypy $(PACKAGES)
	$(BIN)/lint-imports --no-cache
	$(MAKE) --no-print-directory check-vendor

# mypy's incremental cache misses some [tool.mypy] changes (ignore_missing_imports): start afresh
# whenever pyproject.toml changes.
.mypy_cache/.pyproject: pyproject.toml
	rm -rf .mypy_cache && mkdir -p .mypy_cache && touch $@

# The vendored browser files match static/vendor/SHA256SUMS (standard library only).
check-vendor:
	$(PYTHON) scripts/check_vendor.py

# Recompile the lock files after editing requirements/*.in (needs uv: pip install uv).
lock:
	cd requirements && uv pip compile base.in -o base.txt --generate-hashes --python-version 3.11 -q
	cd requirements && uv pip compile dev.in -o dev.txt --generate-hashes --python-version 3.11 -q

# The vLLM simulator on :8001 (test and benchmark equipment): ENGINE_URLS=http://127.0.0.1:8001/v1 make run
engine-sim: $(VENV)/.base
	$(BIN)/python -m testsupport.engine_sim --port 8001

bench: $(VENV)/.dev
	$(BIN)/python -m bench.relay

# Retrieval quality on the dev questions and latency at 10,000 chunks (docs/knowledge.md).
bench-knowledge: $(VENV)/.dev
	$(BIN)/python -m bench.knowledge

messages: $(VENV)/.dev
	$(BIN)/python manage.py makemessages -l zh_Hans --ignore=.venv --ignore=var --ignore=bench --ignore=testsupport --ignore=tests
	$(BIN)/python manage.py makemessages -d djangojs -l zh_Hans --ignore=.venv --ignore=var --ignore=static/vendor --ignore=bench --ignore=testsupport --ignore=tests
	$(BIN)/python manage.py compilemessages --ignore=.venv

check-deploy: $(VENV)/.base
	DJANGO_DEBUG=0 DJANGO_SECRET_KEY=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))') \
	DJANGO_ALLOWED_HOSTS=chat.example.com $(BIN)/python manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) var/staticfiles .mypy_cache .ruff_cache
