#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""One SMTP session through a private Postfix with smime-milter, over an inet and a unix socket.

Issue 3 asks that one SMTP session through an inet milter socket is not held to ~20 msg/s by
Nagle's algorithm and delayed ACKs. This sends N signed messages (a) as N single-message sessions
from `smtp-source -s 1` and (b) in one SMTP session with several messages (Python smtplib, no
pipelining), through the rig in Tests/integration/rig.py, with the milter on inet, then on a
unix socket, and prints msg/s for each. Needs root (private Postfix). Usage:
    SMIME_MILTER_BIN=.build/release/smime-milter python3 scripts/bench_one_session.py [N]
"""
from __future__ import annotations

import grp
import os
import re
import smtplib
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "integration"))
import rig as rigmod  # noqa: E402


def run(r: rigmod.Rig, label: str, n: int) -> None:
    t = time.monotonic()
    subprocess.run(["smtp-source", "-s", "1", "-m", str(n), "-l", "2048", "-f", "alice@example.com",
                    "-t", "bob@sink.test", f"127.0.0.1:{r.postfix.int_port}"], check=True, timeout=600)
    print(f"{label}: smtp-source -s 1, {n} sessions of one message: {n / (time.monotonic() - t):.1f} msg/s")
    msg = ("From: alice@example.com\r\nTo: bob@sink.test\r\nSubject: one session\r\n\r\n"
           + "hello world\r\n" * 150).encode()
    with smtplib.SMTP("127.0.0.1", r.postfix.int_port, timeout=60) as s:
        s.ehlo()
        t = time.monotonic()
        for _ in range(n):
            s.sendmail("alice@example.com", ["bob@sink.test"], msg)
        print(f"{label}: one SMTP session of {n} messages: {n / (time.monotonic() - t):.1f} msg/s")


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    r = rigmod.Rig(milter_bin=rigmod.milter_binary())
    r.start()
    unix = None
    try:
        run(r, "inet", n)
        sock = f"/tmp/smime-milter-one-session-{time.time_ns()}.sock"
        conf = re.sub(r"^Socket .*$", f"Socket unix:{sock}\nSocketMode 0660",
                      r.milter.config_path.read_text(), flags=re.M)
        path = r.milter.config_path.parent / "unix.conf"
        path.write_text(conf)
        unix = subprocess.Popen([str(r.milter.binary), "run", "--config", str(path)], stderr=subprocess.DEVNULL)
        rigmod.wait_until(lambda: Path(sock).exists(), 15, "the unix socket")
        os.chown(sock, -1, grp.getgrnam("postfix").gr_gid)   # 0666 is refused; Postfix's group instead
        r.postfix.postconf(f"smtpd_milters=unix:{sock}", f"non_smtpd_milters=unix:{sock}")
        subprocess.run(["postfix", "-c", str(r.postfix.config_dir), "reload"], check=True, timeout=60)
        time.sleep(2)
        run(r, "unix", n)
    finally:
        if unix:
            unix.terminate()
            unix.wait(timeout=30)
        r.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
