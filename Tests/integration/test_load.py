# SPDX-License-Identifier: Apache-2.0
"""Functional test of the load generator (`milter-load`) against the real smime-milter.

Not a speed test (speed is measured only by `make bench`): a few seconds of load with every
reply checked by milter-load (well-formed packets, only negotiated actions, a final verdict),
no errors, and every saved signed result verified by `openssl cms -verify` against the test
root. The checks themselves are proven by a tiny milter that answers with a malformed reply.

Environment: SMIME_MILTER_BIN (default .build/release, then .build/debug); milter-load is
taken from the same folder, or MILTER_LOAD_BIN.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

import rig as rigmod

REPO = Path(__file__).resolve().parents[2]
PKI_SCRIPT = REPO / "Tests" / "fixtures" / "make_test_pki.py"
TIMEOUT = 60


def _binary(env: str, name: str) -> Path | None:
    if os.environ.get(env):
        return Path(os.environ[env])
    milter = os.environ.get("SMIME_MILTER_BIN")
    dirs = [Path(milter).parent] if milter else []
    dirs += [REPO / ".build" / "release", REPO / ".build" / "debug"]
    for d in dirs:
        if (d / name).is_file() and os.access(d / name, os.X_OK):
            return d / name
    return None


@pytest.fixture(scope="module")
def binaries() -> tuple[Path, Path]:
    milter, load = _binary("SMIME_MILTER_BIN", "smime-milter"), _binary("MILTER_LOAD_BIN", "milter-load")
    if os.environ.get("SMIME_MILTER_BIN") and milter is None:
        pytest.fail("SMIME_MILTER_BIN is set but not executable")
    if milter is None or load is None:
        pytest.skip("smime-milter and milter-load are not built (swift build)")
    return milter, load


@pytest.fixture(scope="module")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="milter-load-test."))
    subprocess.run(["python3", str(PKI_SCRIPT), str(d / "pki")], check=True, timeout=120,
                   stdout=subprocess.DEVNULL)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _write_signing_config(d: Path, workdir: Path, endpoint: str, extra: str = "") -> None:
    """d/milter.conf: smime-milter on `endpoint` signing for alice (RSA) and bob (ECDSA) with the
    workdir's test PKI, plus `extra` lines."""
    (d / "signing.table").write_text("alice@example.com alice detached\nbob@example.com bob detached\n")
    (d / "milter.conf").write_text(
        f"Socket {endpoint}\nMode s\nInternalHosts 127.0.0.1\n"
        f"CertificateDir {workdir / 'pki' / 'certs'}\nSigningTable {d / 'signing.table'}\n{extra}")


