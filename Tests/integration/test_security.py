# SPDX-License-Identifier: Apache-2.0
"""Who may talk to the milter: AllowedPeers, the socket rules of check-config and run.

The milter protocol has no authentication, so a peer that reaches the socket can claim any
client address and have mail signed. Here a raw milter-protocol client (below) claims the
internal address 127.0.0.1 in SMFIC_CONNECT and sends a message from alice@example.com, once
from a socket bound to 127.0.0.1 and once from one bound to 127.0.0.2 (still loopback), to a
milter listening on inet:PORT@0.0.0.0. The signature that comes back is checked with
`openssl cms -verify` against the test root.

Environment: SMIME_MILTER_BIN (default .build/release, then .build/debug).
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import struct
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import pytest

import rig as rigmod

REPO = Path(__file__).resolve().parents[2]
PKI_SCRIPT = REPO / "Tests" / "fixtures" / "make_test_pki.py"
TIMEOUT = 60
# How long a refused peer is given to get any answer. Its SYN is dropped by the kernel, so it
# never gets one; an allowed peer on loopback is answered in milliseconds.
REFUSED_WAIT = 3.0

MESSAGE_HEADERS = [
    ("From", "Alice <alice@example.com>"),
    ("To", "someone@sink.test"),
    ("Subject", "quarterly figures"),
    ("Date", "Fri, 04 Dec 2026 03:00:00 +0000"),
    ("Message-ID", "<security-test@example.com>"),
    ("MIME-Version", "1.0"),
    ("Content-Type", "text/plain; charset=us-ascii"),
]
MESSAGE_BODY = b"Hello,\r\n\r\nthe figures are attached in spirit.\r\n"


@pytest.fixture(scope="module")
def milter_bin() -> Path:
    path = rigmod.milter_binary()
    if os.environ.get("SMIME_MILTER_BIN") and not (path and path.is_file()):
        pytest.fail("SMIME_MILTER_BIN is set but not executable")
    if path is None:
        pytest.skip("smime-milter is not built (swift build)")
    return path


@pytest.fixture(scope="module")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="security-test."))
    os.chmod(d, 0o755)
    subprocess.run(["python3", str(PKI_SCRIPT), str(d / "pki")], check=True, timeout=120,
                   stdout=subprocess.DEVNULL)
    (d / "signing.table").write_text("alice@example.com alice detached\n")
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Milter:
    """smime-milter run on a configuration of its own; stopped by `stop()`."""

    def __init__(self, binary: Path, directory: Path, workdir: Path, lines: list[str]):
        directory.mkdir(parents=True, exist_ok=True)
        self.config = directory / "milter.conf"
        self.config.write_text("\n".join([
            "Mode s", "InternalHosts 127.0.0.1", "LogLevel info",
            f"CertificateDir {workdir / 'pki' / 'certs'}", f"SigningTable {workdir / 'signing.table'}",
            *lines]) + "\n")
        self.log_path = directory / "milter.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([str(binary), "run", "--config", str(self.config)],
                                     stdout=self._log, stderr=self._log, stdin=subprocess.DEVNULL)

    def wait_listening(self, port: int) -> None:
        rigmod.wait_listening(f"inet:{port}@127.0.0.1", self.proc, "smime-milter")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        rigmod.terminate(self.proc)
        self._log.close()


def _packet(command: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload) + 1) + command + payload


def _cstrings(*values: str) -> bytes:
    return b"".join(v.encode() + b"\0" for v in values)


def _read_packet(conn: socket.socket) -> tuple[bytes, bytes]:
    def exactly(n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = conn.recv(n - len(out))
            if not chunk:
                raise ConnectionError("milter closed the connection")
            out += chunk
        return out
    length = struct.unpack(">I", exactly(4))[0]
    data = exactly(length)
    return data[:1], data[1:]


def milter_session(port: int, source: str, claimed_client: str = "127.0.0.1") -> dict:
    """One message through the milter protocol (version 6, every step answered), from a
    socket bound to `source`. Returns {"answered": False} when the milter never answers
    (connect or option negotiation times out), else the final reply and the edits."""
    conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        conn.bind((source, 0))
        conn.settimeout(REFUSED_WAIT)
        try:
            conn.connect(("127.0.0.1", port))
            conn.sendall(_packet(b"O", struct.pack(">III", 6, 0x1FF, 0)))
            command, _ = _read_packet(conn)
        except (socket.timeout, TimeoutError, ConnectionError, OSError):
            return {"answered": False}
        assert command == b"O"
        conn.settimeout(TIMEOUT)

        def step(command: bytes, payload: bytes = b"") -> bytes:
            conn.sendall(_packet(command, payload))
            while True:
                reply, _ = _read_packet(conn)
                if reply != b"p":  # progress
                    return reply

        conn.sendall(_packet(b"D", b"C" + _cstrings("j", "mta.test")))
        assert step(b"C", _cstrings("client.example.com") + b"4" + struct.pack(">H", 12345)
                    + _cstrings(claimed_client)) == b"c"
        assert step(b"H", _cstrings("client.example.com")) == b"c"
        conn.sendall(_packet(b"D", b"M" + _cstrings("i", "SECTEST1")))
        assert step(b"M", _cstrings("<alice@example.com>")) == b"c"
        assert step(b"R", _cstrings("<someone@sink.test>")) == b"c"
        assert step(b"T") == b"c"
        for name, value in MESSAGE_HEADERS:
            assert step(b"L", _cstrings(name, value)) == b"c"
        assert step(b"N") == b"c"
        assert step(b"B", MESSAGE_BODY) == b"c"
        conn.sendall(_packet(b"D", b"E" + _cstrings("i", "SECTEST1")))
        conn.sendall(_packet(b"E"))
        headers: list[tuple[str, str]] = []
        body = b""
        while True:
            reply, payload = _read_packet(conn)
            if reply == b"b":
                body += payload
            elif reply in (b"h", b"m", b"i"):
                fields = payload[4:] if reply in (b"m", b"i") else payload
                name, value = fields.split(b"\0")[:2]
                headers.append((name.decode(), value.decode()))
            elif reply == b"p":
                continue
            elif reply in (b"a", b"c", b"t", b"r", b"d", b"y"):
                conn.sendall(_packet(b"Q"))
                return {"answered": True, "verdict": reply.decode(), "headers": headers, "body": body}
    finally:
        conn.close()


def is_signed_by_alice(result: dict, workdir: Path, tmp_path: Path) -> tuple[bool, str]:
    """The replaced body, under the Content-Type the milter set, verifies with openssl."""
    if not result.get("answered") or not result["body"]:
        return False, f"no signed body: {result}"
    content_type = next((v for n, v in reversed(result["headers"]) if n.lower() == "content-type"), None)
    if content_type is None or "multipart/signed" not in content_type:
        return False, f"Content-Type not multipart/signed: {result['headers']}"
    entity = tmp_path / "signed.eml"
    entity.write_bytes(b"MIME-Version: 1.0\r\nContent-Type: " + content_type.strip().encode() + b"\r\n\r\n" + result["body"])
    signer = tmp_path / "signer.pem"
    cp = subprocess.run(["openssl", "cms", "-verify", "-in", str(entity), "-CAfile", str(workdir / "pki" / "root.pem"),
                         "-signer", str(signer), "-out", str(tmp_path / "content")],
                        capture_output=True, timeout=TIMEOUT)
    text = cp.stdout.decode(errors="replace") + cp.stderr.decode(errors="replace")
    if cp.returncode != 0:
        return False, text
    subject = subprocess.run(["openssl", "x509", "-in", str(signer), "-noout", "-email"],
                             capture_output=True, timeout=TIMEOUT).stdout.decode()
    return "alice@example.com" in subject, text + subject


def decisions(log: str) -> int:
    return len(re.findall(r"decision=", log))


@pytest.fixture
def wildcard_milter(milter_bin, workdir, request):
    """A milter on inet:PORT@0.0.0.0 with the AllowedPeers given by the test's parameter."""
    milters = []

    def start(allowed: str, extra: list[str] = ()) -> tuple[Milter, int]:
        port = rigmod.free_port()
        m = Milter(milter_bin, workdir / f"m{port}", workdir, [f"Socket inet:{port}@0.0.0.0", f"AllowedPeers {allowed}", *extra])
        milters.append(m)
        m.wait_listening(port)
        return m, port
    yield start
    for m in milters:
        m.stop()


