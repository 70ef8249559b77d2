PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: test demo lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# setup.py and the C source: `pip install -e` (re)builds the optional extension polyoms._speedups.
$(STAMP): $(BIN)/python pyproject.toml setup.py src/polyoms/_speedups.c
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# The extension is optional for an install (no compiler: pure Python), required here: a C build error
# must not pass silently (tests/book/test_speedups.py).
test: $(STAMP)
	POLYOMS_REQUIRE_SPEEDUPS=1 $(BIN)/python -m pytest

# The main job: the showcase on the embedded local exchange (make demo ARGS="--quick --faults").
demo: $(STAMP)
	$(BIN)/polyoms demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	for b in sign matching rest_roundtrip book client ws market_day oms; do $(BIN)/python bench/$$b.py || exit 1; done

clean:
	rm -rf $(VENV)