@pytest.fixture(scope="module", params=["inet", "unix"])
def milter(request, binaries, workdir):
    """smime-milter signing for alice (RSA) and bob (ECDSA), on an inet or a unix socket."""
    milter_bin, _ = binaries
    d = workdir / request.param
    d.mkdir()
    endpoint = f"inet:{rigmod.free_port()}@127.0.0.1" if request.param == "inet" else f"unix:{d / 'milter.sock'}"
    _write_signing_config(d, workdir, endpoint, "SocketMode 0600\nLogLevel warning\n")
    log = open(d / "milter.log", "wb")
    proc = subprocess.Popen([str(milter_bin), "run", "--config", str(d / "milter.conf")],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        rigmod.wait_listening(endpoint, proc, "smime-milter")
        yield endpoint, proc.pid, d
    finally:
        rigmod.terminate(proc)
        log.close()


def _load(load_bin: Path, *args: str) -> tuple[int, str, dict[str, str]]:
    cp = subprocess.run([str(load_bin), *args], capture_output=True, timeout=TIMEOUT)
    out = cp.stdout.decode(errors="replace") + cp.stderr.decode(errors="replace")
    summary = next((line for line in out.splitlines() if line.startswith("milter-load ")), "")
    fields = dict(part.split("=", 1) for part in summary.split()[1:] if "=" in part)
    return cp.returncode, out, fields


def _verify(path: Path, root: Path) -> tuple[bool, bytes, str]:
    content = path.with_suffix(".content")
    cp = subprocess.run(["openssl", "cms", "-verify", "-in", str(path), "-CAfile", str(root),
                         "-out", str(content)], capture_output=True, timeout=TIMEOUT)
    text = cp.stdout.decode(errors="replace") + cp.stderr.decode(errors="replace")
    ok = cp.returncode == 0 and "Verification successful" in text
    return ok, content.read_bytes() if content.exists() else b"", text


@pytest.mark.parametrize("mode", ["sign-rsa", "sign-ecdsa"])
def test_load_signs_every_message_and_each_verifies(binaries, workdir, milter, mode):
    _, load_bin = binaries
    endpoint, pid, d = milter
    save = d / f"saved-{mode}"
    csv = d / "load.csv"
    rc, out, fields = _load(load_bin, "--socket", endpoint, "--mode", mode, "--concurrency", "4",
                            "--seconds", "2", "--messages-per-connection", "7", "--size", "3K",
                            "--save", str(save), "--save-count", "12", "--expect-signed",
                            "--milter-pid", str(pid), "--csv", str(csv), "--label", mode)
    assert rc == 0, out
    assert fields.get("errors") == "0", out
    messages = int(fields["messages"])
    assert messages > 12, out
    # --expect-signed makes an unsigned message an error; say it here too.
    assert int(fields["signed"]) == messages, out
    assert fields["verdicts"] == f"accept:{messages}", out
    assert int(fields["milter_peak_rss"].rstrip("KB")) > 0, out
    rows = csv.read_text().splitlines()
    assert rows[0].startswith("label,mode,socket,") and rows[-1].startswith(f"{mode},{mode},"), rows
    saved = sorted(save.glob("*.eml"))
    assert len(saved) == 12
    for path in saved:
        message = path.read_bytes()
        assert b"Content-Type: multipart/signed;" in message, path
        ok, content, text = _verify(path, workdir / "pki" / "root.pem")
        assert ok, f"{path}: {text}"
        assert b"the quick brown fox" in content


def test_load_verify_mode_sends_a_presigned_message_from_outside(binaries, workdir, milter):
    """verify mode: a message signed by alice, sent from the external address 127.0.0.2; the
    milter must leave it unchanged (no signing of mail that does not originate here)."""
    _, load_bin = binaries
    endpoint, pid, d = milter
    save = d / "presign"
    rc, out, _ = _load(load_bin, "--socket", endpoint, "--mode", "sign-rsa", "--messages", "1",
                       "--concurrency", "1", "--save", str(save), "--save-count", "1", "--expect-signed")
    assert rc == 0, out
    signed = next(save.glob("*.eml"))
    rc, out, fields = _load(load_bin, "--socket", endpoint, "--mode", "verify", "--message", str(signed),
                            "--concurrency", "2", "--messages", "40", "--save", str(d / "verified"),
                            "--save-count", "2")
    assert rc == 0, out
    assert fields["messages"] == "40" and fields["errors"] == "0", out
    for path in (d / "verified").glob("*.eml"):
        ok, _, text = _verify(path, workdir / "pki" / "root.pem")
        assert ok, text


STOPS_UNDER_LOAD = 15


def test_stopped_under_load_the_milter_exits_cleanly_every_time(binaries, workdir):
    """SIGTERM while eight sessions are being signed, fifteen times: exit status 0 and "stopped"
    in the log each time, and the end-of-messages that came after the stop began are answered
    with tempfail (the MTA keeps those messages). Before, about one stop in ten under load died of
    SIGSEGV in libcrypto or libc: OpenSSL's atexit clean-up freed its state while a worker
    thread was still signing."""
    milter_bin, load_bin = binaries
    d = workdir / "stops"
    d.mkdir()
    endpoint = f"inet:{rigmod.free_port()}@127.0.0.1"
    _write_signing_config(d, workdir, endpoint)
    log_path = d / "milter.log"
    codes = []
    for i in range(STOPS_UNDER_LOAD):
        with open(log_path, "ab") as log:
            proc = subprocess.Popen([str(milter_bin), "run", "--config", str(d / "milter.conf")],
                                    stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        load = None
        try:
            rigmod.wait_listening(endpoint, proc, "smime-milter")
            load = subprocess.Popen([str(load_bin), "--socket", endpoint, "--mode", ("sign-rsa", "sign-ecdsa")[i % 2],
                                     "--concurrency", "8", "--seconds", "30"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5 + (i % 4) * 0.2)
            proc.send_signal(signal.SIGTERM)
            codes.append(proc.wait(timeout=60))
        finally:
            rigmod.terminate(proc)
            if load is not None:
                load.kill()
                load.wait(timeout=10)
    log = log_path.read_text(errors="replace")
    assert codes == [0] * STOPS_UNDER_LOAD, (codes, log[-3000:])
    assert log.count("smime-milter stopped") == STOPS_UNDER_LOAD, log[-3000:]
    assert "the milter is stopping" in log, log[-3000:]


def test_accept_all_milter_passes_messages_unchanged(binaries, workdir):
    _, load_bin = binaries
    endpoint = f"unix:{workdir / 'accept-all.sock'}"
    proc = subprocess.Popen([str(load_bin), "--serve-accept-all", endpoint], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        rigmod.wait_listening(endpoint, proc, "milter-load --serve-accept-all")
        rc, out, fields = _load(load_bin, "--socket", endpoint, "--mode", "pass-through",
                                "--concurrency", "3", "--messages", "300", "--size", "70K",
                                "--messages-per-connection", "10", "--save", str(workdir / "pass"),
                                "--save-count", "1")
        assert rc == 0, out
        assert fields["messages"] == "300" and fields["signed"] == "0", out
        assert fields["verdicts"] == "accept:300", out
        saved = next((workdir / "pass").glob("*.eml")).read_bytes()
        assert b"Content-Type: text/plain; charset=us-ascii\r\n" in saved
        assert len(saved) >= 70 * 1024 - 100
    finally:
        rigmod.terminate(proc)


def test_accept_all_milter_replays_the_edits_of_a_message(binaries, workdir):
    """--replay-edits: every message comes back with the file's MIME header fields in place of its
    own (milter-load's generated message has MIME-Version and a text/plain Content-Type) and the
    file's body in place of the MTA's (the bench's measure of what a signing milter's edits cost the MTA)."""
    _, load_bin = binaries
    replay = workdir / "replay.eml"
    body = b"".join(b"replayed line %05d of a body larger than one 64 KB chunk\r\n" % i for i in range(2000))
    replay.write_bytes(b"From: <alice@example.com>\r\nSubject: not replayed\r\nMIME-Version: 1.0\r\n"
                       b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\r\n"
                       b" micalg=sha-256; boundary=\"b1\"\r\n\r\n" + body)
    endpoint = f"unix:{workdir / 'replay.sock'}"
    proc = subprocess.Popen([str(load_bin), "--serve-accept-all", endpoint, "--replay-edits", str(replay)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        rigmod.wait_listening(endpoint, proc, "milter-load --serve-accept-all --replay-edits")
        rc, out, fields = _load(load_bin, "--socket", endpoint, "--mode", "pass-through", "--concurrency", "2",
                                "--messages", "20", "--save", str(workdir / "replayed"), "--save-count", "1")
        assert rc == 0, out
        assert fields["messages"] == "20" and fields["signed"] == "20" and fields["verdicts"] == "accept:20", out
        saved = next((workdir / "replayed").glob("*.eml")).read_bytes()
        head, _, got = saved.partition(b"\r\n\r\n")
        assert got == body
        assert head.count(b"MIME-Version: 1.0") == 1 and head.count(b"Content-Type:") == 1, head
        assert b"micalg=sha-256" in head and b"text/plain" not in head, head
        assert b"Subject: not replayed" not in head, head
    finally:
        rigmod.terminate(proc)


def test_edits_replayed_through_postfix_give_a_message_that_verifies(signing_rig, binaries, rcpt, tmp_path):
    """The real-peer check of --replay-edits (the bench's edit-replaying milter): Postfix applies
    the accept-all milter's edits, a message smime-milter signed, to a message of its own, and
    what Postfix delivers verifies with openssl cms against the rig's root, carries the signed
    body, and keeps the new message's own Subject (only MIME fields are replayed)."""
    _, load_bin = binaries
    r = signing_rig
    r.send_smtp(from_="alice@example.com", to=rcpt,
                data=f"From: Alice <alice@example.com>\nTo: <{rcpt}>\nSubject: signed for the replay\n\n"
                     "the body the replay carries\n")
    [signed] = r.sink.wait_for(rcpt)
    assert rigmod.openssl_verify(signed.message, r.trust_anchor, tmp_path / "signed").ok, r.diagnostics()
    replay = tmp_path / "replay.eml"
    replay.write_bytes(rigmod.crlf(signed.message))

    port = rigmod.free_port()
    endpoint = f"inet:{port}@127.0.0.1"
    proc = subprocess.Popen([str(load_bin), "--serve-accept-all", endpoint, "--replay-edits", str(replay)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ours = r.postfix.milter_socket
    try:
        rigmod.wait_listening(endpoint, proc, "milter-load --serve-accept-all --replay-edits")
        r.postfix.postconf(f"smtpd_milters=inet:127.0.0.1:{port}", f"non_smtpd_milters=inet:127.0.0.1:{port}")
        other = rcpt.replace("@", "-replayed@")
        r.send_smtp(from_="carol@example.com", to=other,
                    data=f"From: Carol <carol@example.com>\nTo: <{other}>\nSubject: not signed by anyone\n"
                         "Content-Type: text/html\n\n<p>a body the milter replaces</p>\n")
        [delivered] = r.sink.wait_for(other)
    finally:
        r.postfix.postconf(f"smtpd_milters={ours}", f"non_smtpd_milters={ours}")
        rigmod.terminate(proc)
    verification = rigmod.openssl_verify(delivered.message, r.trust_anchor, tmp_path / "replayed")
    assert verification.ok, verification.output + "\n" + delivered.message.decode(errors="replace")
    assert b"the body the replay carries" in verification.content
    assert delivered.body == signed.body
    head = delivered.header_bytes
    assert b"Subject: not signed by anyone" in head and b"signed for the replay" not in head, head
    assert b"text/html" not in head and head.count(b"MIME-Version:") == 1, head


class _BadMilter:
    """Negotiates like a milter, then answers end-of-message with a header addition that lacks
    its value (one NUL-terminated string instead of two): milter-load must call it an error."""

    def __init__(self, reply: bytes):
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(TIMEOUT)
        self.endpoint = f"inet:{self.sock.getsockname()[1]}@127.0.0.1"
        threading.Thread(target=self._serve, daemon=True).start()

    @staticmethod
    def _read(conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            try:
                while True:
                    length, = struct.unpack(">I", self._read(conn, 4))
                    packet = self._read(conn, length)
                    cmd = packet[:1]
                    if cmd == b"O":
                        # version 6, may add headers, no-reply for every step but EOM.
                        body = struct.pack(">III", 6, 0x1, 0x1000 | 0x4000 | 0x8000 | 0x80 | 0x40000 | 0x80000 | 0x2 | 0x200)
                        conn.sendall(struct.pack(">I", len(body) + 1) + b"O" + body)
                    elif cmd == b"E":
                        conn.sendall(struct.pack(">I", len(self.reply)) + self.reply)
                        conn.sendall(struct.pack(">I", 1) + b"a")
                    elif cmd == b"Q":
                        return
            except (EOFError, OSError):
                return

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("reply", [b"hX-Only-Name\0", b"bsome body", b"z"], ids=["header-without-value",
                                                                                "body-not-negotiated", "unknown"])
def test_malformed_reply_is_an_error(binaries, reply):
    _, load_bin = binaries
    bad = _BadMilter(reply)
    try:
        rc, out, fields = _load(load_bin, "--socket", bad.endpoint, "--mode", "pass-through",
                                "--concurrency", "1", "--messages", "1")
    finally:
        bad.close()
    assert rc == 1, out
    assert fields.get("errors") == "1", out
    assert "error: message 1:" in out


def test_memory_under_a_thousand_concurrent_large_messages(binaries, workdir):
    """Issue 11: 1,000 MTA connections at once, each sending a 1 MB message to be signed (1 GB of
    mail in flight). Every message is signed, none is refused, and the milter's memory stays
    bounded: bodies over SpoolThreshold go to spool files, and MaxConcurrentMessages lets only a
    few messages be decided at once although libmilter runs a thread per busy connection.
    Measured: 66 MB of growth with the gate, 320-410 MB without it (420 threads each holding a
    message and its signed copy). The bound asserted, a quarter of the mail in flight, is four
    times the measurement and fails without the gate."""
    milter_bin, load_bin = binaries
    d = workdir / "thousand"
    d.mkdir()
    spool = d / "spool"
    spool.mkdir(mode=0o700)
    endpoint = f"inet:{rigmod.free_port()}@127.0.0.1"
    (d / "signing.table").write_text("bob@example.com bob detached\n")
    (d / "milter.conf").write_text(
        f"Socket {endpoint}\nMode s\nInternalHosts 127.0.0.1\nMaxConnections 1000\n"
        f"CertificateDir {workdir / 'pki' / 'certs'}\nSigningTable {d / 'signing.table'}\n"
        f"SpoolThreshold 256K\nSpoolDirectory {spool}\nLogLevel warning\n")
    log = open(d / "milter.log", "wb")
    proc = subprocess.Popen([str(milter_bin), "run", "--config", str(d / "milter.conf")],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    connections, size = 1000, 1 << 20
    try:
        rigmod.wait_listening(endpoint, proc, "smime-milter")
        cp = subprocess.run([str(load_bin), "--socket", endpoint, "--mode", "sign-ecdsa",
                             "--concurrency", str(connections), "--messages", str(connections),
                             "--size", "1M", "--expect-signed", "--milter-pid", str(proc.pid),
                             "--save", str(d / "saved"), "--save-count", "3"],
                            capture_output=True, timeout=900)
        out = cp.stdout.decode(errors="replace") + cp.stderr.decode(errors="replace")
        summary = next((line for line in out.splitlines() if line.startswith("milter-load ")), "")
        fields = dict(part.split("=", 1) for part in summary.split()[1:] if "=" in part)
        assert cp.returncode == 0, out[-4000:]
        assert fields["errors"] == "0" and fields["signed"] == str(connections), out[-4000:]
        assert fields["verdicts"] == f"accept:{connections}", out[-4000:]
        growth_kb = int(fields["rss_growth"].rstrip("KB"))
        print(f"1,000 concurrent 1 MB messages: milter RSS grew by {growth_kb} KB "
              f"(peak {fields['milter_peak_rss']}); {summary}")
        assert 0 < growth_kb * 1024 < connections * size // 4, summary
        # All spool files were removed when their messages ended.
        assert list(spool.iterdir()) == []
        for path in sorted((d / "saved").glob("*.eml")):
            ok, content, text = _verify(path, workdir / "pki" / "root.pem")
            assert ok, f"{path}: {text}"
    finally:
        rigmod.terminate(proc)
        log.close()
