# SPDX-License-Identifier: Apache-2.0
"""Hostile inbound mail through real Postfix: each message is delivered with an
Authentication-Results field of ours (an RFC 7281 result with the reason), the milter does not
crash, and its peak memory (VmHWM) stays bounded.

The messages: MIME nested 1,000 deep, 10,000 parts, a 1 MB header field, invalid UTF-8 in the
addresses, a SignedData with 1,000 certificates and one with 1,000 SignerInfos, a truncated
DER signature, a signature part of garbage base64, and 200 levels of message/rfc822. They come
from the external client, so the milter (Mode sv) verifies them. The time bound per message is
generous (it catches a hang, not slowness).

Environment: SMIME_MILTER_BIN as for the other rig tests.
"""
from __future__ import annotations

import base64
import datetime
import subprocess
from pathlib import Path

import pytest

import rig as rigmod
from conftest import KEEP, _require_tools
from test_postfix_verify import AUTHSERV, has_verifier, our_results, verify_settings

TIME_BOUND = 120            # seconds from sending to delivery, per message
RSS_BOUND_MB = 1024         # the milter's peak resident memory over the whole test
COUNT = 1000                # certificates / SignerInfos


@pytest.fixture(scope="module")
def hostile_rig(request, milter_bin):
    _require_tools()
    if not has_verifier(milter_bin):
        pytest.skip(f"{milter_bin} has no verify command")
    r = rigmod.Rig(milter_bin=milter_bin)
    r.milter_settings = verify_settings(r)
    r.start()
    request.addfinalizer(lambda: r.stop(keep=KEEP))
    return r


def _head(rcpt: str, extra: str = "", sender: str = "Mallory <mallory@external.example>") -> bytes:
    return (f"From: {sender}\nTo: {rcpt}\nSubject: hostile\n"
            f"Message-ID: <{rcpt.split('@')[0]}@external.example>\nMIME-Version: 1.0\n{extra}").encode()


def _b64(der: bytes) -> bytes:
    text = base64.b64encode(der)
    return b"\n".join(text[i:i + 76] for i in range(0, len(text), 76)) + b"\n"


def _multipart_signed(rcpt: str, signature_part: bytes, encoding: str = "base64") -> bytes:
    entity = b"Content-Type: text/plain\n\nhello\n"
    return (_head(rcpt, 'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; '
                        'micalg=sha-256; boundary="sig"\n') + b"\n--sig\n" + entity + b"\n--sig\n"
            b"Content-Type: application/pkcs7-signature; name=smime.p7s\n"
            b"Content-Transfer-Encoding: " + encoding.encode() + b"\n\n" + signature_part + b"\n--sig--\n")


