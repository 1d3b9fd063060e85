# conv_pipeline — every target creates or reuses .venv and installs the project from pyproject.toml.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export CONV_PIPELINE_DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(CONV_PIPELINE_DATA_DIR)/dagster_home

.PHONY: install demo test dev bench lint format clean e2e

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,deploy]'
	@touch $(STAMP)

install: $(STAMP)

# Azurite (the Azure Storage emulator) for the Blob tests, pinned in package.json/package-lock.json;
# npm ci runs again when node_modules is missing or older than the lock file.
NODE_STAMP := node_modules/.package-lock.json
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

## make demo: write the bundled sample and run the whole pipeline on it (offline, no credentials)
demo: $(STAMP)
	$(BIN)/conv-pipeline sample
	$(BIN)/conv-pipeline run

## make test: the test suite
test: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m pytest -q

## make e2e: the UI in headless Chromium (installs Debian's chromium when missing); saves docs/img/*.png
e2e: $(STAMP)
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	$(BIN)/python -m pytest -q e2e

## make dev: the Dagster UI (http://127.0.0.1:3000) on the same data and instance as `make demo`
dev: $(STAMP)
	@mkdir -p $(DAGSTER_HOME)
	@test -f $(DAGSTER_HOME)/dagster.yaml || printf 'telemetry:\n  enabled: false\nnux:\n  enabled: false\n' > $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

## make bench: throughput figures (see docs/BENCHMARKS.md)
bench: $(STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/judge.py

lint: $(STAMP)
	$(BIN)/ruff check conv_pipeline conv_pipeline_demo tests bench e2e
	$(BIN)/ruff format --check conv_pipeline conv_pipeline_demo tests bench e2e
	$(BIN)/dg check defs

format: $(STAMP)
	$(BIN)/ruff check --fix conv_pipeline conv_pipeline_demo tests bench e2e
	$(BIN)/ruff format conv_pipeline conv_pipeline_demo tests bench e2e

clean:
	rm -rf data bench/out bench/.venv-azeval
