# SPDX-License-Identifier: Apache-2.0
# smime-milter: two commands on a fresh Debian 12 machine (as root, or with sudo):
#   make demo   installs what it needs, builds, runs the milter behind a private Postfix,
#               sends one message and shows it signed and verified by openssl cms
#   make test   installs what it needs and runs every test (unit + real Postfix)
SWIFT      ?= swift
BUILD_DIR  ?= .build
CONFIG     ?= debug
BIN         = $(BUILD_DIR)/$(CONFIG)/smime-milter
PYTEST     ?= python3 -m pytest
# The integration test files run on this many pytest-xdist workers, each file whole on one worker
# (its module-scoped Postfix rig is built once); 0 runs them in one process. The 15 slowest are
# listed at the end (where CI time goes).
PYTEST_WORKERS ?= 2
INTEGRATION_TESTS = SMIME_MILTER_BIN=$(abspath $(BIN)) $(PYTEST) -v --durations=15 -n $(PYTEST_WORKERS) --dist loadfile Tests/integration

.PHONY: all deps build release test unit-test integration-test demo clean

all: build

deps:
	bash scripts/install-deps.sh

build: deps
	$(SWIFT) build -c $(CONFIG)

release:
	$(SWIFT) build -c release

unit-test: deps
	$(SWIFT) test

integration-test: build
	$(INTEGRATION_TESTS)

test: deps
	$(SWIFT) build -c $(CONFIG)
	$(SWIFT) test
	$(INTEGRATION_TESTS)
	$(MAKE) fuzz-smoke
	$(MAKE) sanitize-ci

demo: build
	SMIME_MILTER_BIN=$(abspath $(BIN)) bash scripts/demo.sh

clean:
	rm -rf $(BUILD_DIR) dist

# make deb, deb-lint, package-test; make bench (kept last: their targets must not become the default)
include packaging/Makefile.deb.mk
include bench.mk
include fuzz.mk
include sanitize.mk
