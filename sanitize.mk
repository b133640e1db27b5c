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

# make sanitize-load: the load test (milter-load against the milter) and the hostile-inbound
# test (through real Postfix) against a milter built with AddressSanitizer + LeakSanitizer.
# Every report goes to a file under $(SANITIZE_LOAD_OUT) (log_path), and one such file fails
# the run. Left out: the RSS bound of the 1,000-connection test, which would measure ASan's
# shadow memory and quarantine, not the milter.
SANITIZE_LOAD_OUT   ?= test-out/sanitize-load
SANITIZE_LOAD_TESTS ?= Tests/integration/test_load.py Tests/integration/test_hostile_inbound.py

.PHONY: sanitize sanitize-address sanitize-thread sanitize-ci sanitize-load

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

sanitize-load: deps
	$(SWIFT) build --sanitize=address --scratch-path $(SANITIZE_ASAN_DIR) --product smime-milter
	$(SWIFT) build --product milter-load
	rm -rf $(SANITIZE_LOAD_OUT) && mkdir -p $(SANITIZE_LOAD_OUT)
	ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0:abort_on_error=0:log_path=$(abspath $(SANITIZE_LOAD_OUT))/asan \
	LSAN_OPTIONS=suppressions=$(abspath Tests/sanitizers/lsan.supp):print_suppressions=0 \
	SWIFT_BACKTRACE=enable=no \
	SMIME_MILTER_BIN=$(abspath $(SANITIZE_ASAN_DIR))/debug/smime-milter \
	MILTER_LOAD_BIN=$(abspath $(BUILD_DIR))/debug/milter-load \
		$(PYTEST) -v $(SANITIZE_LOAD_TESTS) -k 'not memory_under_a_thousand'
	@if ls $(SANITIZE_LOAD_OUT)/asan.* >/dev/null 2>&1; then \
		cat $(SANITIZE_LOAD_OUT)/asan.*; echo "sanitize-load: AddressSanitizer/LeakSanitizer reports above"; exit 1; \
	else echo "sanitize-load: no AddressSanitizer or LeakSanitizer report"; fi
