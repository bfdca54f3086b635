# Two commands do everything on a fresh machine:
#   make evaluate   # set up .venv, then evaluate the offline default model on XQuAD-R (all 132 settings)
#   make test       # set up .venv + the BM25 stack + Debian's chromium (for the page test), run the tests
#   make test-fast  # only the tests that need neither the datasets nor the real model (seconds)
#   make docs       # the documentation site (MkDocs, strict: a broken link fails) into site/
# The BM25 baseline alone (hybrid-plugin evaluate --model bm25):
#   make bm25       # Java 17 from Debian if `java` is missing, then pyserini 0.22.1 (--no-deps) + pyjnius
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

# pyserini 0.22.1 without its declared dependencies (spacy, nmslib, lightgbm, faiss...): the BM25
# baseline uses only its Anserini jar and pyjnius, so these two pins are all it needs. Not a
# pyproject extra, since an extra cannot say --no-deps.
BM25_PACKAGES := pyserini==0.22.1 pyjnius==1.9.0
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(VENV)/.bm25: $(VENV)/.installed
	@command -v java >/dev/null 2>&1 || { echo "installing Java 17 (Debian openjdk-17-jre-headless)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	  --no-install-recommends openjdk-17-jre-headless >/dev/null; }
	$(BIN)/python -m pip install -q --no-deps $(BM25_PACKAGES)
	touch $@

bm25: $(VENV)/.bm25

# the leaderboard page is tested in Debian's headless chromium (tests/test_leaderboard_browser.py)
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium + chromium-driver (for the leaderboard page test)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	  chromium chromium-driver >/dev/null; }

evaluate: $(VENV)/.installed
	HYBRID_PLUGIN_DATA=$(DATA) $(BIN)/hybrid-plugin evaluate --task $(TASK) --out results

test: $(VENV)/.installed $(VENV)/.bm25 browser
	HYBRID_PLUGIN_DATA=$(DATA) $(BIN)/python -m pytest -q

# the fast tier: tests that need neither the datasets nor the real default model
test-fast: $(VENV)/.installed
	HYBRID_PLUGIN_DATA=/nonexistent $(BIN)/python -m pytest -q -m "not data and not slow and not external"

$(VENV)/.docs: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e ".[docs]"
	touch $@

# the CLI reference and the measure table are generated from the code while building (docs/hooks/)
docs: $(VENV)/.docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

lint: $(VENV)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

.PHONY: setup bm25 browser evaluate test test-fast docs lint
