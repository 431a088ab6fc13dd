# The handful of commands a newcomer needs. Everything runs from the repository root.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup test lint e2e bench bench-tiny up clean

setup: $(BIN)/reynolds $(BIN)/promtool  ## virtualenv with Reynolds and the test tools (promtool included)

$(BIN)/reynolds: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(BIN)/promtool: $(BIN)/reynolds
	scripts/promtool.sh $(BIN)

test: setup  ## unit, integration and browser tests (Postgres and Redis on localhost, Debian's chromium)
	$(BIN)/pytest tests/unit tests/integration tests/ui

lint: setup  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

e2e: setup  ## the whole system under Docker Compose (installs and starts Docker if needed; root)
	bash .ci/e2e.sh

bench: setup  ## benchmarks at full size (print JSON)
	$(BIN)/python -m bench.run_all

bench-tiny: setup  ## benchmarks at tiny sizes, to keep them working
	$(BIN)/python -m bench.run_all --tiny

up: setup  ## Reynolds + one agent of each type as local processes
	$(BIN)/reynolds up

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .reynolds
