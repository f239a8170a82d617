# The two commands of the README's quick start: `make serve` and `make test`.
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: serve test install install-test chromium images lint bench web web-check
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

install:
	$(PIP) install --quiet --disable-pip-version-check -e .

install-test:
	$(PIP) install --quiet --disable-pip-version-check -e '.[test]'
	cd tests/node && npm ci --no-audit --no-fund --loglevel=error
	@test -x /usr/bin/chromium || $(MAKE) chromium
	$(MAKE) images

# Runs need a Docker Engine and the run image: Debian's docker.io, started if it
# is not running, and the image built offline with debootstrap (reused when present).
images:
	$(SUDO) executor/images/build.sh

# The browser tests drive Debian's Chromium (never a downloaded browser).
chromium:
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

serve: install
	opencode-live serve

lint:
	$(PYTHON) -m ruff check .

# Two processes (pytest-xdist), a test file each at a time: most of a test's time is
# spent waiting on servers, Postgres and Docker, so two halve the wall time here.
test: install-test lint web-check
	$(PYTHON) -m pytest -q -n 2 --dist loadfile

# The classroom page: web/src -> web/dist (committed, so pip installs need no Node).
web:
	cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build

# Fails when the committed web/dist is not what the sources and lock file build.
web-check:
	cd web && npm ci --no-audit --no-fund --loglevel=error && npm run --silent check

bench: install-test
	cd bench && npm ci --no-audit --no-fund --loglevel=error
	$(PYTHON) bench/run_all.py
