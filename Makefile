# Two commands for a fresh machine: `make run` (install + start the app) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test test-fast lint format bench clean

run: $(VENV)/.app-installed
	$(PY) -m streamlit run app.py --server.port $(PORT)

# Two workers (this is a 2-core machine). Tests go to whichever worker is free; a module with a
# module-scoped fixture keeps its tests on one worker with an xdist_group mark (loadgroup).
test: $(VENV)/.dev-installed
	$(PY) -m pytest -n 2 --dist loadgroup --durations=25

test-fast: $(VENV)/.dev-installed
	$(PY) -m pytest -m "not slow and not e2e"

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) tools/check_private_imports.py

format: $(VENV)/.dev-installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(VENV)/.dev-installed
	$(PY) bench/live_callback_overhead.py

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.app-installed: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.app-installed

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
