# The two commands of the README: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-unit bench schemas clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## The main job on the embedded default: a generated trading day through SQLite.
run: install
	$(BIN)/backorders run

## Every test: unit, property, CLI and the embedded runtime's crash tests.
test: install
	mkdir -p var
	$(BIN)/python -m pytest -q --junitxml=var/test-report.xml

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

## Figures, not a test: see docs/benchmarks.md.
bench: install
	$(BIN)/python -m bench.core_bench

## Regenerate the committed JSON Schema files from the pydantic models.
schemas: install
	$(BIN)/python -m backorder_events.generate

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
