# SPDX-License-Identifier: Apache-2.0
"""`smime-milter certs --recipients` on the CertificateStore the configuration names.

import (a partner's PEM certificate and intermediates), list (with the point-of-use check
against TrustAnchors), export (the same certificate back, as PEM), history (a newer certificate
for the same address replaces the older, which is kept), remove, and a damaged store file
refused with a clear error. No MTA is needed.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import rig as rigmod
from rig import PKI_SCRIPT, run


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pki")
    run(["python3", str(PKI_SCRIPT), str(out)], timeout=120)
    return out


@pytest.fixture()
def setup(tmp_path, pki):
    binary = rigmod.milter_binary()
    if binary is None:
        pytest.skip("smime-milter is not built")
    conf = tmp_path / "smime-milter.conf"
    conf.write_text(f"Mode v\nTrustAnchors {pki / 'root.pem'}\nCertificateStore sqlite:{tmp_path / 'store.sqlite'}\n")

    def certs(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run([str(binary), "certs", "--recipients", "-c", str(conf), *args], check=check)

    return certs, tmp_path


def der(pem: bytes) -> bytes:
    return run(["openssl", "x509", "-outform", "DER"], input=pem).stdout


def test_import_list_export_remove(setup, pki):
    certs, _ = setup
    dave = pki / "enc" / "dave.pem"
    assert b"dave@partner.example\timported" in certs("import", str(dave)).stdout
    assert b"already there" in certs("import", str(dave)).stdout
    certs("import", str(pki / "enc" / "expired.pem"))
    listing = json.loads(certs("list", "--json").stdout)["recipients"]
    by_address = {r["address"]: r for r in listing}
    assert by_address["dave@partner.example"]["usable"] == "yes"
    assert by_address["old@partner.example"]["usable"].startswith("no (certificate expired")
    assert by_address["dave@partner.example"]["source"] == "imported"
    exported = certs("export", "Dave@Partner.Example").stdout
    assert exported.count(b"-----BEGIN CERTIFICATE-----") == 2  # certificate and intermediate
    assert der(exported) == der(dave.read_bytes())
    assert certs("remove", "dave@partner.example").returncode == 0
    assert certs("export", "dave@partner.example", check=False).returncode == 1
    assert certs("remove", "dave@partner.example", check=False).returncode == 1
    assert [r["address"] for r in json.loads(certs("--json").stdout)["recipients"]] == ["old@partner.example"]


def test_newer_certificate_replaces_older_and_history_is_kept(setup, pki):
    certs, tmp = setup
    certs("import", str(pki / "enc" / "dave.pem"))
    # A renewal: the same address and key, issued now by the same CA (notBefore later than the first).
    key = tmp / "dave.key"
    run(["openssl", "pkey", "-in", str(pki / "enc" / "dave.pem"), "-out", str(key)])
    request = run(["openssl", "req", "-new", "-key", str(key), "-subj", "/O=smime-milter test/CN=dave@partner.example",
                   "-addext", "subjectAltName=email:dave@partner.example",
                   "-addext", "keyUsage=critical,digitalSignature,keyEncipherment",
                   "-addext", "extendedKeyUsage=emailProtection"]).stdout
    renewed = run(["openssl", "x509", "-req", "-CA", str(pki / "intermediate.pem"), "-CAkey", str(pki / "intermediate.key"),
                   "-set_serial", "4242", "-days", "500", "-copy_extensions", "copy"], input=request).stdout
    (tmp / "renewed.pem").write_bytes(renewed + (pki / "intermediate.pem").read_bytes())
    assert b"replaces" in certs("import", str(tmp / "renewed.pem")).stdout
    current = json.loads(certs("--json").stdout)["recipients"]
    assert [(r["address"], r["serial"]) for r in current] == [("dave@partner.example", "1092")]
    history = json.loads(certs("history", "dave@partner.example", "--json").stdout)["recipients"]
    assert [r["current"] for r in history] == [True, False]
    # Importing the old one again does not bring it back.
    assert b"already there" in certs("import", str(pki / "enc" / "dave.pem")).stdout
    assert json.loads(certs("--json").stdout)["recipients"][0]["serial"] == "1092"


def test_bad_input_is_a_clear_error(setup, pki):
    certs, tmp = setup
    bad = certs("import", str(pki / "root.pem"), check=False)
    assert bad.returncode == 2 and b"CA certificate" in bad.stderr
    missing = certs("import", str(tmp / "nothing.pem"), check=False)
    assert missing.returncode == 2 and b"cannot read" in missing.stderr
    (tmp / "store.sqlite").write_bytes(b"\x00garbage" * 1000)
    damaged = certs("list", check=False)
    assert damaged.returncode == 2
    assert b"not a certificate store or damaged" in damaged.stderr and b"store.sqlite" in damaged.stderr


def test_check_config_reports_the_encryption_setup(setup, pki):
    certs, tmp = setup
    binary = rigmod.milter_binary()
    (tmp / "enc.table").write_text("*@partner.example require\n")
    conf = tmp / "enc.conf"
    base = f"Mode v\nTrustAnchors {pki / 'root.pem'}\nCertificateStore sqlite:{tmp / 'store.sqlite'}\nEncryptionTable enc.table\n"
    conf.write_text(base + f"ArchiveCertificate {pki / 'enc' / 'archive.pem'}\n")
    first = run([str(binary), "check-config", "-c", str(conf)])
    assert b"not there yet" in first.stdout and not (tmp / "store.sqlite").exists()
    certs("import", str(pki / "enc" / "dave.pem"))
    ok = run([str(binary), "check-config", "-c", str(conf)])
    assert b"1 address(es) with a certificate" in ok.stdout and b"archive: archive@example.com" in ok.stdout
    conf.write_text(base + f"ArchiveCertificate {pki / 'enc' / 'expired.pem'}\n")
    expired = run([str(binary), "check-config", "-c", str(conf)], check=False)
    assert expired.returncode == 1 and b"ArchiveCertificate" in expired.stdout and b"expired" in expired.stdout
    conf.write_text(base.replace(f"TrustAnchors {pki / 'root.pem'}\n", ""))
    no_anchors = run([str(binary), "check-config", "-c", str(conf)], check=False)
    assert no_anchors.returncode == 1 and b"needs TrustAnchors" in no_anchors.stdout
