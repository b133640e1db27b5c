# SPDX-License-Identifier: Apache-2.0
"""Revocation at the point of use behind a real Postfix, with real servers on loopback:
`openssl ocsp` as the responder and `python3 -m http.server` serving the CRLs, for a test PKI
whose certificates name them (Tests/fixtures/make_revocation_pki.py).

- inbound mail signed by a revoked certificate gets smime=fail with the reason and date;
- mail signed by a good one passes;
- a revoked identity of ours is not used to sign (OnError accept here, so its mail goes out
  unsigned, as for any identity that did not load) and says so in the log and in `certs`.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import rig as rigmod
from conftest import KEEP, _require_tools
from rig import MilterSettings, crlf

REPO = Path(__file__).resolve().parents[2]
AUTHSERV = "test.example"


def wait_for_text(path: Path, text: str, timeout: float = 20) -> None:
    rigmod.wait_until(lambda: path.exists() and text in path.read_text(errors="replace"), timeout,
                      f"{text!r} in {path}")


@pytest.fixture(scope="module")
def revocation_pki(tmp_path_factory):
    """The PKI and its servers; yields (directory, ocsp port, crl port)."""
    _require_tools()
    out = tmp_path_factory.mktemp("revocation-pki")
    ports = [rigmod.free_port() for _ in range(4)]
    subprocess.run([sys.executable, str(REPO / "Tests" / "fixtures" / "make_revocation_pki.py"), str(out),
                    *map(str, ports)], check=True, timeout=120)
    procs = []
    ocsp_log = out / "ocsp.log"
    with open(ocsp_log, "wb") as log:
        procs.append(subprocess.Popen(
            ["openssl", "ocsp", "-index", str(out / "ocsp" / "index.txt"), "-port", str(ports[0]),
             "-rsigner", str(out / "ocsp" / "responder.pem"), "-rkey", str(out / "ocsp" / "responder.key"),
             "-CA", str(out / "intermediate.pem"), "-nmin", "60"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True))
    procs.append(subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(out / "crl"), str(ports[2])],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
    try:
        # openssl ocsp hangs after a connection that sends nothing: wait for its log line.
        wait_for_text(ocsp_log, "waiting for OCSP client connections")
        rigmod.wait_for_port("127.0.0.1", ports[2], 20, "CRL server")
        yield out, ports[0], ports[2]
    finally:
        for p in procs:
            rigmod.terminate(p)


METRICS_PORT = rigmod.free_port()


def settings(pki: Path) -> MilterSettings:
    return MilterSettings(
        mode="sv", on_error="accept", sender_map=None,
        signing_table="good@example.com good detached\nrevoked@example.com revoked detached\n",
        extra=(f"TrustAnchors {pki / 'trust.pem'}\n"
               "RevocationCheck ocsp,crl\n"
               "RevocationTimeout 5\n"
               "OnRevocationUnknown tempfail\n"
               f"MetricsListen 127.0.0.1:{METRICS_PORT}\n"))


@pytest.fixture(scope="module")
def revocation_rig(request, milter_bin, revocation_pki) -> rigmod.Rig:
    pki, _, _ = revocation_pki
    r = rigmod.Rig(milter_bin=milter_bin)
    r.milter.cert_dir = pki / "certs"
    r.milter_settings = settings(pki)
    r.start()
    if KEEP:
        print(f"\nrig directory kept: {r.root}")
    request.addfinalizer(lambda: r.stop(keep=KEEP))
    return r


def message(pki: Path, who: str, rcpt: str, workdir: Path) -> bytes:
    entity = crlf("Content-Type: text/plain; charset=us-ascii\n\nThe figures are 42.\n")
    signed = rigmod.openssl_sign(entity, pki / "certs" / f"{who}.pem", workdir, certfile=pki / "intermediate.pem")
    head = (f"From: {who} <{who}@example.com>\nTo: <{rcpt}>\nSubject: figures\n"
            f"Date: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <{who}.{time.time_ns()}@example.com>\n")
    return crlf(head.encode()) + crlf(signed)


def our_result(delivered: rigmod.Delivered) -> str:
    values = [v for n, v in delivered.header_fields() if n.lower() == "authentication-results"
              and v.strip().lower().startswith(AUTHSERV)]
    assert len(values) == 1, values
    return " ".join(values[0].split())


def test_inbound_signed_by_revoked_certificate_fails_with_reason(revocation_rig, revocation_pki, rcpt, tmp_path):
    pki, ocsp_port, _ = revocation_pki
    revocation_rig.send_smtp(from_="revoked@example.com", to=rcpt, data=message(pki, "revoked", rcpt, tmp_path),
                             external=True)
    [d] = revocation_rig.sink.wait_for(rcpt)
    ar = our_result(d)
    assert "smime=fail (certificate revoked: keyCompromise, " in ar, ar
    assert f"ocsp http://127.0.0.1:{ocsp_port}" in ar, ar


def test_inbound_signed_by_good_certificate_passes(revocation_rig, revocation_pki, rcpt, tmp_path):
    pki, _, _ = revocation_pki
    revocation_rig.send_smtp(from_="good@example.com", to=rcpt, data=message(pki, "good", rcpt, tmp_path),
                             external=True)
    [d] = revocation_rig.sink.wait_for(rcpt)
    assert "smime=pass" in our_result(d)


def test_revoked_identity_is_not_used_to_sign(revocation_rig, revocation_pki, rcpt):
    body = "From: <{0}>\nTo: <{1}>\nSubject: hello\nMIME-Version: 1.0\nContent-Type: text/plain\n\nhi\n"
    revocation_rig.send_smtp(from_="revoked@example.com", to=rcpt, data=body.format("revoked@example.com", rcpt))
    revocation_rig.send_smtp(from_="good@example.com", to=rcpt, data=body.format("good@example.com", rcpt))
    delivered = revocation_rig.sink.wait_for(rcpt, count=2)
    by_sender = {d.parsed()["From"]: d.parsed() for d in delivered}
    assert by_sender["<revoked@example.com>"].get_content_type() == "text/plain"
    assert by_sender["<good@example.com>"].get_content_type() == "multipart/signed"
    log = revocation_rig.milter.log()
    assert "certificate of identity revoked is revoked: certificate revoked: keyCompromise" in log, log[-3000:]
    certs = subprocess.run([str(revocation_rig.milter.binary), "certs", "--config", str(revocation_rig.milter.config_path)],
                           capture_output=True, text=True, timeout=60)
    assert certs.returncode == 1, certs
    assert "# revoked: revocation revoked (keyCompromise" in certs.stdout, certs.stdout
    assert "# good: revocation good by " in certs.stdout, certs.stdout


def test_metrics_count_checks_cache_hits_and_fetches(revocation_rig, revocation_pki, rcpt, tmp_path):
    import urllib.request
    pki, _, _ = revocation_pki
    for _ in range(2):
        revocation_rig.send_smtp(from_="good@example.com", to=rcpt, data=message(pki, "good", rcpt, tmp_path),
                                 external=True)
    revocation_rig.sink.wait_for(rcpt, count=2)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=10) as r:
        text = r.read().decode()
    lines = [l for l in text.splitlines() if l.startswith("smime_milter_revocation") or l.startswith("smime_milter_identity")]
    assert any(l.startswith("smime_milter_revocation_checks_total") and 'status="good"' in l for l in lines), lines
    assert any(l.startswith("smime_milter_revocation_checks_total") and 'source="cache"' in l for l in lines), lines
    assert any(l.startswith("smime_milter_revocation_cache_hits_total") for l in lines), lines
    assert any(l.startswith("smime_milter_revocation_fetch_duration_seconds_count") for l in lines), lines
    assert any(l.startswith("smime_milter_identity_revoked") and 'identity="revoked"' in l and float(l.split()[-1]) == 1
               for l in lines), lines
