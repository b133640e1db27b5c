# SPDX-License-Identifier: Apache-2.0
"""Large bodies go through a spool file (SpoolThreshold, SpoolDirectory).

A message over a small SpoolThreshold is signed from the spool file and verifies with
`openssl cms -verify`; the spool directory is created with mode 0700 and is empty once the
message is done; an aborted message and a dropped connection remove their file too. The
milter conversation for the abort cases is spoken here directly (every step answered, no
SMFIP_NR_* flags), so the test knows when the milter has taken each packet.

Environment: SMIME_MILTER_BIN as for test_load.py.
"""
from __future__ import annotations

import os
import socket
import stat
import struct
import subprocess
import time
from pathlib import Path

import pytest

import rig as rigmod
from test_load import PKI_SCRIPT, _binary, _load, _verify

THRESHOLD = 64 * 1024


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    milter_bin, load_bin = _binary("SMIME_MILTER_BIN", "smime-milter"), _binary("MILTER_LOAD_BIN", "milter-load")
    if milter_bin is None or load_bin is None:
        pytest.skip("smime-milter and milter-load are not built (swift build)")
    d = tmp_path_factory.mktemp("spool")
    subprocess.run(["python3", str(PKI_SCRIPT), str(d / "pki")], check=True, timeout=120, stdout=subprocess.DEVNULL)
    spool = d / "spool"   # does not exist yet: the milter creates it on first use
    endpoint = f"inet:{rigmod.free_port()}@127.0.0.1"
    (d / "signing.table").write_text("alice@example.com alice detached\nbob@example.com bob detached\n")
    (d / "milter.conf").write_text(
        f"Socket {endpoint}\nMode s\nInternalHosts 127.0.0.1\n"
        f"CertificateDir {d / 'pki' / 'certs'}\nSigningTable {d / 'signing.table'}\nLogLevel warning\n"
        f"SpoolThreshold {THRESHOLD}\nSpoolDirectory {spool}\n")
    log = open(d / "milter.log", "wb")
    proc = subprocess.Popen([str(milter_bin), "run", "--config", str(d / "milter.conf")],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        rigmod.wait_listening(endpoint, proc, "smime-milter")
        yield load_bin, endpoint, d, spool
    finally:
        rigmod.terminate(proc)
        log.close()


def _spool_files(spool: Path) -> list[str]:
    return sorted(os.listdir(spool)) if spool.exists() else []


@pytest.mark.parametrize("mode", ["sign-rsa", "sign-ecdsa"])
def test_a_message_over_the_threshold_is_spooled_signed_and_verifies(setup, mode):
    load_bin, endpoint, d, spool = setup
    save = d / f"saved-{mode}"
    rc, out, fields = _load(load_bin, "--socket", endpoint, "--mode", mode, "--concurrency", "2",
                            "--messages", "4", "--size", "300K", "--save", str(save), "--save-count", "4",
                            "--expect-signed")
    assert rc == 0, out
    assert fields.get("errors") == "0" and fields.get("signed") == "4", out
    # The directory only exists because a body went to a file; it is private and empty now.
    assert spool.is_dir(), out
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700
    assert _spool_files(spool) == []
    saved = sorted(save.glob("*.eml"))
    assert len(saved) == 4
    for path in saved:
        ok, content, text = _verify(path, d / "pki" / "root.pem")
        assert ok, f"{path}: {text}"
        assert len(content) > THRESHOLD and b"the quick brown fox" in content


class Conversation:
    """A minimal MTA side of the milter protocol (version 6) that waits for every reply."""

    def __init__(self, endpoint: str):
        port, host = endpoint[5:].split("@")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        reply = self.ask(b"O", struct.pack(">III", 6, 0x1FF, 0))
        assert reply[:1] == b"O", reply

    def send(self, command: bytes, data: bytes = b"") -> None:
        self.sock.sendall(struct.pack(">I", len(data) + 1) + command + data)

    def read(self) -> bytes:
        header = self._exactly(4)
        return self._exactly(struct.unpack(">I", header)[0])

    def ask(self, command: bytes, data: bytes = b"") -> bytes:
        self.send(command, data)
        return self.read()

    def _exactly(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("milter closed the connection")
            out += chunk
        return out

    def start_large_message(self) -> None:
        assert self.ask(b"C", b"client.test\0U") == b"c"
        assert self.ask(b"M", b"<alice@example.com>\0") == b"c"
        assert self.ask(b"R", b"<someone@sink.test>\0") == b"c"
        assert self.ask(b"L", b"From\0alice@example.com\0") == b"c"
        assert self.ask(b"N") == b"c"
        line = b"x" * 70 + b"\r\n"
        chunk = line * (60000 // len(line))
        for _ in range(3):   # about 180 KB, past the threshold
            assert self.ask(b"B", chunk) == b"c"

    def close(self) -> None:
        self.sock.close()


def test_abort_removes_the_spool_file(setup):
    _, endpoint, _, spool = setup
    c = Conversation(endpoint)
    try:
        c.start_large_message()
        assert len(_spool_files(spool)) == 1
        c.send(b"A")                                    # abort: no reply
        assert c.ask(b"M", b"<alice@example.com>\0") == b"c"   # the abort was handled before this
        assert _spool_files(spool) == []
        c.send(b"Q")
    finally:
        c.close()


def test_a_dropped_connection_removes_the_spool_file(setup):
    _, endpoint, _, spool = setup
    c = Conversation(endpoint)
    c.start_large_message()
    assert len(_spool_files(spool)) == 1
    c.close()
    # libmilter notices the closed connection on its own thread: wait for it, bounded.
    deadline = time.monotonic() + 20
    while _spool_files(spool) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _spool_files(spool) == []


def _large_message(kind: str) -> bytes:
    head = ("From: Alice <alice@example.com>\r\nTo: <someone@sink.test>\r\nSubject: spooled " + kind +
            "\r\nMIME-Version: 1.0\r\n")
    if kind == "multipart":
        # 7-bit throughout: signed straight from the spool file.
        attachment = b"".join(bytes([65 + i % 26]) * 76 + b"\r\n" for i in range(1500))
        body = (b"--XYZ\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nsee the attachment\r\n"
                b"--XYZ\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + attachment + b"--XYZ--\r\n")
        return (head + 'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\n').encode() + body
    if kind == "multipart-eightbit":
        # An 8-bit part inside a multipart: converted in memory (only a single text part streams).
        text = "caf\u00e9 in a part\r\n".encode() * 6000
        body = (b"--XYZ\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                + text + b"--XYZ--\r\n")
        return (head + 'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\n').encode() + body
    if kind == "latin1":
        # No charset stated, ISO-8859-1 bytes, "From " lines, trailing spaces and lines over
        # 998 octets: converted to quoted-printable a run of lines at a time.
        line = b"From the archive: d\xe9j\xe0 vu " + b"x" * 1100 + b" \r\n"
        return (head + "Content-Type: text/plain\r\n\r\n").encode() + line * 150
    # 8-bit UTF-8 text: converted to quoted-printable a run of lines at a time.
    body = "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e, line of eight-bit text\r\n".encode() * 3000
    return (head + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n").encode() + body


@pytest.mark.parametrize("kind", ["multipart", "eightbit", "latin1", "multipart-eightbit"])
def test_spooled_messages_of_other_shapes_sign_and_verify(setup, kind):
    load_bin, endpoint, d, spool = setup
    source = d / f"{kind}.eml"
    source.write_bytes(_large_message(kind))
    save = d / f"saved-{kind}"
    rc, out, fields = _load(load_bin, "--socket", endpoint, "--mode", "sign-rsa", "--message", str(source),
                            "--concurrency", "1", "--messages", "2", "--save", str(save), "--save-count", "1",
                            "--expect-signed")
    assert rc == 0, out
    assert fields.get("errors") == "0" and fields.get("signed") == "2", out
    assert _spool_files(spool) == []
    saved = sorted(save.glob("*.eml"))
    assert len(saved) == 1
    ok, content, text = _verify(saved[0], d / "pki" / "root.pem")
    assert ok, f"{saved[0]}: {text}"
    if kind == "multipart":
        assert b"\r\n--XYZ\r\nContent-Type: application/octet-stream" in content
        assert b"Z" * 76 in content
    elif kind == "latin1":
        header, _, text = content.partition(b"\r\n\r\n")
        assert b"charset=unknown-8bit" in header and b"Content-Transfer-Encoding: quoted-printable" in header, header
        assert text.startswith(b"=46rom the archive: d=E9j=E0 vu "), text[:100]
        assert text.count(b"\r\n=46rom the archive: d=E9j=E0 vu ") == 149
        assert all(len(line) <= 76 for line in text.split(b"\r\n"))
        assert b"=20\r\n" in text
    else:
        assert b"Content-Transfer-Encoding: quoted-printable" in content
        assert b"caf=C3=A9" in content
