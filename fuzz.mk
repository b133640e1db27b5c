# SPDX-License-Identifier: Apache-2.0
# make fuzz, fuzz-smoke, fuzz-build: the libFuzzer targets of Fuzz/ (a separate package, so the
# main package's build and tests never build them). Included from the Makefile:
#     include fuzz.mk
# FUZZ_SECONDS per target (default 300) for `make fuzz`; `make fuzz-smoke` (run by `make test`)
# gives each target FUZZ_SMOKE_SECONDS. A finding fails and leaves the input in test-out/fuzz/.
FUZZ_SECONDS       ?= 300
FUZZ_SMOKE_SECONDS ?= 25
FUZZ_BUILD_DIR     ?= .build-fuzz
FUZZ_TARGETS       ?=

.PHONY: fuzz fuzz-smoke fuzz-build

FUZZ_ALL_TARGETS = FuzzMIME FuzzSignable FuzzAddress FuzzVerify FuzzConfig FuzzDecrypt

# One product at a time: a plain build of the package would also build the main package's
# executables (and their dependencies) with the fuzzer flags, which nothing here runs.
fuzz-build: deps
	for target in $(FUZZ_ALL_TARGETS); do \
		$(SWIFT) build --package-path Fuzz --scratch-path $(FUZZ_BUILD_DIR) -c release \
			-Xswiftc -sanitize=fuzzer,address --product $$target || exit 1; \
	done

fuzz: fuzz-build
	FUZZ_BIN=$(abspath $(FUZZ_BUILD_DIR))/release bash scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	FUZZ_BIN=$(abspath $(FUZZ_BUILD_DIR))/release bash scripts/fuzz.sh $(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)
