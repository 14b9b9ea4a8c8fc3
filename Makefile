# The two commands a newcomer needs: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Every dependency at the version the tests ran with: requirements.lock for the service (the Docker image),
# requirements-dev.lock for it and the dev extra. `make lock` rebuilds both after pyproject.toml changes.
LOCK_FLAGS := --strip-extras --no-emit-index-url --no-emit-find-links --no-emit-trusted-host

.PHONY: run test install lint lock openapi model bench-ingest bench-classifier screenshots clean

$(STAMP): pyproject.toml requirements-dev.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# The model is built and registered before the server binds, so that no request waits for it.
run: $(STAMP)
	$(BIN)/avvik migrate
	$(BIN)/avvik model ensure
	$(BIN)/avvik serve

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check app classifier tests bench migrations
	$(BIN)/lint-imports
	$(BIN)/mypy app classifier

# Keeps the versions already locked where pyproject.toml still allows them; delete a line to upgrade it.
lock: $(STAMP)
	$(BIN)/python -m pip install -q pip-tools
	$(BIN)/pip-compile -q pyproject.toml -o requirements.lock $(LOCK_FLAGS)
	$(BIN)/pip-compile -q pyproject.toml --extra dev -c requirements.lock -o requirements-dev.lock $(LOCK_FLAGS)

openapi: $(STAMP)
	$(BIN)/python -m app.openapi

model: $(STAMP)
	$(BIN)/python -m classifier train --out var/models/default

bench-ingest: $(STAMP)
	$(BIN)/python bench/ingest.py

bench-classifier: $(STAMP)
	$(BIN)/python bench/classifier.py

screenshots: $(STAMP)
	$(BIN)/python -m tests.web.screenshots

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
