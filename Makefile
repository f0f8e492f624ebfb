# The two commands of the README: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-unit bench bench-kafka schemas clean services services-stop

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## The main job on the embedded default: a generated trading day through SQLite.
run: install
	$(BIN)/backorders run

## Every test: unit, property, CLI, the embedded runtime's crash tests and the integration
## tests against a local Kafka broker and PostgreSQL, which deploy/test-env.sh starts when
## KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL are not set (it fails if it cannot).
test: install
	mkdir -p var
	bash deploy/test-env.sh $(BIN)/python -m pytest -q --junitxml=var/test-report.xml

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

## The local servers of the Kafka runtime (not needed by `make run`): start both and print
## their addresses, or stop them.
services:
	bash deploy/kafka.sh start
	bash deploy/postgres.sh start

services-stop:
	bash deploy/kafka.sh stop
	bash deploy/postgres.sh stop

## Figures, not a test: see docs/benchmarks.md.
bench: install
	$(BIN)/python -m bench.core_bench
	$(BIN)/python -m bench.api_bench

## Figures through a real broker and PostgreSQL (started like for the tests).
bench-kafka: install
	bash deploy/test-env.sh $(BIN)/python -m bench.kafka_bench
	bash deploy/test-env.sh $(BIN)/python -m bench.partitioned_bench

## Regenerate the committed JSON Schema files and the AsyncAPI document from the models, and
## the HTTP API's OpenAPI document from its routes.
schemas: install
	$(BIN)/python -m backorder_events.generate
	$(BIN)/python -m backorder_events.asyncapi
	$(BIN)/python -m recalculator.api.openapi

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
