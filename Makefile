# Two commands do everything on a fresh machine:
#   make evaluate   # set up .venv, then evaluate the offline default model on XQuAD-R (all 132 settings)
#   make test       # set up .venv, then run the test suite
PYTHON ?= python3
VENV ?= .venv
DATA ?= $(abspath ../shared/datasets)
TASK ?= xquad-r
BIN := $(VENV)/bin

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

evaluate: $(VENV)/.installed
	HYBRID_PLUGIN_DATA=$(DATA) $(BIN)/hybrid-plugin evaluate --task $(TASK) --out results

test: $(VENV)/.installed
	HYBRID_PLUGIN_DATA=$(DATA) $(BIN)/python -m pytest -q

lint: $(VENV)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

.PHONY: setup evaluate test lint
