#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`make bench`, running the cases: openssl speed, the milter processes, and `Bench`, which runs
milter-load, the SoftHSM2 case, Postfix end to end, the micro-benchmarks and the profile, collecting
the rows (docs/performance.csv) that bench_targets.py and bench_report.py turn into the document."""
from __future__ import annotations

import csv
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "Tests" / "integration"))
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

def give_socket_to_postfix(endpoint: str) -> None:
    """A unix socket (SocketMode 0660, the milter run as root here) handed to Postfix's group, as
    `UserID smime-milter:postfix` does in a real installation: 0666 is refused (any local user
    could have mail signed)."""
    if endpoint.startswith("unix:"):
        import grp
        os.chown(endpoint[len("unix:"):], -1, grp.getgrnam("postfix").gr_gid)


class MilterProcess:
    """smime-milter with its own configuration on an inet or unix socket."""

    def __init__(self, binary: Path, work: Path, pki: Path, kind: str, mode: str):
        self.binary, self.pki, self.kind, self.mode = binary, pki, kind, mode
        self.dir = work / f"milter-{kind}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.endpoint = (f"inet:{free_port()}@127.0.0.1" if kind == "inet" else f"unix:{self.dir / 'milter.sock'}")
        self.proc: subprocess.Popen | None = None
        self.signing_table = self.DETACHED_TABLE

    DETACHED_TABLE = "alice@example.com alice detached\nbob@example.com bob detached\n"

    def config_text(self, mode: str) -> str:
        (self.dir / "signing.table").write_text(self.signing_table)
        text = (f"Socket {self.endpoint}\nSocketMode 0660\nMode {mode}\nInternalHosts 127.0.0.1\n"
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
        give_socket_to_postfix(self.endpoint)

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

    @functools.cached_property
    def null_milter_binary(self) -> Path | None:
        """scripts/null-milter.c built once per run (libmilter's floor: a milter that does nothing),
        or None with an error noted when there is no C compiler or libmilter-dev."""
        cc = shutil.which("cc") or shutil.which("clang") or shutil.which("gcc")
        if cc is None:
            self.errors.append("null-milter: no C compiler for scripts/null-milter.c")
            return None
        binary = self.work / "null-milter"
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "milter"], capture_output=True, text=True)
        build = subprocess.run([cc, "-O2", "-o", str(binary), str(REPO / "scripts" / "null-milter.c"),
                                *flags.stdout.split(), "-pthread"], capture_output=True, text=True, timeout=120)
        if flags.returncode != 0 or build.returncode != 0:
            self.errors.append(f"null-milter: cannot build: {(flags.stderr + build.stderr).strip()[:300]}")
            return None
        return binary

    def start_null_milter(self, endpoint: str) -> subprocess.Popen | None:
        """null-milter listening on `endpoint`, or None when it could not be built."""
        if self.null_milter_binary is None:
            return None
        proc = subprocess.Popen([str(self.null_milter_binary), endpoint], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_listening(endpoint, proc, f"null-milter ({endpoint})")
        except Exception:
            stop(proc)
            raise
        return proc

    def serve_accept_all(self, endpoint: str, args: list[str], what: str) -> tuple[subprocess.Popen, str]:
        """milter-load's accept-all milter on `endpoint` (milter-load's form, inet:PORT@ADDRESS or
        unix:PATH), answering the SMTP steps as smime-milter does; with it the endpoint in
        Postfix's form (inet:ADDRESS:PORT)."""
        proc = subprocess.Popen([str(self.load_bin), "--serve-accept-all", endpoint, "--answer-smtp-steps", *args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_listening(endpoint, proc, what)
        except Exception:
            stop(proc)
            raise
        if endpoint.startswith("inet:"):
            port, address = endpoint[len("inet:"):].split("@")
            return proc, f"inet:{address}:{port}"
        return proc, endpoint

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
        self.signed_message_root = milter.pki / "root.pem"
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
        self.streaming_shapes(inet)
        inet.restart()
        n = 200 if self.quick else 400
        self.load("sign-ecdsa-1M-inet-c200", inet.endpoint, "sign-ecdsa", 200, size="1M", messages=n,
                  pid=inet.pid)

    def streaming_shapes(self, inet: MilterProcess) -> None:
        """Issue 14's shapes that stream from the spool file, 100 MB each, a fresh process each (its
        RSS before the message is its idle size): detached signing of a multipart with an 8-bit text
        part beside a base64 attachment, inbound verification of what that produced, and opaque
        signing of a 7-bit body. `big_verify_passed` says whether the verification said smime=pass."""
        multipart, signed_dir = self.work / "multipart-8bit-100M.eml", self.work / "multipart-signed"
        rigmod.write_8bitmime_multipart(multipart, 100 << 20)
        inet.restart()
        self.load("sign-rsa-100M-multipart-inet-c1", inet.endpoint, "sign-rsa", 1, messages=1, pid=inet.pid,
                  extra=["--message", str(multipart), "--save", str(signed_dir), "--save-count", "1"])
        multipart.unlink()
        signed = sorted(signed_dir.glob("*.eml"))
        self.big_verify_passed = None
        if signed and "v" in inet.mode:
            verified_dir = self.work / "multipart-verified"
            inet.restart()
            self.load("verify-100M-multipart-inet-c1", inet.endpoint, "verify", 1, messages=1, pid=inet.pid,
                      extra=["--message", str(signed[0]), "--save", str(verified_dir), "--save-count", "1"])
            verified = sorted(verified_dir.glob("*.eml"))
            if verified:
                with open(verified[0], "rb") as fh:
                    head = fh.read(1 << 16)
                self.big_verify_passed = b"smime=pass" in head.split(b"\r\n\r\n", 1)[0]
            shutil.rmtree(verified_dir, ignore_errors=True)
        shutil.rmtree(signed_dir, ignore_errors=True)
        inet.signing_table = "alice@example.com alice opaque\nbob@example.com bob detached\n"
        try:
            inet.restart()
            self.load("sign-rsa-100M-opaque-inet-c1", inet.endpoint, "sign-rsa", 1, size="100M", messages=1,
                      pid=inet.pid)
        finally:
            inet.signing_table = inet.DETACHED_TABLE

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
        unix_proc = null_milter = None
        helpers: list[subprocess.Popen] = []   # the accept-all milters
        try:
            r.start()
            sock_dir = r.root / "milter-unix"
            sock_dir.mkdir()
            os.chmod(sock_dir, 0o755)
            unix_sock = sock_dir / "milter.sock"
            conf = sock_dir / "milter.conf"
            conf.write_text(f"Socket unix:{unix_sock}\nSocketMode 0660\nMode s\nInternalHosts 127.0.0.1\n"
                            f"CertificateDir {r.pki_dir / 'certs'}\nSigningTable {r.milter.directory / 'signing.table'}\n"
                            "LogLevel warning\n")
            ulog = open(sock_dir / "milter.log", "ab")
            unix_proc = subprocess.Popen([str(self.milter_bin), "run", "--config", str(conf)], stdout=ulog,
                                         stderr=ulog, start_new_session=True)
            wait_listening(f"unix:{unix_sock}", unix_proc, "smime-milter (unix, end to end)")
            give_socket_to_postfix(f"unix:{unix_sock}")
            inet_sock = f"inet:127.0.0.1:{r.milter.port}"
            # Runs of a few seconds on a shared 2-core machine drift by 10-20% from one to the next,
            # so the configurations are interleaved in rounds and each is reported by its median (of
            # five: with three, one slow round of a pair decided an inet-against-unix ratio).
            n = 300 if self.quick else 1500
            rounds = 1 if self.quick else 5
            sessions = 8
            # Postfix's own cost of speaking the milter protocol: milter-load's accept-all milter
            # answers at once and changes nothing (answering the SMTP steps, as smime-milter does),
            # on inet and on unix, so that each socket is compared with its own floor (issue 14:
            # inet within 5% of unix, both within 90% of it). The same milter answering each message
            # with a signed message's edits (header changes, the body replaced in the queue file, a
            # larger message to deliver) prices those edits without any signing.
            replay_args = ["--replay-edits", str(self.signed_message)]
            plan = [("postfix-only", "", "alice@example.com")]
            for label, args in (("accept-all-milter", []), ("replay-edits-milter", replay_args)):
                for kind, endpoint in (("inet", f"inet:{free_port()}@127.0.0.1"),
                                       ("unix", f"unix:{sock_dir / (label + '.sock')}")):
                    proc, postfix_endpoint = self.serve_accept_all(endpoint, args, f"{label} ({kind}, end to end)")
                    helpers.append(proc)
                    plan.append((f"{label}-{kind}", postfix_endpoint, "alice@example.com"))
            plan += [("milter-inet-rsa", inet_sock, "alice@example.com"),
                     ("milter-inet-ecdsa", inet_sock, "bob@example.com"),
                     ("milter-unix-rsa", f"unix:{unix_sock}", "alice@example.com"),
                     ("milter-unix-ecdsa", f"unix:{unix_sock}", "bob@example.com")]
            # libmilter's own do-nothing milter (scripts/null-milter.c): how much of the distance
            # between smime-milter and milter-load's accept-all milter is libmilter's.
            null_port = free_port()
            if (null_milter := self.start_null_milter(f"inet:{null_port}@127.0.0.1")) is not None:
                plan.insert(3, ("null-milter-inet", f"inet:127.0.0.1:{null_port}", "alice@example.com"))
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
                        res["signed_ok"] = self.check_signed(r, rigmod, r.trust_anchor)
                    elif label.startswith("replay-edits-"):
                        # The replayed edits are those of a message signed under this run's own PKI
                        # (not the rig's), so what they deliver verifies against its root.
                        res["signed_ok"] = self.check_signed(r, rigmod, self.signed_message_root)
                    print(f"e2e {label} round {round_no}: {res}", flush=True)
                    results.append(res)
        except Exception as e:  # the document says what failed instead of aborting the whole run
            self.errors.append(f"end to end: {e}")
            log(f"end to end failed: {e}")
        finally:
            stop(unix_proc)
            for proc in helpers:
                stop(proc)
            stop(null_milter)
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

    def check_signed(self, r, rigmod, anchor: Path) -> bool:
        newest = max((p for p in r.sink.directory.iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime)
        try:
            message = rigmod.parse_sink_dump(newest).message
        except Exception:
            return False
        v = rigmod.openssl_verify(message, anchor, self.work / "e2e-verify")
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

