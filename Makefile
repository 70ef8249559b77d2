PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: test demo run docs lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Runtime dependencies only (demo, run). setup.py and the C source: `pip install -e` (re)builds the
# optional extension polyoms._speedups.
$(RUN_STAMP): $(BIN)/python pyproject.toml setup.py src/polyoms/_speedups.c
	$(BIN)/pip install -q -e .
	touch $(RUN_STAMP)

# The dev tools (pytest, ruff, mypy, the reference client) on top, for test and lint only.
$(DEV_STAMP): $(RUN_STAMP)
	$(BIN)/pip install -q -e '.[dev]'
	touch $(DEV_STAMP)

# The extension is optional for an install (no compiler: pure Python), required here: a C build error
# must not pass silently (tests/book/test_speedups.py).
test: $(DEV_STAMP)
	$(BIN)/lint-imports
	POLYOMS_REQUIRE_SPEEDUPS=1 $(BIN)/python -m pytest

# The main job: the showcase on the embedded local exchange (make demo ARGS="--quick --faults").
demo: $(RUN_STAMP)
	$(BIN)/polyoms demo $(ARGS)

# Any command without activating the venv: make run ARGS="markets search" (same as .venv/bin/polyoms ...).
run: $(RUN_STAMP)
	$(BIN)/polyoms $(ARGS)

# docs/config.md is generated from the config schema (src/polyoms/ops/config.py); a test keeps it current.
docs: $(RUN_STAMP)
	$(BIN)/polyoms config doc --out docs/config.md

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(DEV_STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	for b in sign matching rest_roundtrip book client ws market_day oms; do $(BIN)/python bench/$$b.py || exit 1; done

clean:
	rm -rf $(VENV)
