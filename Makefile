# wanderlens: two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export SPARK_LOCAL_IP := 127.0.0.1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONHASHSEED := 0

.PHONY: venv demo test fuzz lint bench clean

venv: $(STAMP)

# Re-installs only when pyproject.toml changes; seconds when the venv is already there.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: venv
	$(BIN)/wanderlens demo --out runs/demo

test: venv
	$(BIN)/python tools/ensure_test_deps.py
	$(BIN)/python -m pytest -q tests

# Generated-input checks with the long profile: WANDERLENS_FUZZ_EXAMPLES examples (default 300), random seeds:
# property-based ingestion, and the REST API fuzzed from its OpenAPI schema (per route) plus generated uploads.
fuzz: venv
	WANDERLENS_FUZZ=1 $(BIN)/python -m pytest -q tests/test_ingest_properties.py tests/test_api_fuzz.py

lint: venv
	$(BIN)/ruff check .

bench: venv
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf runs build .pytest_cache
