#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`make bench`: measure smime-milter against the issue-6 targets and write docs/performance.md.

Usage (as root, after `swift build -c release`):
    python3 scripts/bench.py [--quick] [--out docs/performance.md] [--skip-micro] [--skip-e2e]

One run does, in order:
  1. `openssl speed -multi 2 rsa2048 ecdsap256`: the machine's physical limit for the signatures.
  2. milter-load against its own accept-all milter (`--serve-accept-all`): the load generator's
     ceiling, which must be at least 3x the rates it reports for the real milter.
  3. milter-load against smime-milter, inet and unix sockets: sign-rsa, sign-ecdsa, verify
     (alice-signed mail from an external client) and pass-through, by concurrency; message sizes
     100 KB, 1 MB, 10 MB; a 100 MB message of 7-bit and one of 8-bit text (RSS growth, fresh
     milter each); 200 sessions of 1 MB. Keys on a SoftHSM2 token. Sign + encrypt with the
     recipient certificate in a SQLite and in a PostgreSQL store (bench_store.py).
  4. End to end: smtp-source -> private Postfix (Tests/integration/rig.py) -> smtp-sink, 2 KB,
     without milter, with smime-milter over inet and unix, RSA and ECDSA, in interleaved rounds.
  5. The micro-benchmarks of the Benchmarks/ package (ordo-one/benchmark).
  6. A CPU profile of the milter signing ECDSA at concurrency 8 (perf, when it works here).
Every figure in the document is one that this run printed; the raw rows go to
docs/performance.csv and docs/performance-e2e.csv, the chart to docs/performance.svg.
The whole run is bounded: about 12 minutes (--quick: under 3), builds not counted.

The jobs live in their own files: bench_run.py runs the cases (`Bench`), bench_targets.py computes
the targets from the rows, bench_report.py writes the document; this file only sequences them.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "Tests" / "integration"))
import bench_per_core  # noqa: E402  (figures per core)
import bench_store  # noqa: E402  (PostgreSQL store beside SQLite)
from bench_report import write_document  # noqa: E402
from bench_run import PKI_SCRIPT, Bench, MilterProcess, log, openssl_speed  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK") == "1")
    ap.add_argument("--out", default=str(REPO / "docs" / "performance.md"))
    ap.add_argument("--build-dir", default=str(REPO / ".build" / "release"))
    ap.add_argument("--skip-micro", action="store_true")
    ap.add_argument("--skip-e2e", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    started = time.monotonic()
    b = Bench(args)
    log(f"work directory {b.work}{' (quick)' if b.quick else ''}")
    pki = b.work / "pki"
    subprocess.run(["python3", str(PKI_SCRIPT), str(pki)], check=True, timeout=120, stdout=subprocess.DEVNULL)
    inet = MilterProcess(b.milter_bin, b.work, pki, "inet", "sv")
    unix = MilterProcess(b.milter_bin, b.work, pki, "unix", "sv")
    speed, e2e, micro = {}, [], ""
    try:
        speed = openssl_speed(1 if b.quick else 3)
        log("load generator ceiling")
        b.ceiling()
        inet.start()
        unix.start()
        log(f"smime-milter Mode {inet.mode}: matrix")
        b.milter_matrix(inet, unix)
        log("figures per core")
        bench_per_core.run(b, inet)
        unix.stop()
        log("profile")
        b.profile(inet)
        log("large messages")
        b.large(inet)
        inet.stop()
        log("keys on a SoftHSM2 token")
        b.softhsm(pki)
        log("certificate store: PostgreSQL beside SQLite")
        try:
            bench_store.run(b, pki)
        except Exception as e:  # a broken database must not cost the rest of the run
            b.errors.append(f"certificate store rows: {e}")
        if not args.skip_e2e:
            log("end to end through Postfix")
            e2e = b.end_to_end()
        if not args.skip_micro:
            micro = b.micro(pki)
        write_document(b, speed, e2e, micro, started, Path(args.out))
    finally:
        inet.stop()
        unix.stop()
        if not args.keep:
            shutil.rmtree(b.work, ignore_errors=True)
    log(f"done in {time.monotonic() - started:.0f} s; {len(b.errors)} error(s)")
    for e in b.errors:
        log(f"error: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