def test_peer_outside_allowed_peers_gets_no_reply_and_nothing_signed(wildcard_milter, workdir, tmp_path):
    milter, port = wildcard_milter("127.0.0.1")
    before = decisions(milter.log())
    refused = milter_session(port, "127.0.0.2")
    assert refused == {"answered": False}
    allowed = milter_session(port, "127.0.0.1")
    assert allowed["verdict"] == "a" or allowed["verdict"] == "c", allowed
    ok, why = is_signed_by_alice(allowed, workdir, tmp_path)
    assert ok, why
    rigmod.wait_until(lambda: decisions(milter.log()) >= before + 1, 10, "the signed message's log line")
    log = milter.log()
    # Exactly one message was seen: nothing of the refused peer reached the milter.
    assert decisions(log) == before + 1, log
    assert "decision=signed" in log
    assert re.search(r"listening on inet:\d+@0\.0\.0\.0 \(every IPv4 address of this host\), "
                     r"accepting connections only from 127\.0\.0\.1 \(AllowedPeers\)", log), log


def test_peer_added_to_allowed_peers_is_signed(wildcard_milter, workdir, tmp_path):
    milter, port = wildcard_milter("127.0.0.1, 127.0.0.2")
    result = milter_session(port, "127.0.0.2")
    ok, why = is_signed_by_alice(result, workdir, tmp_path)
    assert ok, why


