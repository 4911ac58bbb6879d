# Every command a person runs. `make run` and `make test` set themselves up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DATA_DIR ?= .refsys

.PHONY: run up demo test test-unit lint format schemas bench deploy-check web clean

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("refsys needs Python 3.11 or newer" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

## run: start the platform, ingest synthetic products, show the catalog answering; Ctrl-C stops
run: $(INSTALLED)
	$(BIN)/refsys demo --data-dir $(DATA_DIR)

## up: start the platform only
up: $(INSTALLED)
	$(BIN)/refsys up --data-dir $(DATA_DIR)

## test: every test (unit, integration with SeaweedFS and PostgreSQL, end to end)
# pytest exits 5 when it collected no test: make treats any non-zero exit as a failure.
test: $(INSTALLED)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

test-unit: $(INSTALLED)
	$(BIN)/python -m pytest -q tests/unit

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## schemas: regenerate events/schemas/*.json from the event models
schemas: $(INSTALLED)
	$(BIN)/python -m events.schemas

## deploy-check: build knative/overlays/dev and prod, validate every object offline, check the references;
## check the Containerfile and emulate its build (no container engine needed)
deploy-check: $(INSTALLED)
	$(BIN)/python -m tests.deploy_check
	$(BIN)/python -m tests.image_check

## bench: benchmarks (not tests): figures as ratios against a baseline measured in the same run
bench: $(INSTALLED)
	$(BIN)/python -m tests.bench

## web: rebuild the map client's committed bundle (functions/web/static) from functions/web/client (needs Node and npm)
web:
	cd functions/web/client && npm ci --no-audit --no-fund && npm run build

clean:
	rm -rf $(VENV) $(DATA_DIR) .pytest_cache .ruff_cache .mypy_cache
