#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Regenerate the signed seeds of the FuzzVerify target and their trust anchor.

Usage: python3 Fuzz/make_seeds.py   (from the repository root)

Makes a throw-away PKI with Tests/fixtures/make_test_pki.py, signs a few messages with
`openssl cms` and writes:
  Fuzz/Anchors/fuzz-root.pem        the PKI's root (the target's trust anchor); no key is kept
  Fuzz/Anchors/verify-time          the time (seconds since 1970) the target validates at: now,
                                    so the certificates stay valid for the seeds however old
  Fuzz/Corpus/FuzzVerify/*.eml      valid, tampered, re-stored, wrapped and untrusted messages
  Fuzz/Regressions/FuzzVerify/*.eml inputs that once failed (each named for what it caught)
"""
import base64
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZ = os.path.join(ROOT, "Fuzz")

TEXT = (b"Content-Type: text/plain; charset=us-ascii\r\n"
        b"Content-Transfer-Encoding: 7bit\r\n\r\n"
        b"Hello Bob,\r\n\r\nthis message is signed.\r\n--\r\nAlice\r\n")
MIXED = (b"Content-Type: multipart/mixed; boundary=\"inner\"\r\n\r\n"
         b"--inner\r\nContent-Type: text/plain; charset=utf-8\r\n"
         b"Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe, see the attachment.\r\n"
         b"--inner\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n"
         b"Content-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\r\n"
         b"--inner--\r\n")
HEADER = "From: {name} <{addr}>\r\nTo: bob@example.net\r\nSubject: seed\r\nMIME-Version: 1.0\r\n"


def sign(pki, who, content, detached=True):
    cert = os.path.join(pki, "certs", who + ".pem")
    key = os.path.join(pki, "certs", who + ".key")
    args = ["openssl", "cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER",
            "-signer", cert, "-certfile", os.path.join(pki, "intermediate.pem")]
    args += ["-inkey", key] if os.path.exists(key) else []
    args += [] if detached else ["-nodetach"]
    return subprocess.run(args, input=content, stdout=subprocess.PIPE, check=True).stdout


def b64(der):
    text = base64.b64encode(der)
    return b"\r\n".join(text[i:i + 76] for i in range(0, len(text), 76)) + b"\r\n"


def detached(pki, who, entity, addr, signed_entity=None):
    der = sign(pki, who, signed_entity if signed_entity is not None else entity)
    return detached_with(der, entity, addr)


def detached_with(der, entity, addr):
    head = HEADER.format(name=addr.split("@")[0], addr=addr).encode()
    head += (b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; "
             b"micalg=sha-256; boundary=\"sig\"\r\n\r\n")
    return (head + b"--sig\r\n" + entity + b"\r\n--sig\r\n"
            b"Content-Type: application/pkcs7-signature; name=smime.p7s\r\n"
            b"Content-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=smime.p7s\r\n\r\n" + b64(der) + b"\r\n--sig--\r\n")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        pki = os.path.join(tmp, "pki")
        subprocess.run([sys.executable, os.path.join(ROOT, "Tests/fixtures/make_test_pki.py"), pki],
                       check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(pki, "root.pem"), "rb") as f:
            root = f.read()
        seeds = {}
        seeds["alice-rsa-detached.eml"] = detached(pki, "alice", TEXT, "alice@example.com")
        seeds["bob-ec-detached-mixed.eml"] = detached(pki, "bob", MIXED, "bob@example.com")
        good = seeds["alice-rsa-detached.eml"]
        # A footer appended to the signed text part (the diagnosis finds it).
        seeds["alice-footer-appended.eml"] = good.replace(b"Alice\r\n\r\n--sig\r\n", b"Alice\r\n_____\r\nList footer\r\n\r\n--sig\r\n")
        # The same message stored with LF line ends (verifyAndDiagnose reports lineEndsChanged).
        seeds["alice-lf-stored.eml"] = good.replace(b"\r\n", b"\n")
        # A list wrapper: the signed message inside multipart/mixed with a footer part.
        inner = good.split(b"MIME-Version: 1.0\r\n", 1)[1]
        seeds["alice-list-wrapper.eml"] = (HEADER.format(name="list", addr="alice@example.com").encode()
                                           + b"Content-Type: multipart/mixed; boundary=\"list\"\r\n\r\n--list\r\n" + inner
                                           + b"\r\n--list\r\nContent-Type: text/plain\r\n\r\nfooter\r\n--list--\r\n")
        # Opaque signed-data.
        opaque = sign(pki, "bob", TEXT, detached=False)
        seeds["bob-opaque.eml"] = (HEADER.format(name="bob", addr="bob@example.com").encode()
                                   + b"Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\n"
                                   b"Content-Transfer-Encoding: base64\r\n\r\n" + b64(opaque))
        # A signer from another root (untrusted) and a From that is not the signer.
        subprocess.run(["openssl", "cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER", "-signer",
                        os.path.join(pki, "other", "mallory.pem"), "-out", os.path.join(tmp, "m.der")],
                       input=TEXT, check=True)
        with open(os.path.join(tmp, "m.der"), "rb") as f:
            seeds["mallory-untrusted.eml"] = detached_with(f.read(), TEXT, "alice@example.com")
        # The SignedData's digestAlgorithms with an unknown OID (the SignerInfo keeps SHA-256):
        # OpenSSL 3.0's CMS_verify leaked its copy of the content BIO on this input.
        der = sign(pki, "alice", TEXT)
        sha256 = bytes.fromhex("0609608648016503040201")
        at = der.index(sha256) + len(sha256) - 1
        leak = detached_with(der[:at] + b"\x7f" + der[at + 1:], TEXT, "alice@example.com")

    with open(os.path.join(FUZZ, "Anchors", "fuzz-root.pem"), "wb") as f:
        f.write(root)
    with open(os.path.join(FUZZ, "Anchors", "verify-time"), "w") as f:
        f.write("%d\n" % int(time.time()))
    for name, data in seeds.items():
        with open(os.path.join(FUZZ, "Corpus", "FuzzVerify", name), "wb") as f:
            f.write(data)
    with open(os.path.join(FUZZ, "Regressions", "FuzzVerify", "cms-verify-unknown-digest-leak.eml"), "wb") as f:
        f.write(leak)


if __name__ == "__main__":
    main()