def test_allowed_peers_any_lets_everyone_in_and_warns(wildcard_milter, workdir, tmp_path):
    milter, port = wildcard_milter("any")
    ok, why = is_signed_by_alice(milter_session(port, "127.0.0.3"), workdir, tmp_path)
    assert ok, why
    assert "warning: AllowedPeers any: every host that can reach" in milter.log()


def test_metrics_on_a_bare_port_are_loopback_and_show_no_key_material(wildcard_milter, workdir, tmp_path):
    metrics_port = rigmod.free_port()
    milter, port = wildcard_milter("127.0.0.1", [f"MetricsListen {metrics_port}"])
    assert is_signed_by_alice(milter_session(port, "127.0.0.1"), workdir, tmp_path)[0]
    assert f"metrics at http://127.0.0.1:{metrics_port}/metrics" in milter.log()

    def scrape() -> str:
        return urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=TIMEOUT).read().decode()

    def dropped(text: str) -> float:
        return float(re.search(r"^smime_milter_listener_dropped_packets (\S+)$", text, re.M).group(1))
    assert dropped(scrape()) == 0
    # A refused peer is not seen by the milter, but its dropped SYNs are counted.
    assert milter_session(port, "127.0.0.2") == {"answered": False}
    text = scrape()
    assert dropped(text) >= 1
    assert "smime_milter_messages_total" in text
    key_text = (workdir / "pki" / "certs" / "alice.pem").read_text()
    key_lines = [line for line in key_text.splitlines() if line and not line.startswith("-----")]
    assert "-----BEGIN" not in text and "PRIVATE" not in text
    assert not any(line in text for line in key_lines)


def check_config(milter_bin: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(milter_bin), "check-config", *args], capture_output=True, text=True, timeout=TIMEOUT)


@pytest.mark.parametrize("socket_spec", ["inet:{port}", "inet:{port}@0.0.0.0", "inet6:{port}@[::]"])
def test_wildcard_bind_without_allowed_peers_is_refused_by_check_config_and_run(milter_bin, tmp_path, socket_spec):
    port = rigmod.free_port()
    conf = tmp_path / "w.conf"
    conf.write_text(f"Mode v\nSocket {socket_spec.format(port=port)}\n")
    res = check_config(milter_bin, str(conf))   # the file alone, as opendkim -n takes it
    assert res.returncode != 0
    assert re.search(rf"^error: {re.escape(str(conf))}:2: Socket .* AllowedPeers is not set", res.stdout, re.M), res.stdout
    assert "AllowedPeers any" in res.stdout
    run = subprocess.run([str(milter_bin), "run", "--config", str(conf)], capture_output=True, text=True, timeout=TIMEOUT)
    assert run.returncode == 78, run.stderr
    assert f"{conf}:2: Socket" in run.stderr and "AllowedPeers is not set" in run.stderr
    conf.write_text(f"Mode v\nSocket {socket_spec.format(port=port)}\nAllowedPeers 127.0.0.1\n")
    assert check_config(milter_bin, "--config", str(conf)).returncode == 0


