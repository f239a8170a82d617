# The two commands of the README's quick start: `make serve` and `make test`.
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: serve test install install-test lint bench web web-check

install:
	$(PIP) install --quiet --disable-pip-version-check -e .

install-test:
	$(PIP) install --quiet --disable-pip-version-check -e '.[test]'
	cd tests/node && npm ci --no-audit --no-fund --loglevel=error

serve: install
	opencode-live serve

lint:
	$(PYTHON) -m ruff check .

test: install-test lint web-check
	$(PYTHON) -m pytest -q

# The classroom page: web/src -> web/dist (committed, so pip installs need no Node).
web:
	cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build

# Fails when the committed web/dist is not what the sources and lock file build.
web-check:
	cd web && npm ci --no-audit --no-fund --loglevel=error && npm run --silent check

bench: install-test
	cd bench && npm ci --no-audit --no-fund --loglevel=error
	$(PYTHON) bench/run_all.py
