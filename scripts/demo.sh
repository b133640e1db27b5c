#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make demo: a private Postfix with smime-milter signs one message; OpenSSL verifies it.
# Non-interactive; needs root (a private Postfix instance) and the packages from
# scripts/install-deps.sh. Uses $SMIME_MILTER_BIN, else .build/release or .build/debug,
# building a debug binary first if none exists. Cleans up everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${SMIME_MILTER_BIN:-}" ] && [ ! -x .build/release/smime-milter ] && [ ! -x .build/debug/smime-milter ]; then
    echo "demo: building smime-milter (swift build)"
    swift build
fi
exec python3 scripts/demo.py < /dev/null
