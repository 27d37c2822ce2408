# Each target sets itself up: a fresh machine needs only python3 (3.11+).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-heavy lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m server.serving --host $${PARLEY_HOST:-127.0.0.1} --port $${PARLEY_PORT:-8000}

test: $(STAMP)
	$(BIN)/python -m tests.browser_setup
	$(BIN)/ruff check server worlds tests $(wildcard bench)
	$(BIN)/mypy
	$(BIN)/pytest -q

test-heavy: $(STAMP)
	$(BIN)/pytest -q -m heavy

lint: $(STAMP)
	$(BIN)/ruff check server worlds tests $(wildcard bench)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench --workers 2000 --steady 30 --saturate 15 --ramp 50 --rounds 3
	$(BIN)/python -m bench publish

clean:
	rm -rf $(VENV) data
