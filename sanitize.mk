# SPDX-License-Identifier: Apache-2.0
# make sanitize: the Swift tests under AddressSanitizer + LeakSanitizer and under
# ThreadSanitizer, each in its own scratch path (debug builds of the whole package).
# Included from the Makefile:
#     include sanitize.mk
# Suppressions (Tests/sanitizers/) cover only leaks and races inside the Swift toolchain's
# libraries, each explained there. A report fails the run.
SANITIZE_ASAN_DIR ?= .build-asan
SANITIZE_TSAN_DIR ?= .build-tsan
SANITIZE_FILTER   ?=

# What `make test` runs (CI): the ThreadSanitizer run whole (under 2 minutes once built), and
# the AddressSanitizer run over the MIME and SMIME tests (the parsers and every OpenSSL path;
# the whole ASan run took 7-14 minutes on a loaded two-core machine).
SANITIZE_CI_ASAN_FILTER ?= MIMETests|SMIMETests

.PHONY: sanitize sanitize-address sanitize-thread sanitize-ci

sanitize: sanitize-address sanitize-thread

sanitize-ci:
	$(MAKE) sanitize-address SANITIZE_FILTER='$(SANITIZE_CI_ASAN_FILTER)'
	$(MAKE) sanitize-thread

sanitize-address: deps
	ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0:abort_on_error=0 \
	LSAN_OPTIONS=suppressions=$(abspath Tests/sanitizers/lsan.supp):print_suppressions=0 \
	SWIFT_BACKTRACE=enable=no \
		$(SWIFT) test --sanitize=address --scratch-path $(SANITIZE_ASAN_DIR) \
			$(if $(SANITIZE_FILTER),--filter '$(SANITIZE_FILTER)',)

sanitize-thread: deps
	TSAN_OPTIONS=halt_on_error=0:suppressions=$(abspath Tests/sanitizers/tsan.supp) \
	SWIFT_BACKTRACE=enable=no \
		$(SWIFT) test --sanitize=thread --scratch-path $(SANITIZE_TSAN_DIR) \
			$(if $(SANITIZE_FILTER),--filter '$(SANITIZE_FILTER)',)
