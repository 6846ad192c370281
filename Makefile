# The two commands of the README. Both install what they need first and are quick when it is there.
#   make demo   install, then run the demo on the embedded default (SQLite, local files, in-process)
#   make test   install with the dev extras, then run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench system services install install-dev clean

demo: install system
	@$(BIN)/python scripts/demo.py

test: install-dev system services
	set -a; . var/test-services.env; set +a; $(BIN)/python -m pytest -n 2 -q

bench: install-dev system
	$(BIN)/python bench/ingest_segment.py

system:
	@scripts/install-system-packages

services:
	@scripts/ensure-test-services

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(VENV)/.installed $@

clean:
	rm -rf $(VENV) var build *.egg-info
