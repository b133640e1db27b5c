#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the libFuzzer targets of Fuzz/ (built by `make fuzz-build` into .build-fuzz).
#
# Usage: scripts/fuzz.sh SECONDS [TARGET...]     (all targets when none is named)
#
# For each target: first the inputs in Fuzz/Regressions/TARGET/ (each once; a crash or a leak
# fails), then SECONDS of fuzzing from the committed seeds (Fuzz/Corpus/...) plus a few messages
# of ../shared/corpus when it is there, into a working corpus under test-out/fuzz/TARGET/corpus
# (kept between runs, never committed). A finding stops the target and fails the run; the input
# is left in test-out/fuzz/TARGET/ (crash-*, leak-*, timeout-*, oom-*) with the log beside it.
# Reproduce one with: .build-fuzz/release/TARGET test-out/fuzz/TARGET/crash-...
set -u
seconds=${1:?usage: fuzz.sh SECONDS [TARGET...]}
shift
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${FUZZ_BIN:-$root/.build-fuzz/release}
out=${FUZZ_OUT:-$root/test-out/fuzz}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(FuzzMIME FuzzSignable FuzzAddress FuzzVerify FuzzConfig FuzzDecrypt)
corpus=$root/../shared/corpus

# Whole stacks through libcrypto; a leak is a finding. The symbolizer comes with the toolchain.
# Swift's own backtracer would race AddressSanitizer's report on a trap.
export SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no}
export ASAN_OPTIONS=${ASAN_OPTIONS:-fast_unwind_on_malloc=0:detect_leaks=1:allocator_may_return_null=1}
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
    sym=$(command -v llvm-symbolizer || true)
    [ -n "$sym" ] || sym=$(dirname "$(command -v swift)")/llvm-symbolizer
    [ -x "$sym" ] && export ASAN_SYMBOLIZER_PATH=$sym
fi

# Messages of ../shared/corpus used as extra seeds (not committed: other projects' test data).
extra_seeds() {
    local dir=$1; shift
    mkdir -p "$dir"
    [ -d "$corpus" ] || return 0
    for f in "$@"; do [ -f "$corpus/$f" ] && cp "$corpus/$f" "$dir/"; done
    return 0
}

failed=()
for t in "${targets[@]}"; do
    exe=$bin/$t
    if [ ! -x "$exe" ]; then echo "fuzz: $exe is missing (make fuzz-build)"; failed+=("$t"); continue; fi
    work=$out/$t
    mkdir -p "$work/corpus"
    dict=$root/Fuzz/mime.dict
    max_len=4096
    seeds=("$root/Fuzz/Corpus/$t")
    case $t in
        FuzzSignable) seeds=("$root/Fuzz/Corpus/FuzzMIME") ;;
        FuzzConfig) dict=$root/Fuzz/config.dict ;;
        FuzzVerify) max_len=12000 ;;
        FuzzDecrypt) max_len=12000 ;;
    esac
    case $t in
        FuzzMIME|FuzzSignable|FuzzVerify)
            extra_seeds "$work/extra-seeds" \
                comm-central/mailnews/test/data/smime/alice.dsig.SHA256.multipart.eml \
                comm-central/mailnews/test/data/smime/alice.sig.SHA256.opaque.eml \
                comm-central/mailnews/test/data/smime/alice.dsig.SHA256.multipart.bad.eml \
                comm-central/mailnews/test/data/smime/alice.env.eml \
                bc-java/mail/src/test/resources/org/bouncycastle/mail/smime/test/validator.revoked.eml
            seeds+=("$work/extra-seeds") ;;
        FuzzDecrypt)
            extra_seeds "$work/extra-seeds" \
                comm-central/mailnews/test/data/smime/alice.env.eml \
                comm-central/mailnews/test/data/smime/alice.sig.SHA256.opaque.env.eml \
                comm-central/mailnews/test/data/smime/alice.env.sig.SHA256.opaque.eml \
                comm-central/mailnews/test/data/smime/alice.env.dsig.SHA256.multipart.eml \
                comm-central/mailnews/test/data/smime-manual/alice.dsig.SHA256.multipart.env.dsig.eml \
                comm-central/mailnews/test/data/smime-interop/fran-oaep_ossl.env \
                comm-central/mailnews/test/data/smime-interop/fran-ec_ossl-aes128-sha256.env
            seeds+=("$work/extra-seeds") ;;
    esac
    common=(-dict="$dict" -max_len=$max_len -timeout=20 -rss_limit_mb=2048 -artifact_prefix="$work/")

    if [ -d "$root/Fuzz/Regressions/$t" ]; then
        inputs=("$root/Fuzz/Regressions/$t"/*)
        if ! "$exe" "${common[@]}" "${inputs[@]}" > "$work/regressions.log" 2>&1; then
            echo "fuzz: $t FAILED on a regression input (Fuzz/Regressions/$t); log: $work/regressions.log"
            grep -E "ERROR|SUMMARY|Running:" "$work/regressions.log" | tail -5
            failed+=("$t")
            continue
        fi
        echo "fuzz: $t: ${#inputs[@]} regression input(s) pass"
    fi

    echo "fuzz: $t for ${seconds}s"
    if "$exe" "${common[@]}" -max_total_time="$seconds" -print_final_stats=1 \
        "$work/corpus" "${seeds[@]}" > "$work/fuzz.log" 2>&1; then
        grep -E "^stat::number_of_executed_units|^#[0-9]+.*DONE" "$work/fuzz.log" | tail -2 | sed "s/^/fuzz: $t: /"
    else
        echo "fuzz: $t FOUND A PROBLEM; log: $work/fuzz.log"
        grep -E "ERROR|SUMMARY|Fatal error|Test unit written" "$work/fuzz.log" | tail -6
        ls "$work" | grep -E "^(crash|leak|timeout|oom|slow-unit)-" | sed "s|^|fuzz: artifact $work/|"
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: failed: ${failed[*]}"
    exit 1
fi
echo "fuzz: all targets clean"
