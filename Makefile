# narhub: the two commands are `make test` and `make demo` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test
SIM_STAMP := $(VENV)/.installed-sim

.PHONY: test demo check lint types layers pytest bench broker-deps fuse-deps postgres-deps bluez-deps feedback-deps browser-deps clean

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

# The Mosquitto broker and what builds its identity plugin (region/mosquitto/narhub_identity.c:
# a C compiler, the plugin headers, OpenSSL's): installed with apt-get when missing and we are
# root; otherwise the broker tests fail loudly naming what to install.
BROKER_PACKAGES := mosquitto mosquitto-dev libmosquitto-dev libssl-dev gcc libc6-dev
broker-deps:
	@if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ] \
	    || [ ! -f /usr/include/mosquitto_broker.h ] || [ ! -f /usr/include/mosquitto.h ] \
	    || [ ! -f /usr/include/openssl/x509.h ] || ! command -v cc >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing $(BROKER_PACKAGES) with apt-get"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROKER_PACKAGES)) >/dev/null; \
	  else \
	    echo "missing: install $(BROKER_PACKAGES) (apt-get install ...) as root" >&2; \
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

# PostgreSQL (initdb, pg_ctl; libpq for psycopg) for the receivers' shared state: the tests
# start a private cluster on a unix socket. apt-get when missing and root.
postgres-deps:
	@if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing postgresql with apt-get"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null; \
	  else echo "postgresql is missing: install it (apt-get install postgresql) as root" >&2; fi; \
	fi

# dbus-daemon for the virtual BlueZ (a private bus the BLE tests start): apt-get when missing
# and root; otherwise those tests fail loudly under CI naming what to install.
bluez-deps:
	@if ! command -v dbus-daemon >/dev/null 2>&1 && [ ! -x /usr/bin/dbus-daemon ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing dbus (dbus-daemon) with apt-get"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dbus-daemon) >/dev/null; \
	  else echo "dbus-daemon is missing: install it (apt-get install dbus-daemon) as root" >&2; fi; \
	fi

# The patient's feedback (docs/feedback.md): espeak-ng speaks (its data has the Swedish voice),
# sox measures the spoken WAV in the tests, DejaVu Sans has the display's Swedish letters.
# apt-get when missing and root; otherwise the feedback tests fail naming what to install.
FEEDBACK_DEBS := espeak-ng sox fonts-dejavu-core
feedback-deps:
	@if ! command -v espeak-ng >/dev/null 2>&1 || ! command -v sox >/dev/null 2>&1 \
	    || [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing $(FEEDBACK_DEBS) with apt-get"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(FEEDBACK_DEBS)) >/dev/null; \
	  else echo "feedback tests need: apt-get install $(FEEDBACK_DEBS) (as root)" >&2; fi; \
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
test: $(STAMP) broker-deps fuse-deps postgres-deps bluez-deps feedback-deps browser-deps check pytest

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