def _many_certificates(directory: Path) -> list[tuple[Path, Path]]:
    """COUNT distinct self-signed EC certificates with their keys (key file, cert file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    out = []
    for i in range(COUNT):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"hostile {i}")])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(i + 1).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
        k, c = directory / f"k{i}.pem", directory / f"c{i}.pem"
        k.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
        c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out.append((k, c))
    return out


def _sign(args: list[str], directory: Path) -> bytes:
    content = directory / "content.txt"
    content.write_bytes(b"Content-Type: text/plain\r\n\r\nhello\r\n")
    cp = subprocess.run(["openssl", "cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER",
                         "-in", str(content), *args], capture_output=True, timeout=300, check=True)
    return cp.stdout


def _messages(r: rigmod.Rig) -> dict[str, bytes]:
    work = r.root / "hostile"
    certs = _many_certificates(work / "certs")
    bundle = work / "bundle.pem"
    bundle.write_bytes(b"".join(c.read_bytes() for _, c in certs))
    alice = r.pki_dir / "certs" / "alice.pem"
    good = _sign(["-signer", str(alice)], work)
    many_certs = _sign(["-signer", str(alice), "-certfile", str(bundle)], work)
    signer_args: list[str] = []
    for k, c in certs:
        signer_args += ["-signer", str(c), "-inkey", str(k)]
    many_signers = _sign(signer_args, work)

    m: dict[str, bytes] = {}
    deep = _head("deep@sink.test", 'Content-Type: multipart/mixed; boundary="b0"\n') + b"\n"
    for level in range(1000):
        deep += f"--b{level}\nContent-Type: multipart/mixed; boundary=\"b{level + 1}\"\n\n".encode()
    m["deep"] = deep + b"--b1000\nContent-Type: text/plain\n\ndeep\n"
    parts = _head("parts@sink.test", 'Content-Type: multipart/mixed; boundary="p"\n') + b"\n"
    m["parts"] = parts + b"".join(b"--p\nContent-Type: text/plain\n\nx\n" for _ in range(10_000)) + b"--p--\n"
    folded = b"\n ".join([b"w" * 70] * (1_000_000 // 72))
    m["big-header"] = _head("bigheader@sink.test", "X-Big: ") + folded + b"\n\nbody\n"
    m["bad-utf8"] = (b"From: \"\xff\xfe Mallory\" <mall\xc3ory@ex\xe9ample.com>\nTo: badutf8@sink.test\n"
                     b"Reply-To: \xf8\x88\x80\x80\x80@x\nSubject: bad\n"
                     b"Message-ID: <badutf8@external.example>\n\nbody\n")
    m["many-certs"] = _multipart_signed("manycerts@sink.test", _b64(many_certs))
    m["many-signers"] = _multipart_signed("manysigners@sink.test", _b64(many_signers))
    m["truncated"] = _multipart_signed("truncated@sink.test", _b64(good[: len(good) // 2]))
    m["garbage-b64"] = _multipart_signed("garbage@sink.test", b"!!!! not base64 ????\n" * 200)
    inner = b"Subject: innermost\n\ninnermost\n"
    for _ in range(200):
        inner = b"Subject: wrapped\nContent-Type: message/rfc822\n\n" + inner
    m["rfc822"] = _head("rfc822@sink.test", "Content-Type: message/rfc822\n") + b"\n" + inner
    return m


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_hostile_messages_get_a_result_and_the_milter_survives(hostile_rig):
    r = hostile_rig
    messages = _messages(r)
    pid = r.milter.proc.pid
    for name, data in messages.items():
        rcpt = {"deep": "deep", "parts": "parts", "big-header": "bigheader", "bad-utf8": "badutf8",
                "many-certs": "manycerts", "many-signers": "manysigners", "truncated": "truncated",
                "garbage-b64": "garbage", "rfc822": "rfc822"}[name] + "@sink.test"
        r.send_smtp(from_="mallory@external.example", to=rcpt, data=data, external=True)
        got = r.sink.wait_for(rcpt, timeout=TIME_BOUND)
        results = our_results(got[0].message)
        assert len(results) == 1, f"{name}: Authentication-Results of ours: {results}\n{r.diagnostics()}"
        assert "smime=" in results[0], f"{name}: {results[0]}"
        print(f"{name}: {' '.join(results[0].split())[:160]}")
        assert r.milter.proc.poll() is None, f"the milter died on {name}:\n{r.milter.log()[-3000:]}"
    # Each result says why: the limits, not an accident, decided these.
    by = {n: " ".join(our_results(r.sink.wait_for(rc, timeout=5)[0].message)[0].split()) for n, rc in [
        ("many-certs", "manycerts@sink.test"), ("many-signers", "manysigners@sink.test"),
        ("deep", "deep@sink.test"), ("truncated", "truncated@sink.test")]}
    assert "smime=permerror" in by["many-certs"] and "certificates" in by["many-certs"], by["many-certs"]
    assert "smime=permerror" in by["many-signers"] and "signers" in by["many-signers"], by["many-signers"]
    assert "smime=permerror" in by["truncated"], by["truncated"]
    rss = _peak_rss_mb(pid)
    print(f"milter peak RSS {rss:.0f} MB")
    assert rss < RSS_BOUND_MB, f"the milter's peak RSS is {rss:.0f} MB"
