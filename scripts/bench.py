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
     milter each); 200 sessions of 1 MB.
  4. End to end: smtp-source -> private Postfix (Tests/integration/rig.py) -> smtp-sink, 2 KB,
     without milter, with smime-milter over inet and unix, RSA and ECDSA, in interleaved rounds.
  5. The micro-benchmarks of the Benchmarks/ package (ordo-one/benchmark).
  6. A CPU profile of the milter signing ECDSA at concurrency 8 (perf, when it works here).
Every figure in the document is one that this run printed; the raw rows go to
docs/performance.csv and docs/performance-e2e.csv, the chart to docs/performance.svg.
The whole run is bounded: about 12 minutes (--quick: under 3), builds not counted.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "Tests" / "integration"))
import bench_chart  # noqa: E402
import bench_per_core  # noqa: E402  (figures per core)
import rig as rigmod  # noqa: E402  (the private-Postfix rig and its process helpers)

PKI_SCRIPT = REPO / "Tests" / "fixtures" / "make_test_pki.py"
CMD_TIMEOUT = 600


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


free_port = rigmod.free_port
wait_listening = rigmod.wait_listening
stop = rigmod.terminate


# ---------------------------------------------------------------------------------------------
# 1. openssl speed

def openssl_speed(seconds: int) -> dict:
    cmd = ["openssl", "speed", "-multi", "2", "-seconds", str(seconds), "rsa2048", "ecdsap256"]
    log(" ".join(cmd))
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=CMD_TIMEOUT)
    out = cp.stdout
    rsa = re.search(r"^rsa\s+2048 bits\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", out, re.M)
    ec = re.search(r"^\s*256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", out, re.M)
    if not rsa or not ec:
        raise RuntimeError(f"cannot parse openssl speed output:\n{out}\n{cp.stderr}")
    lines = [line for line in out.splitlines() if re.search(r"sign/s|^rsa |ecdsa \(nistp256\)", line)]
    result = {"command": " ".join(cmd), "rsa_sign": float(rsa.group(1)), "rsa_verify": float(rsa.group(2)),
              "ecdsa_sign": float(ec.group(1)), "ecdsa_verify": float(ec.group(2)), "lines": lines}
    for line in lines:
        print(line)
    return result


# ---------------------------------------------------------------------------------------------
# milters

class MilterProcess:
    """smime-milter with its own configuration on an inet or unix socket."""

    def __init__(self, binary: Path, work: Path, pki: Path, kind: str, mode: str):
        self.binary, self.pki, self.kind, self.mode = binary, pki, kind, mode
        self.dir = work / f"milter-{kind}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.endpoint = (f"inet:{free_port()}@127.0.0.1" if kind == "inet" else f"unix:{self.dir / 'milter.sock'}")
        self.proc: subprocess.Popen | None = None

    def config_text(self, mode: str) -> str:
        (self.dir / "signing.table").write_text("alice@example.com alice detached\nbob@example.com bob detached\n")
        text = (f"Socket {self.endpoint}\nSocketMode 0666\nMode {mode}\nInternalHosts 127.0.0.1\n"
                f"CertificateDir {self.pki / 'certs'}\nSigningTable {self.dir / 'signing.table'}\n"
                f"LogLevel warning\nSpoolDirectory {self.dir / 'spool'}\n")
        if "v" in mode:
            text += f"TrustAnchors {self.pki / 'root.pem'}\n"
        return text

    def start(self) -> None:
        conf = self.dir / "milter.conf"
        conf.write_text(self.config_text(self.mode))
        check = subprocess.run([str(self.binary), "check-config", "--config", str(conf)], capture_output=True,
                               timeout=60)
        if check.returncode != 0 and self.mode != "s":
            log(f"Mode {self.mode} refused by check-config ({check.stderr.decode(errors='replace').strip()[:200]}); "
                "using Mode s")
            self.mode = "s"
            conf.write_text(self.config_text("s"))
        self.log = open(self.dir / "milter.log", "ab")
        self.proc = subprocess.Popen([str(self.binary), "run", "--config", str(conf)], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log, start_new_session=True)
        wait_listening(self.endpoint, self.proc, f"smime-milter ({self.kind})")

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


