# Every target sets itself up: a virtual environment in .venv, refreshed
# when pyproject.toml changes. Safe to run twice.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DEMO   := .coord-demo

.PHONY: demo test unit integration chaos smoke bench bench-report lint docs screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Sweep the example plan of ecosystem.yaml, embedded (no Redis needed), on a fresh copy.
demo: $(STAMP)
	$(PY) -m coordination.demo $(DEMO)
	env -u COORD_REDIS_URL $(VENV)/bin/coord --file $(DEMO)/ecosystem.yaml plan sweep PLAN-001 --wait

## Run the whole test suite (unit + integration; integration needs redis-server on PATH):
## the unit and integration tiers on TEST_JOBS processes at once (pytest-xdist, a test file
## to each; 0 runs them in this one) at `nice 10`, and beside them the chaos tier at normal
## priority: its faults and soaks are timed, and take the CPU they need first
## (tests/tiers.sh says how; its output comes after the first tier's). Four processes on
## two cores: most of an integration test's time is spent waiting on its servers and
## workers, and 6 were no faster than 4 (the first tier is CPU-bound: 1.7 of 2 cores).
## Each tier prints its 25 slowest steps (--durations): CI's log shows where a slowdown starts.
TEST_JOBS ?= 4
test: $(STAMP)
	bash tests/tiers.sh $(PY) $(TEST_JOBS)

unit: $(STAMP)
	$(PY) -m pytest -n $(TEST_JOBS) --dist loadfile tests/unit

integration: $(STAMP)
	$(PY) -m pytest tests/integration

chaos: $(STAMP)
	$(PY) -m pytest tests/integration/chaos

## A plain `pip install .` in a fresh venv, then a real distributed and an embedded sweep.
smoke:
	bash .ci/smoke-plain-install

## Every benchmark under bench/ (by hand, never in CI: about an hour on 2 cores), quick ones
## first; each writes bench/results/NAME.json, and the performance page's tables are
## rewritten from them at the end. One bench: `.venv/bin/python bench/NAME.py --help`.
## bench/README.md says what each measures; a test holds this list to the bench/*.py files.
BENCHES := \
	planner \
	startup \
	approval \
	catalog_load \
	execute_overhead \
	spawn \
	send \
	embedded \
	replica_wait \
	notify \
	reads \
	fleet \
	fleet_init \
	land \
	land_vs \
	history \
	metrics \
	ui \
	cache \
	edit \
	sweep \
	peers \
	todo_path \
	fixed_cost \
	fleet_run \
	fleet_sweep \
	scale \
	merge_chains

bench: $(STAMP)
	@failed=""; for b in $(BENCHES); do \
	  echo "== bench/$$b.py"; $(PY) bench/$$b.py || failed="$$failed $$b"; \
	done; \
	$(PY) bench/_report.py; \
	if [ -n "$$failed" ]; then echo "bench: failed:$$failed"; exit 1; fi

## Rewrite the tables of docs/explanation/performance.md, and the figures README.md and
## ARCHITECTURE.md quote, from bench/results/*.json.
bench-report:
	$(PYTHON) bench/_report.py

lint: $(STAMP)
	$(PY) -m mypy coordination workers

## Build the docs site into site/, strictly: a broken link, a missing anchor or a page
## left out of the nav fails. The reference pages are generated from the code.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

## Take the docs' screenshots of the web view again (docs/images/web-view-*.png and their
## sidecars; chromium and chromedriver on PATH), with the browser tests that take them
## (tests/docs/screenshots.py names them). A plain test run writes them to
## .artifacts/screenshots/ instead, leaving the tree clean.
screenshots: $(STAMP)
	COORD_SCREENSHOTS=docs/images $(PY) -m pytest -p no:randomly \
	  $$($(PY) -c "from tests.docs.screenshots import SCREENSHOTS; print(*sorted(SCREENSHOTS.values()))")

clean:
	rm -rf $(VENV) $(DEMO) site .pytest_cache .mypy_cache .hypothesis *.egg-info
