# SPDX-License-Identifier: Apache-2.0
"""smime-milter behind a real Sendmail 8.17 (run from its unpacked Debian package, see
sendmail_rig.py), relaying to an smtp-sink on loopback.

- The rig alone relays a message to the sink (so a failure below is the milter's, not the rig's).
- With the milter: mail from alice@example.com arrives signed and `openssl cms -verify` passes
  against the test root; a From the envelope sender may not use arrives unsigned.
- With the milter's socket dead: Sendmail (F=T) answers 4xx and nothing is delivered.

Needs root. The milter binary: SMIME_MILTER_BIN, else .build/release or .build/debug.
Run: python3 -m pytest -v Tests/integration/test_sendmail.py
"""
import email.utils
import os
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import sendmail_rig  # noqa: E402
from sendmail_rig import SendmailRig, SmtpSink, free_port, wait_for_port  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the Sendmail rig needs root")


def milter_binary() -> pathlib.Path | None:
    given = os.environ.get("SMIME_MILTER_BIN")
    if given:
        return pathlib.Path(given)
    for config in ("release", "debug"):
        path = REPO / ".build" / config / "smime-milter"
        if path.is_file():
            return path
    return None


def message(sender_header: str, subject: str) -> bytes:
    return (
        f"From: {sender_header}\r\n"
        "To: Bob <bob@sink.test>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {email.utils.formatdate()}\r\n"
        f"Message-ID: {email.utils.make_msgid(domain='example.com')}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "Grüße aus dem Sendmail-Prüfstand.\r\n"
        "From the rig, with a line that starts with From.\r\n"
    ).encode()


def header_block(path: pathlib.Path) -> str:
    return path.read_bytes().split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode("utf-8", "replace")


@pytest.fixture
def sink(tmp_path):
    with SmtpSink(tmp_path / "sink") as s:
        yield s


def test_rig_relays_to_sink_without_milter(tmp_path, sink):
    with SendmailRig(tmp_path / "sendmail", sink.port) as mta:
        res = mta.send(message("Alice <alice@example.com>", "rig check"), "alice@example.com", ["bob@sink.test"])
        assert res.returncode == 0, res.stdout[-2000:]
        [got] = sink.wait_for(1)
    head = header_block(got)
    assert "Subject: rig check" in head
    assert "by rig.smime-milter.test (8.17" in head, "not relayed by our Sendmail 8.17"
    assert "multipart/signed" not in head


def test_dead_milter_tempfails(tmp_path, sink):
    """F=T: when the milter cannot be reached, Sendmail refuses with 4xx instead of passing mail."""
    dead = free_port()
    with SendmailRig(tmp_path / "sendmail", sink.port, milter=f"inet:{dead}@127.0.0.1") as mta:
        res = mta.send(message("Alice <alice@example.com>", "no milter"), "alice@example.com", ["bob@sink.test"])
        cf = (mta.workdir / "sendmail.cf").read_text()
    # The lines docs/sendmail.md gives produce the filter and the macros the milter reads.
    assert f"Xsmime-milter, S=inet:{dead}@127.0.0.1, F=T, T=S:30s;R:30s;E:60s" in cf
    macros = {l.split("=", 1)[0]: l.split("=", 1)[1] for l in cf.splitlines() if l.startswith("O Milter.macros.")}
    assert "{daemon_name}" in macros["O Milter.macros.connect"]
    assert {"i", "{auth_authen}"} <= {m.strip() for m in macros["O Milter.macros.envfrom"].split(",")}
    assert "i" in {m.strip() for m in macros["O Milter.macros.eom"].split(",")}
    assert res.returncode != 0
    assert "<** 4" in res.stdout or "<-  4" in res.stdout, res.stdout[-2000:]
    assert sink.messages() == []


@pytest.fixture
def pki(tmp_path):
    out = tmp_path / "pki"
    res = subprocess.run([sys.executable, str(REPO / "Tests/fixtures/make_test_pki.py"), str(out)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture
def milter(tmp_path, pki):
    binary = milter_binary()
    if binary is None or not binary.is_file():
        pytest.skip("no smime-milter binary (set SMIME_MILTER_BIN or build it)")
    port = free_port()
    conf = tmp_path / "smime-milter.conf"
    conf.write_text(
        f"Socket inet:{port}@127.0.0.1\n"
        "Mode s\n"
        "InternalHosts 127.0.0.1\n"
        f"CertificateDir {pki}/certs\n"
        "Digest sha256\n"
        "OnError tempfail\n"
        "LogLevel debug\n"
    )
    log = open(tmp_path / "milter.log", "wb")
    proc = subprocess.Popen([str(binary), "run", "--config", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process=proc)
        yield f"inet:{port}@127.0.0.1", tmp_path / "milter.log"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def cms_verify(path: pathlib.Path, root_pem: pathlib.Path, out: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", "cms", "-verify", "-CAfile", str(root_pem), "-in", str(path),
                           "-out", str(out)], capture_output=True, text=True)


def test_signed_through_sendmail(tmp_path, sink, pki, milter):
    socket_spec, log = milter
    with SendmailRig(tmp_path / "sendmail", sink.port, milter=socket_spec) as mta:
        res = mta.send(message("Alice <alice@example.com>", "signed by sendmail"), "alice@example.com",
                       ["bob@sink.test"])
        assert res.returncode == 0, res.stdout[-2000:] + "\nmilter log:\n" + log.read_text()[-2000:]
        # Not signed: the envelope sender may not use this From (no SenderMap).
        res = mta.send(message("Alice <alice@example.com>", "forged from"), "mallory@example.com",
                       ["bob@sink.test"])
        assert res.returncode == 0, res.stdout[-2000:]
        got = sink.wait_for(2)
    by_subject = {}
    for path in got:
        head = header_block(path)
        subject = next(l for l in head.splitlines() if l.startswith("Subject:"))
        by_subject[subject.removeprefix("Subject: ")] = path

    signed = by_subject["signed by sendmail"]
    head = header_block(signed)
    assert "multipart/signed" in head and "application/pkcs7-signature" in head, head
    assert "by rig.smime-milter.test (8.17" in head
    content = tmp_path / "content.txt"
    verify = cms_verify(signed, pki / "root.pem", content)
    assert verify.returncode == 0, verify.stderr
    assert "Verification successful" in verify.stderr
    assert "Prüfstand".encode() in content.read_bytes() or b"Pr=C3=BCfstand" in content.read_bytes()

    forged = by_subject["forged from"]
    assert "multipart/signed" not in header_block(forged)
    assert cms_verify(forged, pki / "root.pem", tmp_path / "forged.txt").returncode != 0
