# The two commands a newcomer needs: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test install lint openapi model bench-ingest bench-classifier screenshots clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
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
