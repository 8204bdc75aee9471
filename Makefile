# VitalsStream: `make run` starts the engine (MLLP 2575, HTTP 8000, SQLite); `make test` runs the suite;
# `make demo` runs the engine, a mock EHR and simulated monitors, devices and an EHR outage (docs/demo.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run install test lint bench demo system-packages test-system-packages clean

run: install
	$(BIN)/vitalsstream run

install: system-packages $(INSTALLED)
	$(BIN)/vitalsstream db upgrade

test: system-packages test-system-packages $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

demo: install
	$(BIN)/python scripts/demo.py

lint: $(INSTALLED)
	$(BIN)/ruff check .

bench: $(INSTALLED)
	$(BIN)/python bench/transform_bench.py

system-packages:
	@scripts/install-system-packages.sh

# Only the tests need these: the dashboard's browser tests drive headless Chromium through chromedriver.
test-system-packages:
	@scripts/install-system-packages.sh chromium chromium-driver

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "VitalsStream needs Python 3.11 (Spyne 2.14 does not import on 3.12+); set PYTHON=/path/to/python3.11"'
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

clean:
	rm -rf $(VENV) var build *.egg-info .pytest_cache .ruff_cache test-artifacts
