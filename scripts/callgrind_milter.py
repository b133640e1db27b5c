#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Instructions per message of smime-milter under milter-load, counted by valgrind's callgrind.

Instruction counts repeat for the same binary and inputs whatever else the machine is doing, so
this is how CPU savings are found and proved on a shared, noisy machine (wall-clock rates are not).
The milter runs under `valgrind --tool=callgrind` on a unix socket; milter-load sends a warm-up,
the counters are zeroed (`callgrind_control --zero`), milter-load sends N messages at concurrency 1,
the counters are dumped, and the total divided by N is the milter's instructions per message
(libmilter, the protocol, collection, policy, CMS, edits, the log line: everything in the process).

Usage (release build first: `swift build -c release`):
    python3 scripts/callgrind_milter.py [--mode sign-ecdsa|sign-rsa|verify|pass-through]
        [--messages 300] [--size 2K] [--socket unix|inet] [--keep DIR] [--annotate 30]
The test PKI comes from Tests/fixtures/make_test_pki.py. Prints one line per mode:
    MODE SIZE: N messages, I instructions, I/N per message
With --annotate K, also the K functions with the most inclusive/self cost (callgrind_annotate).
"""
from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(endpoint: str, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the milter exited ({proc.returncode}) before listening")
        try:
            if endpoint.startswith("unix:"):
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(endpoint[5:])
            else:
                port = int(endpoint.split(":")[1].split("@")[0])
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    pass
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("the milter did not start listening")


def callgrind_control(args: list[str], pid: int) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=300)


def load(load_bin: Path, endpoint: str, mode: str, size: str, n: int, message: Path | None) -> str:
    cmd = [str(load_bin), "--socket", endpoint, "--mode", mode, "--concurrency", "1", "--size", size,
           "--messages", str(n)]
    if message is not None:
        cmd += ["--message", str(message)]
    if mode.startswith("sign"):
        cmd.append("--expect-signed")
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if cp.returncode != 0:
        raise SystemExit(f"milter-load failed: {(cp.stdout + cp.stderr)[-600:]}")
    return cp.stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", action="append", help="repeatable; default sign-ecdsa and sign-rsa")
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--size", default="2K")
    ap.add_argument("--socket", choices=["unix", "inet"], default="unix")
    ap.add_argument("--build-dir", default=str(REPO / ".build" / "release"))
    ap.add_argument("--milter-bin", help="profile this smime-milter binary (default: the build's)")
    ap.add_argument("--keep", help="keep the callgrind output files in this directory")
    ap.add_argument("--annotate", type=int, default=0)
    args = ap.parse_args()
    build = Path(args.build_dir)
    load_bin = build / "milter-load"
    work = Path(tempfile.mkdtemp(prefix="smime-callgrind."))
    # valgrind 3.19 cannot read the DWARF 5 that swiftc writes ("Possibly corrupted debuginfo
    # file"): profile a copy without debug information; the symbol table keeps function names.
    milter_bin = work / "smime-milter"
    subprocess.run(["objcopy", "--strip-debug", args.milter_bin or str(build / "smime-milter"), str(milter_bin)],
                   check=True)
    pki = work / "pki"
    subprocess.run([sys.executable, str(REPO / "Tests" / "fixtures" / "make_test_pki.py"), str(pki)], check=True,
                   capture_output=True)
    modes = args.mode or ["sign-ecdsa", "sign-rsa"]
    signed: Path | None = None
    for mode in modes:
        d = work / mode
        d.mkdir()
        endpoint = f"unix:{d / 'milter.sock'}" if args.socket == "unix" else f"inet:{free_port()}@127.0.0.1"
        (d / "signing.table").write_text("alice@example.com alice detached\nbob@example.com bob detached\n")
        conf = d / "milter.conf"
        conf.write_text(f"Socket {endpoint}\nSocketMode 0660\nMode sv\nInternalHosts 127.0.0.1\n"
                        f"CertificateDir {pki / 'certs'}\nSigningTable {d / 'signing.table'}\n"
                        f"TrustAnchors {pki / 'root.pem'}\nLogLevel warning\nSpoolDirectory {d / 'spool'}\n")
        message = None
        if mode == "verify":
            if signed is None:
                # A message signed by the milter itself (alice, RSA), run natively once.
                plain = subprocess.Popen([str(milter_bin), "run", "--config", str(conf)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
                try:
                    wait_listening(endpoint, plain)
                    subprocess.run([str(load_bin), "--socket", endpoint, "--mode", "sign-rsa", "--concurrency", "1",
                                    "--size", args.size, "--messages", "1", "--save", str(work / "signed"),
                                    "--save-count", "1"], check=True, capture_output=True, timeout=120)
                finally:
                    plain.terminate()
                    plain.wait(timeout=30)
                signed = sorted((work / "signed").glob("*.eml"))[0]
            message = signed
        out = d / "callgrind.out"
        proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p",
                                 str(milter_bin), "run", "--config", str(conf)],
                                stdout=subprocess.DEVNULL, stderr=open(d / "valgrind.log", "wb"))
        try:
            wait_listening(endpoint, proc, 300)
            load(load_bin, endpoint, mode, args.size, args.warmup, message)
            callgrind_control(["--zero"], proc.pid)
            result = load(load_bin, endpoint, mode, args.size, args.messages, message)
            callgrind_control(["--dump=measured"], proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=300)
        # The dump taken on request is callgrind.out.PID.1; callgrind.out.PID is what ran after it.
        dump = next(iter(sorted(d.glob("callgrind.out.*.1"))), None)
        if dump is None:
            raise SystemExit(f"no callgrind dump in {d}")
        total = 0
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
                break
        print(f"{mode} {args.size} {args.socket}: {args.messages} messages, {total} instructions, "
              f"{total // args.messages} per message   [{result.splitlines()[0] if result else ''}]", flush=True)
        if args.annotate:
            ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", str(dump)], capture_output=True, text=True)
            print("\n".join(ann.stdout.splitlines()[:args.annotate + 25]))
            ann = subprocess.run(["callgrind_annotate", str(dump)], capture_output=True, text=True)
            print("\n".join(ann.stdout.splitlines()[:args.annotate + 25]))
        if args.keep:
            Path(args.keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(dump, Path(args.keep) / f"callgrind.{mode}.{args.size}.{args.socket}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
