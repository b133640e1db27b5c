# make bench: performance measurements (issue 6). Included from the Makefile:
#     include bench.mk
# Writes docs/performance.md, docs/performance.csv, docs/performance-e2e.csv, docs/performance.svg.
# BENCH_QUICK=1 runs the reduced matrix (under 3 minutes once built). Needs root (private Postfix).
BENCH_QUICK ?=
BENCH_ARGS  ?=

.PHONY: bench bench-build

bench-build: deps
	$(SWIFT) build -c release
	cd Benchmarks && $(SWIFT) package --allow-writing-to-package-directory benchmark list

bench: bench-build
	BENCH_QUICK=$(BENCH_QUICK) python3 scripts/bench.py $(if $(filter 1,$(BENCH_QUICK)),--quick,) $(BENCH_ARGS)
