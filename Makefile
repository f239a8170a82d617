# The two commands of the README's quick start: `make serve` and `make test`.
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: serve test install install-test lint bench

install:
	$(PIP) install --quiet --disable-pip-version-check -e .

install-test:
	$(PIP) install --quiet --disable-pip-version-check -e '.[test]'
	cd tests/node && npm ci --no-audit --no-fund --loglevel=error

serve: install
	opencode-live serve

lint:
	$(PYTHON) -m ruff check .

test: install-test lint
	$(PYTHON) -m pytest -q

bench: install-test
	cd bench && npm ci --no-audit --no-fund --loglevel=error
	$(PYTHON) bench/run_all.py
