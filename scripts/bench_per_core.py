# SPDX-License-Identifier: Apache-2.0
"""`make bench`: figures per core, a job of its own (run by scripts/bench.py).

Detached signing with RSA-2048 and P-256 (2 KB, 10 KB, 100 KB, 1 MB) and verification of RSA-signed messages of 10 KB,
100 KB and 1 MB, each at concurrency 1 over the inet socket with the milter's CPU time read from
/proc: messages per second per core of milter CPU is 1,000,000 / (CPU microseconds per message).
One session keeps the milter on at most one core at a time, so the figure does not depend on how
the scheduler spreads eight connections over two cores, and the load generator's own share does
not count against the milter.
"""
from __future__ import annotations

FLOOR_LABEL = "per-core-libmilter-floor-2K"

# (label, mode, size of the generated or signed message)
CASES = ([(f"per-core-sign-{alg}-{size}", f"sign-{alg}", size)
          for alg in ("rsa", "ecdsa") for size in ("2K", "10K", "100K", "1M")]
         + [(f"per-core-verify-{size}", "verify", size) for size in ("10K", "100K", "1M")])


def run(bench, milter) -> None:
    """Adds the per-core rows to `bench.rows` (labels `per-core-*`)."""
    signed: dict[str, Path] = {}
    for label, mode, size in CASES:
        extra: list[str] = []
        if mode == "verify":
            if size not in signed:
                out = bench.work / f"per-core-signed-{size}"
                bench.load(f"per-core-presign-{size}", milter.endpoint, "sign-rsa", 1, size=size, messages=1,
                           extra=["--save", str(out), "--save-count", "1"])
                bench.rows = [r for r in bench.rows if r["label"] != f"per-core-presign-{size}"]
                files = sorted(out.glob("*.eml"))
                if not files:
                    bench.errors.append(f"{label}: could not make the signed {size} message")
                    continue
                signed[size] = files[0]
            extra = ["--message", str(signed[size])]
        bench.load(label, milter.endpoint, mode, 1, size=size, seconds=bench.duration, pid=milter.pid, extra=extra)
    libmilter_floor(bench)


def libmilter_floor(bench) -> None:
    """libmilter's own CPU per 2 KB message: scripts/null-milter.c (same libmilter, same callbacks and
    protocol steps as smime-milter, does nothing) under the same one-session load (row FLOOR_LABEL),
    and with eight sessions on each socket kind (rows null-milter-2K-KIND-c8): the floor under the
    concurrency-8 verify rate, which the verify target sets against CMS_verify in-process."""
    from bench_run import free_port, stop
    for kind in ("inet", "unix"):
        endpoint = f"inet:{free_port()}@127.0.0.1" if kind == "inet" else f"unix:{bench.work / 'null-milter.sock'}"
        proc = None
        try:
            proc = bench.start_null_milter(endpoint)
            if proc is None:
                return
            if kind == "inet":
                bench.load(FLOOR_LABEL, endpoint, "pass-through", 1, size="2K", seconds=bench.duration, pid=proc.pid)
            bench.load(f"null-milter-2K-{kind}-c8", endpoint, "pass-through", 8, size="2K", seconds=bench.duration,
                       pid=proc.pid)
        except Exception as e:  # the floor is information; its failure must not cost the other rows
            bench.errors.append(f"null-milter ({kind}): {e}")
        finally:
            stop(proc)


def section(bench, cpu_per_message_us) -> list[str]:
    """The markdown section of the per-core rows, or nothing when none ran."""
    rows = [(label, bench.row(label)) for label, _, _ in CASES] + [(FLOOR_LABEL, bench.row(FLOOR_LABEL))]
    rows = [(label, r) for label, r in rows if r is not None]
    if not rows:
        return []
    lines = ["## Figures per core\n",
             "One session (concurrency 1, inet) per case; the milter's CPU time from /proc. Per core: "
             "1,000,000 / (milter CPU microseconds per message). Signing: milter-load's generated 7-bit text, "
             "signed detached by alice (RSA-2048) or bob (P-256). Verification: messages signed by alice "
             "(RSA-2048, signer and intermediate certificate in the signature). libmilter-floor: "
             "scripts/null-milter.c, a C milter on the same libmilter with smime-milter's callbacks and protocol "
             "steps that does nothing, under the same load (milter-load pass-through): what libmilter costs "
             "before any code of ours runs.\n",
             "| case | message size | milter CPU per message (us) | messages/s per core | MB/s per core | msg/s (one session) |",
             "|---|---|---|---|---|---|"]
    for label, r in rows:
        us = cpu_per_message_us(r)
        size = int(r["size_bytes"])
        per_core = 1e6 / us if us else None
        lines.append(f"| {label.removeprefix('per-core-')} | {size} | {us:.0f} | {per_core:.0f} | "
                     f"{per_core * size / 1e6:.2f} | {r['msg_per_s']} |" if us else
                     f"| {label.removeprefix('per-core-')} | {size} | - | - | - | {r['msg_per_s']} |")
    lines.append("")
    return lines