class TokenMilterProcess(MilterProcess):
    """The milter with identities whose keys are on a PKCS#11 token."""

    token_lines = ""

    def __init__(self, binary: Path, work: Path, pki: Path, kind: str, mode: str):
        super().__init__(binary, work / "token", pki, kind, mode)

    def config_text(self, mode: str) -> str:
        return super().config_text(mode) + self.token_lines


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.build = Path(args.build_dir).resolve()
        self.milter_bin = self.build / "smime-milter"
        self.load_bin = self.build / "milter-load"
        for b in (self.milter_bin, self.load_bin):
            if not b.is_file():
                raise SystemExit(f"{b} is missing: run `swift build -c release` first")
        self.work = Path(tempfile.mkdtemp(prefix="smime-bench."))
        os.chmod(self.work, 0o755)
        self.csv_path = self.work / "milter-load.csv"
        self.rows: list[dict] = []
        self.notes: list[str] = []
        self.errors: list[str] = []
        self.duration = 2 if self.quick else 5

    # -- milter-load -------------------------------------------------------------------------
    def load(self, label: str, endpoint: str, mode: str, concurrency: int, *, size: str = "2K",
             seconds: float | None = None, messages: int | None = None, pid: int | None = None,
             extra: list[str] | None = None) -> dict | None:
        cmd = [str(self.load_bin), "--socket", endpoint, "--mode", mode, "--concurrency", str(concurrency),
               "--size", size, "--csv", str(self.csv_path), "--label", label]
        if seconds is not None:
            cmd += ["--seconds", str(seconds)]
        if messages is not None:
            cmd += ["--messages", str(messages)]
        if pid is not None:
            cmd += ["--milter-pid", str(pid)]
        if mode.startswith("sign"):
            cmd.append("--expect-signed")
        cmd += extra or []
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=CMD_TIMEOUT)
        out = (cp.stdout + cp.stderr).strip()
        print(f"{label}: {out}", flush=True)
        if cp.returncode != 0:
            self.errors.append(f"{label}: exit {cp.returncode}: {out[-400:]}")
        with open(self.csv_path) as f:
            rows = list(csv.DictReader(f))
        row = rows[-1] if rows and rows[-1]["label"] == label else None
        if row is not None:
            self.rows.append(row)
        return row

    def row(self, label: str) -> dict | None:
        return next((r for r in self.rows if r["label"] == label), None)

    # -- 2. ceiling ------------------------------------------------------------------------------
    def ceiling(self) -> None:
        endpoint = f"inet:{free_port()}@127.0.0.1"
        proc = subprocess.Popen([str(self.load_bin), "--serve-accept-all", endpoint], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_listening(endpoint, proc, "accept-all milter")
            for c in ([1, 8, 200] if self.quick else [1, 8, 32, 200]):
                self.load(f"ceiling-2K-c{c}", endpoint, "pass-through", c, seconds=self.duration, pid=proc.pid)
            for size in ["1M", "10M"]:
                self.load(f"ceiling-{size}-c8", endpoint, "pass-through", 8, size=size, seconds=self.duration,
                          pid=proc.pid)
        finally:
            stop(proc)

    # -- 3. the milter ---------------------------------------------------------------------------
    def presign(self, milter: MilterProcess) -> Path:
        out = self.work / "presigned"
        self.load("presign", milter.endpoint, "sign-rsa", 1, messages=1,
                  extra=["--save", str(out), "--save-count", "1"])
        files = sorted(out.glob("*.eml"))
        if not files:
            raise RuntimeError("could not make the alice-signed message for verify mode")
        self.rows = [r for r in self.rows if r["label"] != "presign"]
        self.signed_message = files[0]
        return files[0]

    def milter_matrix(self, inet: MilterProcess, unix: MilterProcess) -> None:
        signed = self.presign(inet)
        # Is verification really happening? The verifier adds Authentication-Results.
        probe = self.work / "verify-probe"
        self.load("verify-probe", inet.endpoint, "verify", 1, messages=1,
                  extra=["--message", str(signed), "--save", str(probe), "--save-count", "1"])
        self.rows = [r for r in self.rows if r["label"] != "verify-probe"]
        probe_files = sorted(probe.glob("*.eml"))
        self.verify_active = bool(probe_files) and b"smime=pass" in probe_files[0].read_bytes()
        if not self.verify_active:
            self.notes.append("verify mode: the milter did not report smime=pass in Authentication-Results for an alice-signed "
                              f"message (Mode {inet.mode}): inbound verification is not in this build, so "
                              "the verify rows measure the milter passing signed mail through unverified.")
        concurrencies = [1, 8, 200] if self.quick else [1, 8, 32, 200]
        modes = ["sign-rsa", "sign-ecdsa", "verify", "pass-through"]
        for mode in modes:
            extra = ["--message", str(signed)] if mode == "verify" else []
            for c in concurrencies:
                self.load(f"{mode}-2K-inet-c{c}", inet.endpoint, mode, c, seconds=self.duration, pid=inet.pid,
                          extra=extra)
            for c in ([8] if self.quick else [8, 32]):
                self.load(f"{mode}-2K-unix-c{c}", unix.endpoint, mode, c, seconds=self.duration, pid=unix.pid,
                          extra=extra)
        # Postfix writes each milter packet separately with Nagle on; with the no-reply steps the
        # milter negotiates, nothing carries the ACK back and delayed ACK stalls every message.
        for kind, m in (("inet", inet), ("unix", unix)):
            self.load(f"sign-ecdsa-2K-{kind}-c8-mta-like-writes", m.endpoint, "sign-ecdsa", 8,
                      seconds=self.duration, pid=m.pid, extra=["--mta-like-writes"])
        # smtp-source, like most SMTP clients, sends one message per SMTP session, and Postfix
        # opens one milter connection per session: the connection's own cost, measured.
        for mode in ("pass-through", "sign-ecdsa"):
            self.load(f"{mode}-2K-inet-c8-conn-per-msg", inet.endpoint, mode, 8, seconds=self.duration,
                      pid=inet.pid, extra=["--messages-per-connection", "1"])
        size_modes = ["sign-ecdsa"] if self.quick else ["sign-ecdsa", "sign-rsa"]
        for mode in size_modes:
            for size in ["100K", "1M", "10M"]:
                self.load(f"{mode}-{size}-inet-c8", inet.endpoint, mode, 8, size=size, seconds=self.duration,
                          pid=inet.pid)

    # -- keys on a PKCS#11 token (SoftHSM2) beside keys in files ------------------------------
    def softhsm(self, pki: Path) -> None:
        """alice (RSA-2048) and bob (EC P-256) again, their keys generated on a SoftHSM2 token:
        the same milter-load modes as the file-key rows, so the two can be compared."""
        import types
        import test_pkcs11 as tok
        why = tok._missing_tools()
        if why:
            self.notes.append(f"SoftHSM rows not measured: {why}")
            return
        token = tok.Token(self.work / "softhsm")
        token.create()
        token.keypair("alice-rsa", "01", "rsa:2048")
        token.keypair("bob-ec", "02", "EC:prime256v1")
        tpki = self.work / "pki-token"
        (tpki / "certs").mkdir(parents=True)
        os.chmod(tpki / "certs", 0o700)
        for name in ("intermediate.pem", "intermediate.key"):
            shutil.copy2(pki / name, tpki / name)
        holder = types.SimpleNamespace(pki_dir=tpki)
        tok.issue_identity(holder, token, "alice", "alice@example.com", "alice-rsa")
        tok.issue_identity(holder, token, "bob", "bob@example.com", "bob-ec")
        pin = self.work / "token.pin"
        pin.write_text(tok.PIN + "\n")
        os.chmod(pin, 0o600)
        milter = TokenMilterProcess(self.milter_bin, self.work, tpki, "inet", "s")
        milter.token_lines = f"PKCS11Module {tok.MODULE}\nTokenPINFile {pin}\nTokenSessions 8\n"
        try:
            milter.start()
            for mode, what in (("sign-rsa", "RSA-2048"), ("sign-ecdsa", "EC P-256")):
                for c in ([8] if self.quick else [1, 8, 32]):
                    self.load(f"softhsm-{mode}-2K-inet-c{c}", milter.endpoint, mode, c, seconds=self.duration,
                              pid=milter.pid)
                token_row, file_row = self.row(f"softhsm-{mode}-2K-inet-c8"), self.row(f"{mode}-2K-inet-c8")
                if token_row and file_row:
                    self.notes.append(
                        f"{what} key on a SoftHSM2 token (PKCS#11 through OpenSSL's pkcs11 engine, TokenSessions 8): "
                        f"{token_row['msg_per_s']} msg/s at concurrency 8, beside {file_row['msg_per_s']} msg/s with "
                        f"the key in a file (rows softhsm-{mode}-2K-inet-c* and {mode}-2K-inet-c*).")
        finally:
            milter.stop()

    def eight_bit_message(self, size: int) -> Path:
        """A message from alice of about `size` bytes of 8-bit UTF-8 text (charset stated)."""
        path = self.work / f"eightbit-{size}.eml"
        line = "Kontoauszug: caf\u00e9, cr\u00e8me br\u00fbl\u00e9e, \u00e4\u00f6\u00fc \u00df 0123456789\r\n".encode()
        block = line * (65536 // len(line))
        with open(path, "wb") as fh:
            fh.write(b"From: Alice <alice@example.com>\r\nTo: <someone@sink.test>\r\nSubject: 8-bit statement\r\n"
                     b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     b"Content-Transfer-Encoding: 8bit\r\n\r\n")
            for _ in range(size // len(block)):
                fh.write(block)
        return path

    def large(self, inet: MilterProcess) -> None:
        # A fresh process each, so the RSS before the run is the milter's idle size.
        inet.restart()
        self.load("sign-rsa-100M-inet-c1", inet.endpoint, "sign-rsa", 1, size="100M", messages=1, pid=inet.pid)
        # The same with 8-bit UTF-8 text, which is converted to quoted-printable on the way.
        inet.restart()
        self.load("sign-rsa-100M-8bit-inet-c1", inet.endpoint, "sign-rsa", 1, messages=1, pid=inet.pid,
                  extra=["--message", str(self.eight_bit_message(100 << 20))])
        inet.restart()
        n = 200 if self.quick else 400
        self.load("sign-ecdsa-1M-inet-c200", inet.endpoint, "sign-ecdsa", 200, size="1M", messages=n,
                  pid=inet.pid)

    # -- 6. profile --------------------------------------------------------------------------
    def profile(self, inet: MilterProcess) -> None:
        self.profile_text = ""
        if not shutil.which("perf"):
            self.profile_text = "perf is not installed (apt-get install linux-perf)."
            return
        self.profile_text += self.profile_one(inet, "sign-ecdsa", [])
        if getattr(self, "verify_active", False) and getattr(self, "signed_message", None):
            self.profile_text += self.profile_one(inet, "verify", ["--message", str(self.signed_message)])

    def profile_one(self, inet: MilterProcess, mode: str, extra: list[str]) -> str:
        """perf record (cpu-clock; hardware counters are not available on every VM) of the milter
        while milter-load runs `mode` at concurrency 8, 2 KB, inet."""
        perf = shutil.which("perf")
        data = self.work / f"perf-{mode}.data"
        seconds = 3 if self.quick else 6
        rec = subprocess.Popen([perf, "record", "-e", "cpu-clock", "-F", "999", "-g", "-o", str(data),
                                "-p", str(inet.pid), "--", "sleep", str(seconds)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)
        label = f"profile-{mode}-2K-inet-c8"
        self.load(label, inet.endpoint, mode, 8, seconds=seconds - 0.5, pid=inet.pid, extra=extra)
        self.rows = [r for r in self.rows if r["label"] != label]
        _, err = rec.communicate(timeout=60)
        if not data.exists() or data.stat().st_size == 0:
            return f"perf record failed here (exit {rec.returncode}): {err.strip()[-300:]}\n"
        rep = subprocess.run([perf, "report", "-i", str(data), "--stdio", "--no-children", "--sort", "dso",
                              "--percent-limit", "1"], capture_output=True, text=True, timeout=120)
        dso = [line.rstrip() for line in rep.stdout.splitlines() if line.strip() and not line.startswith("#")
               and "%" in line and not line.strip().startswith("|") and not line.strip().startswith("-")]
        rep2 = subprocess.run([perf, "report", "-i", str(data), "--stdio", "--no-children", "-g", "none",
                               "--sort", "dso,symbol", "--percent-limit", "1"], capture_output=True, text=True,
                              timeout=120)
        sym = [re.sub(r"(\s+-)*\s*$", "", line) for line in rep2.stdout.splitlines()
               if line.strip() and not line.startswith("#") and "%" in line]
        sym = [re.sub(r"\s{3,}", "  ", line) for line in sym]
        text = (f"{mode}, 2 KB, concurrency 8, inet (`perf record -e cpu-clock -g -p MILTER`), by library:\n\n"
                "```\n" + "\n".join(dso[:12]) + "\n```\n\nHottest symbols (self time; libcrypto has no "
                "symbols without its debug package):\n\n```\n" + "\n".join(sym[:20]) + "\n```\n\n")
        print(text, flush=True)
        return text

    # -- 4. end to end ---------------------------------------------------------------------------
    def end_to_end(self) -> list[dict]:
        results: list[dict] = []
        settings = rigmod.MilterSettings(signing_table="alice@example.com alice detached\nbob@example.com bob detached\n",
                                         sender_map=None, extra="LogLevel warning")
        r = rigmod.Rig(milter_bin=self.milter_bin, milter_settings=settings, base_dir=str(self.work))
        unix_proc = accept_all = None
        try:
            r.start()
            sock_dir = r.root / "milter-unix"
            sock_dir.mkdir()
            os.chmod(sock_dir, 0o755)
            unix_sock = sock_dir / "milter.sock"
            conf = sock_dir / "milter.conf"
            conf.write_text(f"Socket unix:{unix_sock}\nSocketMode 0666\nMode s\nInternalHosts 127.0.0.1\n"
                            f"CertificateDir {r.pki_dir / 'certs'}\nSigningTable {r.milter.directory / 'signing.table'}\n"
                            "LogLevel warning\n")
            ulog = open(sock_dir / "milter.log", "ab")
            unix_proc = subprocess.Popen([str(self.milter_bin), "run", "--config", str(conf)], stdout=ulog,
                                         stderr=ulog, start_new_session=True)
            wait_listening(f"unix:{unix_sock}", unix_proc, "smime-milter (unix, end to end)")
            inet_sock = f"inet:127.0.0.1:{r.milter.port}"
            # Runs of a few seconds on a shared 2-core machine drift by 10-20% from one to the next,
            # so the configurations are interleaved in rounds and each is reported by its median.
            n = 300 if self.quick else 1500
            rounds = 1 if self.quick else 3
            sessions = 8
            # Postfix's own cost of speaking the milter protocol: milter-load's accept-all milter
            # answers at once and changes nothing (answering the SMTP steps, as smime-milter does).
            accept_endpoint = f"inet:{free_port()}@127.0.0.1"
            accept_all = subprocess.Popen([str(self.load_bin), "--serve-accept-all", accept_endpoint,
                                           "--answer-smtp-steps"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            wait_listening(accept_endpoint, accept_all, "accept-all milter (end to end)")
            accept_port = accept_endpoint.split(":")[1].split("@")[0]
            plan = [("postfix-only", "", "alice@example.com"),
                    ("accept-all-milter-inet", f"inet:127.0.0.1:{accept_port}", "alice@example.com"),
                    ("milter-inet-rsa", inet_sock, "alice@example.com"),
                    ("milter-inet-ecdsa", inet_sock, "bob@example.com"),
                    ("milter-unix-rsa", f"unix:{unix_sock}", "alice@example.com"),
                    ("milter-unix-ecdsa", f"unix:{unix_sock}", "bob@example.com")]
            current = None
            for round_no in range(1, rounds + 1):
                for label, milters, sender in plan:
                    if milters != current:
                        r.postfix.postconf(f"smtpd_milters={milters}", f"non_smtpd_milters={milters}")
                        time.sleep(1.5)  # let the reloaded master start fresh smtpd processes
                        current = milters
                    self.smtp_source(r, sender, 40, sessions)  # warm-up, not counted
                    res = self.smtp_source(r, sender, n, sessions)
                    res.update(label=label, round=round_no, milter=milters or "none", sender=sender,
                               sessions=sessions)
                    if label.startswith("milter-"):
                        res["signed_ok"] = self.check_signed(r, rigmod)
                    print(f"e2e {label} round {round_no}: {res}", flush=True)
                    results.append(res)
        except Exception as e:  # the document says what failed instead of aborting the whole run
            self.errors.append(f"end to end: {e}")
            log(f"end to end failed: {e}")
        finally:
            stop(unix_proc)
            stop(accept_all)
            try:
                r.stop()
            except Exception as e:
                log(f"rig teardown: {e}")
        return results

    def smtp_source(self, r, sender: str, n: int, sessions: int) -> dict:
        sink = r.sink.directory
        before = sum(1 for _ in os.scandir(sink))
        t0 = time.monotonic()
        cp = subprocess.run(["smtp-source", "-s", str(sessions), "-m", str(n), "-l", "2048", "-f", sender,
                             "-t", "bench@sink.test", f"127.0.0.1:{r.postfix.int_port}"],
                            capture_output=True, text=True, timeout=CMD_TIMEOUT)
        deadline = time.monotonic() + 180
        delivered = 0
        while time.monotonic() < deadline:
            delivered = sum(1 for _ in os.scandir(sink)) - before
            if delivered >= n:
                break
            time.sleep(0.05)
        secs = time.monotonic() - t0
        ok = delivered >= n and cp.returncode == 0
        if not ok:
            self.errors.append(f"smtp-source {sender}: exit {cp.returncode}, {delivered}/{n} delivered: "
                               f"{(cp.stdout + cp.stderr)[-300:]}")
        return {"messages": n, "delivered": delivered, "seconds": round(secs, 3),
                "msg_per_s": round(delivered / secs, 1), "ok": ok}

    def check_signed(self, r, rigmod) -> bool:
        newest = max((p for p in r.sink.directory.iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime)
        try:
            message = rigmod.parse_sink_dump(newest).message
        except Exception:
            return False
        v = rigmod.openssl_verify(message, r.trust_anchor, self.work / "e2e-verify")
        return v.ok

    # -- 5. micro-benchmarks ------------------------------------------------------------------
    def micro(self, pki: Path) -> str:
        bench_dir = REPO / "Benchmarks"
        env = dict(os.environ, SMIME_BENCH_PKI=str(pki), BENCH_QUICK="1" if self.quick else "0")
        cmd = ["swift", "package", "--allow-writing-to-package-directory", "benchmark", "--no-progress",
               "--format", "markdown"]
        log("micro-benchmarks: " + " ".join(cmd) + " (in Benchmarks/)")
        cp = subprocess.run(cmd, cwd=bench_dir, env=env, capture_output=True, text=True, timeout=1800)
        out = cp.stdout
        if cp.returncode != 0:
            self.errors.append(f"micro-benchmarks: exit {cp.returncode}: {(cp.stdout + cp.stderr)[-600:]}")
        # Keep from the first benchmark table on (the build log before it is noise).
        start = out.find("## ")
        text = out[start:] if start >= 0 else out[-4000:]
        print(text, flush=True)
        return text.strip()


# ---------------------------------------------------------------------------------------------
# the document

def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(l for l in open("/proc/meminfo") if l.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    osr = platform.platform()
    return f"{os.cpu_count()} cores ({cpu}){mem}, {osr}"


def f(row: dict | None, key: str) -> float | None:
    if row is None or row.get(key, "") == "":
        return None
    return float(row[key])


def e2e_summary(e2e: list[dict]) -> dict[str, dict]:
    """Per configuration: the median msg/s of its rounds, and whether every round delivered
    everything (and every checked signature verified)."""
    by: dict[str, list[dict]] = {}
    for r in e2e:
        by.setdefault(r["label"], []).append(r)
    out = {}
    for label, runs in by.items():
        rates = sorted(r["msg_per_s"] for r in runs)
        out[label] = {"label": label, "msg_per_s": round(statistics.median(rates), 1), "rates": rates,
                      "ok": all(r["ok"] for r in runs),
                      "signed_ok": all(r.get("signed_ok", False) for r in runs),
                      "milter": runs[0]["milter"], "sender": runs[0]["sender"]}
    return out


def cpu_per_message_us(row: dict | None) -> float | None:
    if row is None or not row.get("milter_cpu_pct") or float(row["msg_per_s"]) <= 0:
        return None
    return float(row["milter_cpu_pct"]) / 100 / float(row["msg_per_s"]) * 1e6


def micro_p50_us(micro: str, name: str) -> float | None:
    """The median wall-clock time (us) of one micro-benchmark in ordo-one's markdown output."""
    m = re.search(r"^### " + re.escape(name) + r"\s*$(.*?)(?=^### |\Z)", micro, re.M | re.S)
    if not m:
        return None
    row = re.search(r"^\| Time \(wall clock\) \(\S+\) \*?\s*\|([^\n]*)", m.group(1), re.M)
    if not row:
        return None
    cells = [c.strip() for c in row.group(1).split("|") if c.strip()]
    try:
        return float(cells[2])  # p0, p25, p50, ...
    except (IndexError, ValueError):
        return None


def analysis(b: Bench, speed: dict, e2e: list[dict], micro: str = "") -> list[str]:
    """Explanations of the misses, computed from this run's rows."""
    R = b.row
    L = []
    fast, slow = R("sign-ecdsa-2K-inet-c8"), R("sign-ecdsa-2K-inet-c8-mta-like-writes")
    uslow = R("sign-ecdsa-2K-unix-c8-mta-like-writes")
    summary = e2e_summary(e2e)
    base, e_inet, e_unix = (summary.get(k) for k in ("postfix-only", "milter-inet-ecdsa", "milter-unix-ecdsa"))
    if base and e_inet and e_unix and base["msg_per_s"] > 0:
        L.append(
            "**End to end over inet: Nagle and delayed ACK.** Postfix writes milter packets with Nagle's "
            "algorithm on (no TCP_NODELAY on its side). A packet that gets no reply leaves the milter's ACK to "
            "the delayed-ACK timer (~40 ms), and Postfix's next small packet waits for it. smime-milter therefore "
            "answers every step that the SMTP client's next command follows (connect, MAIL, RCPT, DATA) and "
            "negotiates no-reply only for header, end-of-header and body, which Postfix writes back to back "
            "before end-of-message (see `milterNegotiate` in Sources/Milter/Callbacks.swift). End to end, "
            f"ECDSA over inet ran at {e_inet['msg_per_s'] / base['msg_per_s']:.0%} of Postfix alone and over the "
            f"unix socket at {e_unix['msg_per_s'] / base['msg_per_s']:.0%}; before the change, inet was held at "
            "30% (one SMTP session: 20 msg/s).")
        if fast and slow:
            L.append(
                "milter-load's `--mta-like-writes` (Nagle on and *every* packet in its own send, each header "
                f"included) still shows the stall: sign-ecdsa c8 inet {slow['msg_per_s']} msg/s, p50 "
                f"{slow['p50_ms']} ms, against {fast['msg_per_s']} msg/s with TCP_NODELAY"
                + (f" and {uslow['msg_per_s']} msg/s over the unix socket" if uslow else "")
                + ". Postfix does not write that way for headers (the end-to-end rows above), but an MTA that did "
                "would want the unix socket.\n")
        else:
            L.append("")
    accept = summary.get("accept-all-milter-inet")
    if base and accept and base["msg_per_s"] > 0:
        L.append(
            "**End to end: the milter protocol alone.** With milter-load's accept-all milter in place of "
            "smime-milter (it answers every packet at once and changes nothing), Postfix ran at "
            f"{accept['msg_per_s']} msg/s, {accept['msg_per_s'] / base['msg_per_s']:.0%} of its rate without a "
            "milter: that share is the price of the milter protocol on Postfix's side (smtpd and cleanup "
            "speaking it, the extra connection per session) before any milter does any work, and it bounds "
            "what any milter can reach on this machine.\n")
    pt, ptc = R("pass-through-2K-inet-c8"), R("pass-through-2K-inet-c8-conn-per-msg")
    ecc = R("sign-ecdsa-2K-inet-c8-conn-per-msg")
    if base and e_inet and pt and ptc and cpu_per_message_us(pt) and cpu_per_message_us(ptc):
        ec0 = R("sign-ecdsa-2K-inet-c8")
        L.append(
            "**End to end: where the rest goes.** Postfix alone kept both cores busy "
            f"({base['msg_per_s']} msg/s, about {2e6 / base['msg_per_s']:.0f} us of CPU per message for smtp-source, "
            "smtpd, cleanup, qmgr, smtp and smtp-sink together), so every microsecond the milter path adds comes "
            "off the rate. smtp-source sends one message per SMTP session, as most clients do, and Postfix "
            "opens one milter connection per session; libmilter starts a thread for each connection and reads "
            "each packet with a poll and separate reads. milter-load with one message per connection "
            f"(`--messages-per-connection 1`) measures that: pass-through costs {cpu_per_message_us(ptc):.0f} us "
            f"of milter CPU per message against {cpu_per_message_us(pt):.0f} us on a kept connection"
            + (f", ECDSA signing {cpu_per_message_us(ecc):.0f} us against {cpu_per_message_us(ec0):.0f} us"
               if ecc and ec0 and cpu_per_message_us(ecc) and cpu_per_message_us(ec0) else "")
            + ". On top come Postfix's own milter work (macros, the packets, the header and body edits applied "
            "to the queue file) and a signed message of about 5 KB instead of 2 KB to queue, deliver and store. "
            "Neither the MTA side nor libmilter's threading is ours to change; the milter's own share is the "
            "per-message CPU in the rows above.\n")
    ec = R("sign-ecdsa-2K-inet-c8")
    if ec:
        per = cpu_per_message_us(ec)
        ossl = 2 / speed["ecdsa_sign"] * 1e6 if speed.get("ecdsa_sign") else None
        L.append(
            f"**ECDSA signing rate.** At concurrency 8 the milter used {ec['milter_cpu_pct']}% CPU for "
            f"{ec['msg_per_s']} msg/s: {per:.0f} us of CPU per message"
            + (f", where the P-256 signature itself costs {ossl:.0f} us (openssl speed)" if ossl else "")
            + f". milter-load took another {ec['client_cpu_pct']}% of the two cores. The rest is per-message "
            "overhead: CMS_sign building the SignedData (certificate chain, signed attributes, DER), MIME "
            "canonicalisation and base64, Swift allocation and copies, and libmilter's thread hand-offs "
            "(the kernel share of the profile below is mostly scheduler and futex work)"
            + (f". The CMS call alone costs {cms:.0f} us in-process (micro-benchmark 'CMS sign ECDSA P-256 2 KB', p50)"
               if (cms := micro_p50_us(micro, "CMS sign ECDSA P-256 2 KB")) else "")
            + (f"; at 5,000 msg/s, with milter-load's share as measured, the milter would have {budget:.0f} us of "
               "CPU per message for everything"
               if ec.get("client_cpu_pct") and (budget := max(0.0, 200 - float(ec["client_cpu_pct"])) / 100 / 5000 * 1e6)
               else "")
            + ".\n")
    pt = R("pass-through-2K-inet-c8")
    if ec and pt and cpu_per_message_us(pt):
        L.append(
            f"For comparison, a message the milter only passes through (pass-through, c8, inet) costs "
            f"{cpu_per_message_us(pt):.0f} us of milter CPU ({pt['milter_cpu_pct']}% for {pt['msg_per_s']} msg/s): "
            "that is the price of libmilter, the protocol and collecting the message, before any signing.\n")
    ver = R("verify-2K-inet-c8")
    if ver and getattr(b, "verify_active", False):
        per = cpu_per_message_us(ver)
        ossl = 2 / speed["rsa_verify"] * 1e6 if speed.get("rsa_verify") else None
        L.append(
            f"**Verification rate.** {ver['msg_per_s']} msg/s at concurrency 8 with {ver['milter_cpu_pct']}% milter "
            f"CPU: {per:.0f} us per message, where an RSA-2048 verification costs {ossl:.1f} us (openssl speed). "
            "The verify profile below shows where it goes: libcrypto's share is the whole CMS_verify with "
            "certificate-path building and its internal locks (pthread_rwlock: provider and store look-ups per "
            "call), and a large malloc/free share. Most of it is OpenSSL 3.0 parsing the certificates the "
            "signature carries (signer and intermediate): each public key goes through the OSSL_DECODER "
            "framework, which builds a decoder chain per key (OSSL_DECODER_CTX_new_for_pkey, OSSL_DECODER_is_a, "
            "rwlocks and string compares in the profile)"
            + (f"; the micro-benchmarks put parsing alone (d2i_CMS_ContentInfo) at {mp:.0f} us of the {mv:.0f} us "
               f"that CMS verification takes in-process (p50)" if (mp := micro_p50_us(micro, "CMS parse RSA-2048 2 KB"))
               and (mv := micro_p50_us(micro, "CMS verify RSA-2048 2 KB")) else "")
            + ". That cost is inside OpenSSL and per message (every signature brings its own certificates); it is "
            "the known OpenSSL 3.0 regression of openssl/openssl#19119 (d2i_X509 about 5x slower than 1.1.1), "
            "which later releases reduce with a decoder-context cache (openssl/openssl#21426); Debian 12 ships "
            "3.0 only, so it was not measured here. 5,000 msg/s on two "
            "cores leaves 400 us of CPU per message for everything, the load generator included, so this target "
            "cannot be met with OpenSSL 3.0 here. The trust store is built once per configuration.\n")
    rsa = R("sign-rsa-2K-inet-c8")
    if rsa:
        per = cpu_per_message_us(rsa)
        ossl = 2 / speed["rsa_sign"] * 1e6 if speed.get("rsa_sign") else None
        pt_us = cpu_per_message_us(R("pass-through-2K-inet-c8"))
        cms = micro_p50_us(micro, "CMS sign RSA-2048 2 KB")
        text = (f"**RSA signing rate.** {rsa['msg_per_s']} msg/s at concurrency 8 with {rsa['milter_cpu_pct']}% "
                f"milter CPU ({per:.0f} us per message; the RSA-2048 signature is {ossl:.0f} us of one core by "
                "openssl speed)")
        if pt_us and cms:
            text += (f". Per message that is about {pt_us:.0f} us of protocol and collection (the pass-through row), "
                     f"{cms:.0f} us for the CMS signature in-process (micro-benchmark p50, one thread) and "
                     f"{max(per - pt_us - cms, 0):.0f} us for the rest (7-bit entity, base64, edits, scheduling of eight "
                     "connections on two cores)")
        if speed.get("rsa_sign") and rsa.get("client_cpu_pct"):
            cores = max(0.0, 200 - float(rsa["client_cpu_pct"])) / 100
            budget = cores / (0.85 * speed["rsa_sign"]) * 1e6   # us of milter CPU per message at the target
            text += (f". milter-load itself took {rsa['client_cpu_pct']}% of a core; at 85% of `openssl speed "
                     f"-multi 2` (which ran alone) the milter would have {budget:.0f} us of CPU per message for "
                     f"everything, against {ossl:.0f} us for the RSA operation alone")
        L.append(text + ".\n")
    big, big8 = R("sign-rsa-100M-inet-c1"), R("sign-rsa-100M-8bit-inet-c1")
    if big and big.get("milter_rss_growth_kb"):
        g = float(big["milter_rss_growth_kb"]) / 1024
        g8 = f" and the 100 MB 8-bit UTF-8 message by {float(big8['milter_rss_growth_kb']) / 1024:.0f} MB" \
            if big8 and big8.get("milter_rss_growth_kb") else ""
        L.append(
            f"**Large messages.** The 100 MB 7-bit message made the milter grow by {g:.0f} MB{g8}. Bodies over "
            "SpoolThreshold (default 8 MB) are collected in a spool file (private 0700 directory, removed with "
            "the message). When the 7-bit conversion would keep the body as it is (VerbatimBodyScanner: the usual "
            "case, and milter-load's generated text), CMS hashes it from the file in 1 MB pieces and "
            "smfi_replacebody sends it back from the file. A single text part that needs converting (8-bit text, "
            "long lines, `From ` lines, trailing white space) is converted to quoted-printable a run of whole lines "
            "at a time (StreamingTextConverter), once for the hash and once for the reply. Other large bodies "
            "(8-bit parts inside a multipart, opaque signing, inbound verification) are read back into memory "
            "once; the first SpoolThreshold bytes of every body are collected in memory before the spool file "
            "starts.\n")
    return L


def write_document(b: Bench, speed: dict, e2e: list[dict], micro: str, started: float, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    csv_out = out.with_suffix(".csv")
    e2e_out = out.with_name(out.stem + "-e2e.csv")
    svg_out = out.with_suffix(".svg")
    shutil.copyfile(b.csv_path, csv_out)
    with open(e2e_out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["label", "round", "milter", "sender", "sessions", "messages", "delivered",
                                           "seconds", "msg_per_s", "ok", "signed_ok"])
        w.writeheader()
        for r in e2e:
            w.writerow({k: r.get(k, "") for k in w.fieldnames})
    with open(csv_out) as fh:
        rows = list(csv.DictReader(fh))
    svg_out.write_text(bench_chart.svg(rows))

    R = b.row
    targets = []

    def target(name: str, measured: str, ratio: str, ok: bool | str | None, why: str = "") -> None:
        status = ok if isinstance(ok, str) else ("met" if ok else ("missed" if ok is False else "not measured"))
        targets.append((name, measured, ratio, status, why))

    rsa8 = R("sign-rsa-2K-inet-c8")
    v = f(rsa8, "msg_per_s")
    if v is not None:
        ratio = v / speed["rsa_sign"]
        target("Sign RSA-2048, 2 KB, milter protocol, concurrency 8: >= 85% of `openssl speed -multi 2` sign/s",
               f"{rsa8['msg_per_s']} msg/s (openssl: {speed['rsa_sign']} sign/s)", f"{ratio:.0%}", ratio >= 0.85)
    ec8 = R("sign-ecdsa-2K-inet-c8")
    best_ec = max((r for r in b.rows if r["label"].startswith("sign-ecdsa-2K-")), key=lambda r: float(r["msg_per_s"]),
                  default=None)
    if ec8:
        v = float(ec8["msg_per_s"])
        target("Sign ECDSA P-256, 2 KB: >= 5,000 msg/s",
               f"{ec8['msg_per_s']} msg/s at concurrency 8 (best: {best_ec['msg_per_s']} msg/s, {best_ec['label']})",
               f"{float(best_ec['msg_per_s']) / 5000:.0%} of 5,000", float(best_ec["msg_per_s"]) >= 5000)
    ver8 = R("verify-2K-inet-c8")
    best_ver = max((r for r in b.rows if r["label"].startswith("verify-2K-")), key=lambda r: float(r["msg_per_s"]),
                   default=None)
    if ver8:
        if b.verify_active:
            target("Verify a 2 KB RSA-signed message: >= 5,000 msg/s",
                   f"{ver8['msg_per_s']} msg/s at c8 (best {best_ver['msg_per_s']}, {best_ver['label']})",
                   f"{float(best_ver['msg_per_s']) / 5000:.0%} of 5,000", float(best_ver["msg_per_s"]) >= 5000)
        else:
            target("Verify a 2 KB RSA-signed message: >= 5,000 msg/s",
                   f"verifier not in this build; pass-through of the signed message: {ver8['msg_per_s']} msg/s at c8",
                   "-", None, "inbound verification has not landed in main")
    if ec8:
        p99 = float(ec8["p99_ms"])
        target("Added latency, concurrency 8, 2 KB, ECDSA: p99 <= 5 ms", f"p99 {ec8['p99_ms']} ms (p50 {ec8['p50_ms']}, "
               f"p99.9 {ec8['p999_ms']})", f"{p99 / 5:.0%} of 5 ms", p99 <= 5)
    e2e_by = e2e_summary(e2e)
    base = e2e_by.get("postfix-only")
    if base and base["msg_per_s"] > 0:
        for kind in ("inet", "unix"):
            ec = e2e_by.get(f"milter-{kind}-ecdsa")
            rsa = e2e_by.get(f"milter-{kind}-rsa")
            if ec:
                ratio = ec["msg_per_s"] / base["msg_per_s"]
                why = "" if len(ec["rates"]) == 1 else f"median of {len(ec['rates'])} rounds"
                accept = e2e_by.get("accept-all-milter-inet")
                if accept and accept["msg_per_s"] > 0:
                    why += ("; " if why else "") + (
                        f"a do-nothing milter (accept-all) gets {accept['msg_per_s']} msg/s, "
                        f"{accept['msg_per_s'] / base['msg_per_s']:.0%} of Postfix alone; smime-milter signing reaches "
                        f"{ec['msg_per_s'] / accept['msg_per_s']:.0%} of that")
                target(f"End to end through Postfix, 2 KB, ECDSA, {kind}: >= 85% of Postfix alone",
                       f"{ec['msg_per_s']} msg/s (Postfix alone {base['msg_per_s']})", f"{ratio:.0%}",
                       ratio >= 0.85 and ec["ok"] and ec.get("signed_ok", False), why)
            if rsa:
                ratio = rsa["msg_per_s"] / base["msg_per_s"]
                target(f"End to end through Postfix, 2 KB, RSA, {kind}: report the ratio",
                       f"{rsa['msg_per_s']} msg/s (Postfix alone {base['msg_per_s']})", f"{ratio:.0%}",
                       "reported" if rsa["ok"] and rsa.get("signed_ok", False) else False)
    else:
        target("End to end through Postfix (ECDSA >= 85% of Postfix alone; RSA ratio)", "not run", "-", None,
               "see notes")
    one = R("sign-ecdsa-1M-inet-c8")
    ten = R("sign-ecdsa-10M-inet-c8")
    if one and ten:
        r1, r10 = float(one["mb_per_s"]), float(ten["mb_per_s"])
        ratio = r1 / r10 if r10 else float("inf")
        target("MB/s for 10 MB messages within 2x of 1 MB (ECDSA, c8)", f"10 MB: {ten['mb_per_s']} MB/s, "
               f"1 MB: {one['mb_per_s']} MB/s", f"1 MB is {ratio:.2f}x 10 MB", ratio <= 2)
    for label, what in (("sign-rsa-100M-inet-c1", "7-bit text"), ("sign-rsa-100M-8bit-inet-c1", "8-bit UTF-8 text")):
        big = R(label)
        if not big:
            continue
        growth = f(big, "milter_rss_growth_kb")
        ok = growth is not None and growth <= 64 * 1024 and big["errors"] == "0" and big["signed"] == "1"
        target(f"A 100 MB message signs with RSS growth <= 64 MB ({what})",
               f"growth {growth / 1024:.0f} MB (idle {f(big, 'milter_rss_start_kb') / 1024:.0f} MB, peak "
               f"{f(big, 'milter_peak_rss_kb') / 1024:.0f} MB), {big['seconds']} s, signed={big['signed']}, "
               f"errors={big['errors']}",
               f"{growth / 1024 / 64:.1f}x the limit", ok,
               "signed and written back from the spool file" + ("" if what.startswith("7") else
                                                                 ", converted to quoted-printable a run of lines at a time"))
    many = R("sign-ecdsa-1M-inet-c200")
    if many:
        target("200 concurrent sessions of 1 MB complete with no errors and bounded memory",
               f"{many['messages']} messages, errors={many['errors']}, peak RSS "
               f"{f(many, 'milter_peak_rss_kb') / 1024:.0f} MB (growth {f(many, 'milter_rss_growth_kb') / 1024:.0f} MB), "
               f"{many['msg_per_s']} msg/s, p99 {many['p99_ms']} ms", "-", many["errors"] == "0")
    # The load generator's own ceiling.
    ceil = {c: R(f"ceiling-2K-c{c}") for c in (1, 8, 32, 200)}
    def lowest_ceiling_ratio(rows):
        """(ceiling / rate, row, ceiling row) for the row closest to the ceiling, or None."""
        lowest = None
        for r in rows:
            cr = ceil.get(int(r["concurrency"])) or ceil.get(8)
            if cr:
                ratio = float(cr["msg_per_s"]) / max(float(r["msg_per_s"]), 1e-9)
                if lowest is None or ratio < lowest[0]:
                    lowest = (ratio, r, cr)
        return lowest

    # The target is about the rates of the targets: the signing rows. Rows where the milter does
    # no cryptography (pass-through, unverified verify) are reported below.
    worst = lowest_ceiling_ratio([r for r in b.rows if r["label"].startswith("sign-") and "-2K-" in r["label"]
                                  and "mta-like" not in r["label"]])
    if worst:
        ratio, r, cr = worst
        target("milter-load's ceiling (accept-all milter) >= 3x the rates it reports (2 KB)",
               f"lowest: {cr['msg_per_s']} msg/s ceiling vs {r['msg_per_s']} msg/s ({r['label']})", f"{ratio:.1f}x",
               ratio >= 3)
    lw = lowest_ceiling_ratio([r for r in b.rows if r["mode"] in ("pass-through", "verify")
                               and not r["label"].startswith("ceiling") and r["socket"] == "inet"
                               and "-2K-" in r["label"]])
    if lw:
        ratio, r, cr = lw
        target("(information) ceiling vs rows where the milter does no cryptography (pass-through, verify)",
               f"lowest: {cr['msg_per_s']} msg/s ceiling vs {r['msg_per_s']} msg/s ({r['label']})", f"{ratio:.1f}x",
               "reported", "")
    for size in ("1M", "10M"):
        cr, mr = R(f"ceiling-{size}-c8"), R(f"sign-ecdsa-{size}-inet-c8")
        if cr and mr:
            ratio = float(cr["mb_per_s"]) / max(float(mr["mb_per_s"]), 1e-9)
            target(f"milter-load's ceiling >= 3x, {size.replace('M', ' MB')} messages, c8",
                   f"{cr['mb_per_s']} MB/s ceiling vs {mr['mb_per_s']} MB/s", f"{ratio:.1f}x", ratio >= 3)

    elapsed = time.monotonic() - started
    date = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    L = []
    L.append("# smime-milter performance\n")
    L.append(f"Generated by `make bench{' BENCH_QUICK=1' if b.quick else ''}` (`scripts/bench.py`) on {date}, in "
             f"{elapsed:.0f} s. Machine: {machine()}. Every figure below is one the run printed; the raw rows are "
             f"in [performance.csv](performance.csv) (milter-load) and [performance-e2e.csv](performance-e2e.csv) "
             f"(Postfix end to end). The machine is shared and noisy: compare figures within one run only.\n")
    if b.quick:
        L.append("This is the quick variant (2 s per point, fewer concurrencies and sizes); `make bench` runs the "
                 "full matrix.\n")
    L.append("## Targets (issue 6)\n")
    L.append("| target | measured | ratio | status |")
    L.append("|---|---|---|---|")
    for name, measured, ratio, status, why in targets:
        s = f"**{status}**" if status in ("missed", "not measured") else status
        if status != "met" and why:
            s += f" ({why})"
        L.append(f"| {name} | {measured} | {ratio} | {s} |")
    L.append("")
    if b.errors:
        L.append("Errors during the run:\n")
        L += [f"- {e}" for e in b.errors]
        L.append("")
    if b.notes:
        L.append("Notes:\n")
        L += [f"- {n}" for n in b.notes]
        L.append("")
    L.append("## Physical limit: OpenSSL on this machine\n")
    L.append(f"`{speed['command']}`\n\n```\n" + "\n".join(speed["lines"]) + "\n```\n")
    L.append("## milter-load: msg/s by concurrency (2 KB, inet)\n")
    L.append("![msg/s by concurrency](performance.svg)\n")
    L.append("| label | mode | socket | conc. | size | messages | errors | msg/s | MB/s | p50 ms | p99 ms | "
             "p99.9 ms | milter CPU % | client CPU % | milter peak RSS MB |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        peak = f"{float(r['milter_peak_rss_kb']) / 1024:.0f}" if r["milter_peak_rss_kb"] else ""
        L.append(f"| {r['label']} | {r['mode']} | {r['socket']} | {r['concurrency']} | {r['size_bytes']} | "
                 f"{r['messages']} | {r['errors']} | {r['msg_per_s']} | {r['mb_per_s']} | {r['p50_ms']} | "
                 f"{r['p99_ms']} | {r['p999_ms']} | {r['milter_cpu_pct']} | {r['client_cpu_pct']} | {peak} |")
    L.append("")
    L.append("Rows labelled `ceiling-*` are milter-load against its own accept-all milter "
             "(`milter-load --serve-accept-all`); their \"milter\" CPU is that server's. CPU percentages are of one "
             "core (200% = both cores). The load generator shares the two cores with the milter.\n")
    L.append("## End to end: smtp-source -> Postfix -> smtp-sink (2 KB)\n")
    if e2e:
        summary = e2e_summary(e2e)
        base = summary.get("postfix-only")
        L.append("| configuration | milter | sender | msg/s (median) | each round | of Postfix alone | delivered all | signature verifies |")
        L.append("|---|---|---|---|---|---|---|---|")
        for label, m in summary.items():
            share = f"{m['msg_per_s'] / base['msg_per_s']:.0%}" if base and base["msg_per_s"] > 0 else "-"
            verifies = m["signed_ok"] if label.startswith("milter-") else "-"
            L.append(f"| {label} | {m['milter']} | {m['sender']} | {m['msg_per_s']} | "
                     f"{', '.join(str(x) for x in m['rates'])} | {share} | {m['ok']} | {verifies} |")
        L.append("\nEvery run:\n")
        L.append("| round | run | sessions | messages | seconds | msg/s | delivered all | signature verifies |")
        L.append("|---|---|---|---|---|---|---|---|")
        for r in e2e:
            L.append(f"| {r.get('round', 1)} | {r['label']} | {r['sessions']} | {r['messages']} | "
                     f"{r['seconds']} | {r['msg_per_s']} | {r['ok']} | {r.get('signed_ok', '-')} |")
        L.append("\nTime runs from the start of smtp-source to the last message written by smtp-sink (which keeps "
                 "every message in a file). A warm-up of 40 messages precedes each run. The configurations take "
                 "turns in rounds, so that the drift of this shared machine falls on all of them alike; each is "
                 "reported by its median.\n")
    else:
        L.append("Not run (see notes).\n")
    L += bench_per_core.section(b, cpu_per_message_us)
    L.append("## Micro-benchmarks (Benchmarks/, ordo-one/benchmark)\n")
    L.append(micro + "\n" if micro else "Not run.\n")
    L.append("In-process, one thread, no milter protocol: `SignableEntity.make` is the MIME parse and 7-bit "
             "canonical form, `CMS sign` the SignedData over it, `CMS parse` d2i_CMS_ContentInfo alone (with the "
             "certificates the signature carries), `CMS verify` signature, digest and certificate path, "
             "`MessageVerifier` the whole inbound check of a 2 KB multipart/signed message.\n")
    L.append("## Where the time goes\n")
    L += analysis(b, speed, e2e, micro)
    L.append("### Profile\n")
    L.append((getattr(b, "profile_text", "") or "No profile taken.") + "\n")
    L.append("## How to reproduce\n")
    L.append("```\nswift build -c release          # smime-milter and milter-load\n"
             "make bench                      # full run, about 12 minutes; BENCH_QUICK=1 for the quick variant\n"
             "```\n\nThe pieces by hand (the test PKI comes from `Tests/fixtures/make_test_pki.py DIR`):\n\n"
             "```\nopenssl speed -multi 2 -seconds 3 rsa2048 ecdsap256\n"
             ".build/release/smime-milter run --config milter.conf &      # Socket inet:8891@127.0.0.1, Mode s, ...\n"
             ".build/release/milter-load --socket inet:8891@127.0.0.1 --mode sign-ecdsa --concurrency 8 \\\n"
             "    --size 2K --seconds 5 --milter-pid $! --csv out.csv\n"
             ".build/release/milter-load --serve-accept-all inet:8892@127.0.0.1 &   # the ceiling\n"
             "(cd Benchmarks && swift package benchmark)\n```\n\n"
             "Instructions per message, which repeat on a loaded machine (valgrind's callgrind under milter-load): "
             "`python3 scripts/callgrind_milter.py --mode sign-ecdsa --mode sign-rsa`; method and findings in "
             "[profiling.md](profiling.md).\n")
    out.write_text("\n".join(L))
    log(f"wrote {out}, {csv_out}, {e2e_out}, {svg_out}")


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