def test_unix_socket_others_could_write_is_refused(milter_bin, tmp_path):
    os.chmod(tmp_path, 0o755)
    conf = tmp_path / "u.conf"
    conf.write_text(f"Mode v\nSocket unix:{tmp_path / 'm.sock'}\nSocketMode 0666\n")
    res = check_config(milter_bin, str(conf))
    assert res.returncode != 0
    assert f"error: {conf}:3: SocketMode 0666 lets every local user connect" in res.stdout, res.stdout
    # A directory others may write to (no sticky bit): they could replace the socket.
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    conf.write_text(f"Mode v\nSocket unix:{open_dir / 'm.sock'}\nSocketMode 0660\n")
    res = check_config(milter_bin, str(conf))
    assert res.returncode != 0 and f"{open_dir} is writable by every local user" in res.stdout, res.stdout
    run = subprocess.run([str(milter_bin), "run", "--config", str(conf)], capture_output=True, text=True, timeout=TIMEOUT)
    assert run.returncode != 0 and "writable by every local user" in run.stderr
    assert not (open_dir / "m.sock").exists()
    # With the sticky bit (as /tmp has) others cannot remove what is not theirs: accepted.
    os.chmod(open_dir, 0o1777)
    assert check_config(milter_bin, str(conf)).returncode == 0
    # The socket as created: SocketMode exactly, never wider.
    os.chmod(open_dir, 0o755)
    log = open(tmp_path / "u.log", "wb")
    proc = subprocess.Popen([str(milter_bin), "run", "--config", str(conf)], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        rigmod.wait_listening(f"unix:{open_dir / 'm.sock'}", proc, "smime-milter")
        assert stat.S_IMODE(os.stat(open_dir / "m.sock").st_mode) == 0o660
    finally:
        rigmod.terminate(proc)
        log.close()
    assert re.search(r"listening on unix:\S+ \(mode 0660, owner \S+:\S+; group \S+ may connect\)",
                     (tmp_path / "u.log").read_text()), (tmp_path / "u.log").read_text()


def test_check_config_reports_every_error_with_file_and_line(milter_bin, tmp_path):
    conf = tmp_path / "e.conf"
    conf.write_text("Mode x\n# comment\nDigest md5\nSocket inet:8891@0.0.0.0\nNoSuchKey 1\n")
    res = check_config(milter_bin, str(conf))
    assert res.returncode == 1
    lines = [line for line in res.stdout.splitlines() if line.startswith("error: ")]
    assert [int(re.match(rf"error: {re.escape(str(conf))}:(\d+): ", line).group(1)) for line in lines] == [1, 3, 4, 5], res.stdout
    assert "4 errors" in res.stdout


def test_allowed_peers_too_long_for_the_kernel_filter_is_refused_with_its_line(milter_bin, tmp_path):
    peers = tmp_path / "peers"
    peers.write_text("".join(f"10.{i // 250}.{i % 250}.1\n" for i in range(2100)))
    conf = tmp_path / "p.conf"
    conf.write_text(f"Mode v\nSocket inet:{rigmod.free_port()}@0.0.0.0\nAllowedPeers {peers}\n")
    res = check_config(milter_bin, str(conf))
    assert res.returncode == 1
    assert f"error: {conf}:3: AllowedPeers: 2100 entries need a kernel filter of" in res.stdout, res.stdout
    run = subprocess.run([str(milter_bin), "run", "--config", str(conf)], capture_output=True, text=True, timeout=TIMEOUT)
    assert run.returncode == 78 and f"{conf}:3: AllowedPeers: 2100 entries" in run.stderr, run.stderr
    peers.write_text("".join(f"10.{i // 250}.{i % 250}.1\n" for i in range(1900)))
    res = check_config(milter_bin, str(conf))
    assert res.returncode == 0 and "# 1900 entries" in res.stdout, res.stdout
