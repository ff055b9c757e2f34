# ortel: `make demo` runs the whole system on this machine, `make test` proves it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test bench bench-quick lint install system-deps clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ortel needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,serial]'
	@touch $(STAMP)

install: $(STAMP)

system-deps:
	@scripts/system-deps.sh

demo: $(STAMP) system-deps
	$(BIN)/ortel demo

test: $(STAMP)
	@scripts/system-deps.sh --browser
	$(BIN)/python -m pytest

bench: $(STAMP) system-deps
	$(BIN)/ortel bench

bench-quick: $(STAMP) system-deps
	$(BIN)/ortel bench --quick

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy wire

clean:
	rm -rf $(VENV) .ortel .pytest_cache .mypy_cache .ruff_cache
