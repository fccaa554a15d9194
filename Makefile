# Every target sets itself up: a virtual environment in .venv, refreshed
# when pyproject.toml changes. Safe to run twice.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DEMO   := .coord-demo

.PHONY: demo test unit integration chaos smoke bench lint docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Sweep the example plan of ecosystem.yaml, embedded (no Redis needed), on a fresh copy.
demo: $(STAMP)
	$(PY) -m coordination.demo $(DEMO)
	env -u COORD_REDIS_URL $(VENV)/bin/coord --file $(DEMO)/ecosystem.yaml plan sweep PLAN-001 --wait

## Run the whole test suite (unit + integration; integration needs redis-server on PATH).
test: $(STAMP)
	$(PY) -m pytest

unit: $(STAMP)
	$(PY) -m pytest tests/unit

integration: $(STAMP)
	$(PY) -m pytest tests/integration

chaos: $(STAMP)
	$(PY) -m pytest tests/integration/chaos

## A plain `pip install .` in a fresh venv, then a real distributed and an embedded sweep.
smoke:
	bash .ci/smoke-plain-install

bench: $(STAMP)
	$(PY) bench/planner.py
	$(PY) bench/sweep.py
	$(PY) bench/fleet.py
	$(PY) bench/edit.py
	$(PY) bench/reads.py
	$(PY) bench/history.py
	$(PY) bench/metrics.py
	$(PY) bench/ui.py
	$(PY) bench/scale.py
	$(PY) bench/embedded.py
	$(PY) bench/startup.py

lint: $(STAMP)
	$(PY) -m mypy coordination workers

## Build the docs site into site/, strictly: a broken link, a missing anchor or a page
## left out of the nav fails. The reference pages are generated from the code.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

clean:
	rm -rf $(VENV) $(DEMO) site .pytest_cache .mypy_cache .hypothesis *.egg-info
