# The two quick-start commands (`make demo`, `make test`) work on a fresh machine:
# each creates the virtual environment and installs what it needs first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint services bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip==25.3

$(VENV)/.runtime: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.runtime

demo: $(VENV)/.runtime
	$(BIN)/nemorouter demo

test: $(VENV)/.test services
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	@bash scripts/ensure-chromium
	NEMOROUTER_TEST_SERVICES=required $(BIN)/pytest

lint: $(VENV)/.test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

services:
	@bash scripts/ensure-services

bench: $(VENV)/.test
	$(BIN)/python bench/overhead

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
