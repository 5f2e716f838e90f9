# Both entry points bootstrap .venv themselves, so a fresh clone needs only Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench lab clean-data help

help:
	@echo "make demo   set up .venv and run the end-to-end demo on the embedded defaults"
	@echo "make test   set up .venv and run ruff, mypy, the pytest suite and the doctests"
	@echo "make bench  run the benchmarks in bench/ (slow; prints figures)"
	@echo "make lab    open JupyterLab on ratelab/notebooks/explore.ipynb (installs jupyterlab)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m ratelab.demo

# The real peers the end-to-end tests talk to (Debian packages; .ci/run installs them). Missing
# ones are named in one line and the suite still runs (the tests that need them fail).
PEERS_CHECK = pkgs=""; \
	command -v sipp >/dev/null 2>&1 || pkgs="$$pkgs sip-tester"; \
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
		|| command -v google-chrome >/dev/null 2>&1 || pkgs="$$pkgs chromium"; \
	if [ -n "$$pkgs" ]; then echo "make test: install SIPp / Chromium for the end-to-end tests: apt-get install$$pkgs (running the rest; those tests will fail)"; fi

test: $(STAMP)
	@$(PEERS_CHECK)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/rating.py
	$(BIN)/python bench/switch_cps.py
	$(BIN)/python bench/switch_concurrency.py
	$(BIN)/python bench/register.py
	$(BIN)/python bench/reports.py
	$(BIN)/python bench/rtp.py --repeat 2 --fifo 10 --load-nice -5 --churn 100000
	$(BIN)/python bench/udp_floor.py
	$(BIN)/python bench/guard.py

lab: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,lab]'
	$(BIN)/jupyter lab ratelab/notebooks/explore.ipynb

clean-data:
	rm -rf data/warehouse.duckdb data/warehouse.duckdb.wal data/spool data/demo reports
