# memorymesh: `make run` serves on http://127.0.0.1:8000, `make test` runs the whole suite.
# Both create .venv and install everything on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch first, as the CPU build: a bare `torch` requirement would pull a multi-GB CUDA
# build. Where no local wheel is at hand, point TORCH_INDEX at a CPU wheel index.
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?=

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test lint typecheck unit contract integration e2e bench bench-quality clean

$(STAMP): pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) torch==$(TORCH_VERSION)
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet -e ./clients/python  # memorymesh-client: tests/client and the benches use it
	$(BIN)/memorymesh model export >/dev/null  # the model on ONNX Runtime, exported once, not at each first start
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/memorymesh serve

test: $(STAMP) lint typecheck compose-validator browser
	$(BIN)/pytest -q --durations=10

# tests/integration/test_deploy.py validates docker-compose.yml with Debian's docker-compose
# (v1; no Docker engine is needed, or started). Without recommends: they pull in docker.io.
.PHONY: compose-validator
compose-validator:
	@command -v docker-compose >/dev/null || { \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq --no-install-recommends docker-compose >/dev/null \
		|| { apt-get update -qq && apt-get install -y -qq --no-install-recommends docker-compose >/dev/null; } \
		|| { echo "make: install Debian's docker-compose package (apt-get install docker-compose)" >&2; exit 1; }; }

# tests/browser drive Debian's chromium with Playwright (Playwright's own browser download is
# not reachable from every host; the system browser is).
.PHONY: browser
browser:
	@command -v chromium >/dev/null || { \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq chromium >/dev/null \
		|| { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
		|| { echo "make: install Debian's chromium package (apt-get install chromium)" >&2; exit 1; }; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/bdd tests/unit

contract: $(STAMP)
	$(BIN)/pytest -q tests/contract

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

e2e: $(STAMP)
	$(BIN)/pytest -q tests/e2e

bench: $(STAMP)  # bench/search.py builds its corpora by COPY (bench/corpus.py), in minutes
	$(BIN)/python bench/search_latency.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/retention.py

bench-quality: $(STAMP)  # about 6 minutes: recall and MRR on LoCoMo per search mode, ranking on and off
	$(BIN)/python bench/quality.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
