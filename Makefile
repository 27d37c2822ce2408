# Each target sets itself up: a fresh machine needs only python3 (3.11+).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-heavy lint bench bench-10k clean

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
	$(BIN)/pytest -q --durations=20

test-heavy: $(STAMP)
	$(BIN)/pytest -q -m heavy

lint: $(STAMP)
	$(BIN)/ruff check server worlds tests $(wildcard bench)
	$(BIN)/mypy

# The ratio against the bare relay is printed only when no client process passed 85 % of a core in the
# saturation phase (docs/performance.md); server CPU per delivered message is printed for both servers.
bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench --workers 2000 --steady 30 --saturate 15 --ramp 50 --rounds 3
	$(BIN)/python -m bench publish

# 10,000 live workers on one Parley instance, one message every 5 s each (2,000 msg/s), no saturation phase:
# steady relay p99, loss and RSS per worker. Needs about 20,000 file descriptors per process and 20,000
# local ports (docs/performance.md).
bench-10k: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench --only parley --workers 10000 --interval 5 --steady 60 --saturate 0 --ramp 100

clean:
	rm -rf $(VENV) data
