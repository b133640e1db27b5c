# SPDX-License-Identifier: Apache-2.0
# make bench: performance measurements (issue 6). Included from the Makefile:
#     include bench.mk
# Writes docs/performance.md, docs/performance.csv, docs/performance-e2e.csv, docs/performance.svg.
# BENCH_QUICK=1 runs the reduced matrix (under 3 minutes once built). Needs root (private Postfix).
BENCH_QUICK ?=
BENCH_ARGS  ?=

.PHONY: bench bench-build bench-deps

# perf gives the CPU profile of the milter where a target is missed; without it the profile
# section says so and the rest runs.
bench-deps: deps
	@command -v perf >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q linux-perf \
		|| echo "bench: linux-perf not installed; no profile"

bench-build: bench-deps
	$(SWIFT) build -c release
	cd Benchmarks && $(SWIFT) package --allow-writing-to-package-directory benchmark list

bench: bench-build
	BENCH_QUICK=$(BENCH_QUICK) python3 scripts/bench.py $(if $(filter 1,$(BENCH_QUICK)),--quick,) $(BENCH_ARGS)
