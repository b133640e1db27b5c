#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Packet timings between Postfix and smime-milter over an inet socket, from a loopback capture.

Delayed-ACK stalls (Postfix writes milter packets with Nagle's algorithm on) show as gaps of about
40 ms inside one milter connection whatever the machine's load, so this looks for them where
throughput figures would be noise. Starts the private Postfix rig (Tests/integration/rig.py) with
the milter on inet, captures the milter port with tcpdump (capture filter on that port only),
sends N one-message SMTP sessions with smtp-source, then prints the largest gaps inside each milter
connection (which side waited for which packet) and one connection packet by packet.
Needs root (private Postfix) and tcpdump (Debian package tcpdump). Usage:
    SMIME_MILTER_BIN=.build/release/smime-milter python3 scripts/milter_packet_gaps.py [N]
"""
from __future__ import annotations

import collections
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "integration"))
import rig as rigmod  # noqa: E402


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    r = rigmod.Rig(milter_bin=rigmod.milter_binary())
    r.start()
    work = Path(tempfile.mkdtemp(prefix="smime-gaps."))
    cap = work / "milter.pcap"
    try:
        port = r.milter.port
        td = subprocess.Popen(["tcpdump", "-i", "lo", "-n", "-U", "-w", str(cap), f"tcp port {port}"],
                              stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        t = time.monotonic()
        subprocess.run(["smtp-source", "-s", "1", "-m", str(n), "-l", "2048", "-f", "alice@example.com",
                        "-t", "bob@sink.test", f"127.0.0.1:{r.postfix.int_port}"], check=True, timeout=600)
        elapsed = time.monotonic() - t
        time.sleep(1)
        td.terminate()
        td.wait(timeout=30)
    finally:
        r.stop()
    print(f"{n} one-message SMTP sessions in {elapsed:.2f} s ({n / elapsed:.1f} msg/s)")
    text = subprocess.run(["tcpdump", "-r", str(cap), "-n", "-tt"], capture_output=True, text=True).stdout
    conns: dict[int, list] = collections.defaultdict(list)
    for line in text.splitlines():
        m = re.match(r"([\d.]+) IP [\d.]+\.(\d+) > [\d.]+\.(\d+): Flags \[([^\]]*)\].*length (\d+)", line)
        if not m:
            continue
        t, sp, dp = float(m.group(1)), int(m.group(2)), int(m.group(3))
        to_milter = dp == port
        conns[sp if to_milter else dp].append((t, "mta>milter" if to_milter else "milter>mta", m.group(4),
                                               int(m.group(5))))
    gaps = []
    for c, pk in conns.items():
        for i in range(1, len(pk)):
            gaps.append((pk[i][0] - pk[i - 1][0], c, pk[i - 1], pk[i]))
    gaps.sort(reverse=True)
    print(f"{len(conns)} milter connections, {sum(len(p) for p in conns.values())} packets; "
          f"gaps over 30 ms: {sum(1 for g in gaps if g[0] > 0.030)}")
    for g, c, a, b in gaps[:10]:
        print(f"  {g * 1000:7.2f} ms in connection :{c}: after {a[1]} [{a[2]}] {a[3]} B, then {b[1]} [{b[2]}] {b[3]} B")
    if conns:
        pk = sorted(conns.values(), key=len)[len(conns) // 2]
        print("one connection (ms from SYN, direction, TCP flags, payload bytes):")
        for t, d, fl, ln in pk:
            print(f"  {(t - pk[0][0]) * 1000:8.2f} {d} [{fl}] {ln}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
