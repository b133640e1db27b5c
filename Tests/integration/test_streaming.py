# SPDX-License-Identifier: Apache-2.0
"""100 MB messages in the shapes that stream from the spool file: each is sent through the
milter (milter-load, one message), the milter's resident memory is read from /proc (VmRSS
before, VmHWM after: milter-load's rss_growth) and must grow by at most 64 MB, and the result
verifies with `openssl cms -verify`.

Shapes: opaque signing of a 100 MB 7-bit body (the SignedData goes to a scratch file in
SpoolDirectory and back in base64 from it); detached signing of a 100 MB multipart/mixed with an
8-bit text part beside a base64 attachment (StreamingMultipartConverter: the text part is
converted to quoted-printable from the spool file; also verified with NSS cmsutil and gpgsm);
inbound verification of a 100 MB multipart/signed made by `openssl cms -sign` and sent through a
real Postfix (the rig of rig.py) to the milter in Mode sv: part 1 is hashed from the spool file,
and the delivered copy carries smime=pass (here the RSS is read from /proc directly: VmRSS
before the message, VmHWM after delivery).

Environment: SMIME_MILTER_BIN as for test_load.py.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import rig as rigmod
from test_load import PKI_SCRIPT, _binary

SIZE = "100M"
GROWTH_BOUND_KB = 64 * 1024
TIMEOUT = 600


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    milter_bin, load_bin = _binary("SMIME_MILTER_BIN", "smime-milter"), _binary("MILTER_LOAD_BIN", "milter-load")
    if milter_bin is None or load_bin is None:
        pytest.skip("smime-milter and milter-load are not built (swift build)")
    d = tmp_path_factory.mktemp("streaming")
    subprocess.run(["python3", str(PKI_SCRIPT), str(d / "pki")], check=True, timeout=120, stdout=subprocess.DEVNULL)
    return milter_bin, load_bin, d


class Milter:
    """A fresh smime-milter (so its RSS before the message is its idle size)."""

    def __init__(self, milter_bin: Path, d: Path, name: str, table: str, mode: str = "s"):
        self.dir = d / name
        self.dir.mkdir()
        self.spool = self.dir / "spool"
        self.endpoint = f"inet:{rigmod.free_port()}@127.0.0.1"
        (self.dir / "signing.table").write_text(table)
        (self.dir / "milter.conf").write_text(
            f"Socket {self.endpoint}\nMode {mode}\nInternalHosts 127.0.0.1\n"
            f"CertificateDir {d / 'pki' / 'certs'}\nSigningTable {self.dir / 'signing.table'}\nLogLevel warning\n"
            f"SpoolDirectory {self.spool}\n")
        self.log = open(self.dir / "milter.log", "wb")
        self.proc = subprocess.Popen([str(milter_bin), "run", "--config", str(self.dir / "milter.conf")],
                                     stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        rigmod.wait_listening(self.endpoint, self.proc, "smime-milter")

    def close(self) -> None:
        rigmod.terminate(self.proc)
        self.log.close()


def _load(load_bin: Path, *args: str) -> tuple[int, str, dict[str, str]]:
    """test_load._load with a time bound for 100 MB on a loaded machine (it catches a hang)."""
    cp = subprocess.run([str(load_bin), *args], capture_output=True, timeout=TIMEOUT)
    out = cp.stdout.decode(errors="replace") + cp.stderr.decode(errors="replace")
    summary = next((line for line in out.splitlines() if line.startswith("milter-load ")), "")
    fields = dict(part.split("=", 1) for part in summary.split()[1:] if "=" in part)
    return cp.returncode, out, fields


def _verify_out(path: Path, root: Path, out: Path) -> tuple[bool, str]:
    cp = subprocess.run(["openssl", "cms", "-verify", "-in", str(path), "-CAfile", str(root), "-out", str(out)],
                        capture_output=True, timeout=TIMEOUT)
    text = cp.stdout.decode(errors="replace") + cp.stderr.decode(errors="replace")
    return cp.returncode == 0 and "Verification successful" in text, text


def _growth_kb(out: str) -> int:
    summary = next(line for line in out.splitlines() if line.startswith("milter-load "))
    field = next(part for part in summary.split() if part.startswith("rss_growth="))
    return int(field.split("=", 1)[1].removesuffix("KB"))


def test_opaque_signing_of_a_100_mb_body_streams(workdir):
    milter_bin, load_bin, d = workdir
    milter = Milter(milter_bin, d, "opaque", "alice@example.com alice opaque\n")
    try:
        save = milter.dir / "saved"
        rc, out, fields = _load(load_bin, "--socket", milter.endpoint, "--mode", "sign-rsa", "--concurrency", "1",
                                "--messages", "1", "--size", SIZE, "--save", str(save), "--save-count", "1",
                                "--expect-signed", "--milter-pid", str(milter.proc.pid))
        assert rc == 0 and fields.get("signed") == "1", out
        growth = _growth_kb(out)
        print(f"opaque {SIZE}: milter RSS growth {growth} KB ({fields.get('milter_peak_rss')} peak)")
        assert growth <= GROWTH_BOUND_KB, out
        saved = sorted(save.glob("*.eml"))
        assert len(saved) == 1
        head = saved[0].read_bytes()[:4096]
        assert b"smime-type=signed-data" in head, head[:600]
        content = milter.dir / "content"
        ok, text = _verify_out(saved[0], d / "pki" / "root.pem", content)
        assert ok, text
        assert content.stat().st_size > 99 * 1024 * 1024
        with open(content, "rb") as f:
            assert b"the quick brown fox" in f.read(1 << 20)
        # The scratch file had no name; the spool directory is empty again.
        assert os.listdir(milter.spool) == []
    finally:
        milter.close()


def test_detached_signing_of_a_100_mb_8bit_multipart_streams(workdir):
    milter_bin, load_bin, d = workdir
    message = d / "multipart-8bit.eml"
    rigmod.write_8bitmime_multipart(message, 100 * 1024 * 1024)
    milter = Milter(milter_bin, d, "multipart", "alice@example.com alice\n")
    try:
        save = milter.dir / "saved"
        rc, out, fields = _load(load_bin, "--socket", milter.endpoint, "--mode", "sign-rsa", "--concurrency", "1",
                                "--messages", "1", "--message", str(message), "--save", str(save), "--save-count", "1",
                                "--expect-signed", "--milter-pid", str(milter.proc.pid))
        assert rc == 0 and fields.get("signed") == "1", out
        growth = _growth_kb(out)
        print(f"8bit multipart {SIZE}: milter RSS growth {growth} KB ({fields.get('milter_peak_rss')} peak)")
        assert growth <= GROWTH_BOUND_KB, out
        saved = sorted(save.glob("*.eml"))
        assert len(saved) == 1
        with open(saved[0], "rb") as f:
            head = f.read(1 << 16)
        assert b"multipart/signed" in head, head[:800]
        # The 8-bit text part went out in quoted-printable, inside the signed entity.
        assert b"Content-Transfer-Encoding: quoted-printable" in head and b"Gr=C3=BC=C3=9Fe" in head, head[:1500]
        content = milter.dir / "content"
        ok, text = _verify_out(saved[0], d / "pki" / "root.pem", content)
        assert ok, text
        assert content.stat().st_size > 99 * 1024 * 1024
        # The other S/MIME implementations agree.
        signed = saved[0].read_bytes()
        for verify in (rigmod.nss_verify, rigmod.gpgsm_verify):
            if shutil.which("cmsutil" if verify is rigmod.nss_verify else "gpgsm"):
                good, log = verify(signed, d / "pki" / "root.pem", milter.dir)
                assert good, log[-2000:]
        assert os.listdir(milter.spool) == []
    finally:
        milter.close()


# ---------------------------------------------------------------------------------------------
# inbound: a 100 MB multipart/signed verified from the spool file, through a real Postfix

VERIFY_AUTHSERV = "test.example"   # the rig's AuthservID


@pytest.fixture(scope="module")
def inbound_setup(request):
    from conftest import _require_tools
    _require_tools()
    milter_bin = _binary("SMIME_MILTER_BIN", "smime-milter")
    if milter_bin is None:
        pytest.skip("smime-milter is not built (swift build)")
    r = rigmod.Rig(milter_bin=milter_bin)
    spool = r.root / "milter-spool"
    # SpoolThreshold is left at its default (8 MB): a 100 MB body is spooled.
    r.milter_settings = rigmod.MilterSettings(mode="sv", extra=(
        f"TrustAnchors {r.trust_anchor}\nSpoolDirectory {spool}\nLogLevel warning\n"))
    r.start()
    request.addfinalizer(r.stop)
    # Postfix's own limit (10 MB by default) would refuse the message before the milter sees it.
    r.postfix.postconf("message_size_limit=0", "mailbox_size_limit=0")
    return r, milter_bin, spool


def _write_big_signed(rig: rigmod.Rig, path: Path, rcpt: str, size: int) -> None:
    """A multipart/signed of about `size` bytes from alice, made by `openssl cms -sign` (not by
    us): part 1 a base64 attachment with CRLF line ends, signed in binary mode (-binary, so the
    bytes are hashed as they are) and written with CRLF everywhere (-crlfeol)."""
    content = path.with_suffix(".content")
    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n"
    with open(content, "wb") as f:
        f.write(b"Content-Type: application/octet-stream; name=\"data.bin\"\r\n"
                b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"data.bin\"\r\n\r\n")
        f.write(line * (size // len(line)))
    signed = path.with_suffix(".signed")
    pki = rig.pki_dir
    subprocess.run(["openssl", "cms", "-sign", "-binary", "-crlfeol", "-in", str(content), "-out", str(signed),
                    "-signer", str(pki / "certs" / "alice.pem"), "-certfile", str(pki / "intermediate.pem"),
                    "-md", "sha256"], check=True, timeout=TIMEOUT, capture_output=True)
    content.unlink()
    with open(path, "wb") as out:
        out.write(b"From: Alice <alice@example.com>\r\nTo: <" + rcpt.encode() + b">\r\n"
                  b"Subject: big signed attachment\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
                  b"Message-ID: <big.signed@example.com>\r\n")
        # -crlfeol leaves the base64 of the signature in LF lines; SMTP carries CRLF (part 1 is
        # CRLF already and stays byte for byte).
        out.write(rigmod.crlf(signed.read_bytes()))
    signed.unlink()


def _proc_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def _wait_delivered(directory: Path, timeout: float) -> Path:
    """The one smtp-sink dump in `directory` once complete (it ends with an empty line); only
    its head is read later (parsing a 100 MB dump whole is not needed)."""
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in sorted(directory.iterdir()) if directory.exists() else []:
            if p.is_file() and p.stat().st_size > 0:
                with open(p, "rb") as f:
                    f.seek(max(0, p.stat().st_size - 2))
                    if f.read() == b"\n\n":
                        return p
        time.sleep(1)
    raise AssertionError(f"nothing delivered to {directory} within {timeout} s")


def test_inbound_verification_of_a_100_mb_multipart_signed_streams(inbound_setup):
    import smtplib
    rig, milter_bin, spool = inbound_setup
    rcpt = f"big@{rigmod.SINK_DOMAIN}"
    message = rig.root / "big-signed.eml"
    _write_big_signed(rig, message, rcpt, 100 * 1024 * 1024)
    data = message.read_bytes()
    assert data.count(b"\n") == data.count(b"\r\n"), "the message must have CRLF line ends only"
    pid = rig.milter.proc.pid
    before = _proc_kb(pid, "VmRSS")
    with smtplib.SMTP(rigmod.EXTERNAL_ADDR, rig.postfix.ext_port, local_hostname="client.example", timeout=TIMEOUT,
                      source_address=(rigmod.EXTERNAL_ADDR, 0)) as s:
        s.ehlo()
        s.sendmail("alice@example.com", [rcpt], data)
    del data
    dump = _wait_delivered(rig.sink.directory, TIMEOUT)
    peak = _proc_kb(pid, "VmHWM")
    growth = peak - before
    print(f"inbound verification {SIZE}: milter RSS growth {growth} KB ({before} KB before, {peak} KB peak)")
    with open(dump, "rb") as f:
        head = f.read(1 << 16).decode(errors="replace")
    # The dump: smtp-sink's envelope records and Received field, then the message (LF line ends).
    header = head.split("\n\n", 1)[0]
    ours = [line for line in header.replace("\n\t", " ").replace("\n ", " ").splitlines()
            if line.lower().startswith("authentication-results:") and VERIFY_AUTHSERV in line]
    assert len(ours) == 1, head[:3000]
    assert "smime=pass" in ours[0], ours[0]
    assert "header.smime-identifier=alice@example.com" in ours[0] or "alice@example.com" in ours[0], ours[0]
    assert growth <= GROWTH_BOUND_KB, f"milter RSS grew by {growth} KB\n{rig.milter.log()[-3000:]}"
    # The in-memory path (the verify command reads the whole message) gives the same result.
    cp = subprocess.run([str(milter_bin), "verify", "--trust", str(rig.trust_anchor), str(message)],
                        capture_output=True, timeout=TIMEOUT)
    out = cp.stdout.decode(errors="replace") + cp.stderr.decode(errors="replace")
    assert "smime=pass" in out, out
    assert not spool.exists() or os.listdir(spool) == []
    message.unlink()
