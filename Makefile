# narhub: the two commands are `make test` and `make demo` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test
SIM_STAMP := $(VENV)/.installed-sim

.PHONY: test demo check lint types layers pytest bench broker-deps fuse-deps browser-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP) $(SIM_STAMP)

# The demo: the virtual rig, and the region's worklist served next to it.
$(SIM_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[sim,region]'
	touch $(SIM_STAMP)

# The Mosquitto broker: installed with apt-get when missing and we are root; otherwise the
# broker tests fail loudly naming what to install.
broker-deps:
	@if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing mosquitto with apt-get"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto) >/dev/null; \
	  else \
	    echo "mosquitto is missing: install it (apt-get install mosquitto) as root" >&2; \
	  fi; \
	fi

# fuse3 (fusermount3, libfuse3) for the power-cut tests: apt-get when missing and root.
fuse-deps:
	@if ! command -v fusermount3 >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing fuse3 with apt-get"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fuse3) >/dev/null; \
	  else echo "fuse3 is missing: install it (apt-get install fuse3) as root" >&2; fi; \
	fi

# Headless Chromium and its WebDriver for the worklist's browser test (tests/findings/
# test_worklist_browser.py): apt-get when missing and root; the test fails under CI without.
browser-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium and chromium-driver with apt-get"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null; \
	  else echo "chromium is missing: install it (apt-get install chromium chromium-driver) as root" >&2; fi; \
	fi

## make test: install everything, then lint, types, layer contracts and every test.
test: $(STAMP) broker-deps fuse-deps browser-deps check pytest

pytest: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider -n 2 --durations=15

## make check: ruff, mypy --strict, import-linter contracts.
check: lint types layers

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy
	VENV=$(VENV) sh firmware/typecheck.sh

layers: $(STAMP)
	$(BIN)/lint-imports

## make demo: the whole product on the virtual rig (emulated devices, TLS broker, receiver).
demo: $(SIM_STAMP) broker-deps
	$(BIN)/narhub demo

## make bench: every benchmark, JSON on stdout.
bench: $(STAMP)
	$(BIN)/narhub bench all --json

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
