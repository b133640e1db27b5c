# SPDX-License-Identifier: Apache-2.0
"""Certificate lifecycle with real parts on loopback: `smime-milter identity new/renew` against an
internal CA run with `openssl ca` behind EnrollCommand, and against OpenSSL's own CMP mock server
(`openssl cmp -port ...`); the issued identity then signs mail through real Postfix, verified by
openssl cms, NSS cmsutil and gpgsm; a renewal with `identity renew --due` while mail flows.
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import threading
from pathlib import Path

import pytest

import rig as rigmod
from conftest import KEEP, _require_tools
from rig import INTERNAL_ADDR, MilterSettings, free_port, run, wait_for_port, wait_until

CMP_REF = "gateway-1"
CMP_SECRET = "cmp-shared-secret"


def message(sender: str, rcpt: str, subject: str) -> bytes:
    return (f"From: {sender}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{abs(hash((sender, rcpt, subject)))}@example.com>\r\n\r\n"
            "Hello,\r\n\r\nthe figures.\r\n").encode()


class InternalCA:
    """`openssl ca` over the test PKI's issuing CA, with the enrol and revoke scripts the
    milter's EnrollCommand/RevokeCommand run (request PEM in, chain PEM out)."""

    def __init__(self, root: Path, pki: Path):
        self.dir = root / "ca"
        self.pki = pki
        self.dir.mkdir()
        (self.dir / "new").mkdir()
        (self.dir / "index.txt").write_text("")
        (self.dir / "serial").write_text("1000\n")
        (self.dir / "days").write_text("365\n")
        (self.dir / "ca.cnf").write_text(f"""\
[ca]
default_ca = local
[local]
dir = {self.dir}
database = $dir/index.txt
serial = $dir/serial
new_certs_dir = $dir/new
certificate = {pki}/intermediate.pem
private_key = {pki}/intermediate.key
default_md = sha256
policy = anything
copy_extensions = copy
unique_subject = no
email_in_dn = no
[anything]
commonName = supplied
""")
        self.enrol = self.dir / "enrol.sh"
        self.enrol.write_text(f"""#!/bin/sh
# EnrollCommand: the request on stdin, the chain on stdout; "refuse" in ca/mode refuses.
set -e
d={self.dir}
if [ "$(cat $d/mode 2>/dev/null)" = refuse ]; then echo "CA policy: not authorised for this domain" >&2; exit 3; fi
t=$(mktemp -d)
cat > $t/req.pem
openssl ca -batch -config $d/ca.cnf -days "$(cat $d/days)" -in $t/req.pem -out $t/cert.pem -notext 2>$t/err || {{ cat $t/err >&2; exit 1; }}
cat $t/cert.pem {pki}/intermediate.pem
rm -rf $t
""")
        self.revoke = self.dir / "revoke.sh"
        self.revoke.write_text(f"""#!/bin/sh
# RevokeCommand: the certificate on stdin, the reason as the last argument.
set -e
t=$(mktemp -d)
cat > $t/cert.pem
openssl ca -config {self.dir}/ca.cnf -revoke $t/cert.pem -crl_reason "$1" 2>&1 >&2
rm -rf $t
""")
        for p in (self.enrol, self.revoke):
            os.chmod(p, 0o755)

    def set_days(self, days: int) -> None:
        (self.dir / "days").write_text(f"{days}\n")

    def set_refusing(self, refusing: bool) -> None:
        (self.dir / "mode").write_text("refuse\n" if refusing else "issue\n")

    def issue_for_key(self, key: Path, address: str, out: Path) -> Path:
        """A certificate for `key` naming `address`, issued by this CA (for the CMP mock)."""
        req = out.with_suffix(".csr")
        run(["openssl", "req", "-new", "-key", str(key), "-subj", f"/CN={address}",
             "-addext", f"subjectAltName=email:{address}", "-addext", "extendedKeyUsage=emailProtection",
             "-addext", "keyUsage=critical,digitalSignature,keyEncipherment", "-out", str(req)])
        run(["openssl", "ca", "-batch", "-config", str(self.dir / "ca.cnf"), "-days", "365",
             "-in", str(req), "-out", str(out), "-notext"])
        return out

    def index(self) -> str:
        return (self.dir / "index.txt").read_text()


class CMPMock:
    """OpenSSL's own CMP server: answers every request with `cert` (or a rejection)."""

    def __init__(self, directory: Path, *, cert: Path, chain: Path, status: int | None = None):
        self.port = free_port()
        self.log = directory / f"cmp-mock-{self.port}.log"
        cmd = ["openssl", "cmp", "-port", str(self.port), "-srv_ref", CMP_REF, "-srv_secret", f"pass:{CMP_SECRET}",
               "-rsp_cert", str(cert), "-rsp_extracerts", str(chain)]
        if status is not None:
            cmd += ["-pkistatus", str(status), "-statusstring", "enrolment not authorised by test policy",
                    "-failure", "2"]
        self._log = open(self.log, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=self._log, start_new_session=True)
        wait_for_port(INTERNAL_ADDR, self.port, 20, "openssl cmp mock server", alive=lambda: self.proc.poll() is None)

    def stop(self) -> None:
        rigmod.stop_process(self.proc)
        self._log.close()


@pytest.fixture(scope="module")
def lc(request, milter_bin):
    """A rig whose milter signs by address (no SigningTable), with PidFile, TrustAnchors and the
    internal CA behind EnrollCommand/RevokeCommand."""
    _require_tools()
    r = rigmod.Rig(milter_bin=milter_bin, milter_settings=MilterSettings(signing_table=None, sender_map=None))
    ca = InternalCA(r.root, r.pki_dir)
    state = r.root / "state"
    r.milter_settings.extra = "\n".join([
        f"TrustAnchors {r.trust_anchor}",
        f"PidFile {r.root / 'milter.pid'}",
        f"EnrollCommand {ca.enrol}",
        f"RevokeCommand {ca.revoke}",
        "EnrollTimeout 60",
        f"StateDirectory {state}",
    ])
    r.ca = ca
    r.start()
    yield r
    print(r.diagnostics())
    r.stop(keep=KEEP)


def identity(r: rigmod.Rig, *args: str, config: Path | None = None) -> subprocess.CompletedProcess:
    return run([str(r.milter_bin), "identity", *args, "--config", str(config or r.milter.config_path)],
               check=False, timeout=180)


def reloads(r: rigmod.Rig) -> int:
    return len(re.findall(r"notice: reloaded ", r.milter.log()))


def wait_reloads(r: rigmod.Rig, count: int) -> None:
    wait_until(lambda: reloads(r) >= count, 30, f"{count} milter reload(s)")


def cert_dir(r: rigmod.Rig) -> Path:
    return r.milter.cert_dir


def serial_of(pem_path: Path) -> str:
    out = run(["openssl", "x509", "-noout", "-serial", "-in", str(pem_path)]).stdout.decode()
    return out.strip().split("=", 1)[1].upper()


def signer_serial(delivered: rigmod.Delivered, r: rigmod.Rig, workdir: Path) -> str:
    v = rigmod.openssl_verify(delivered.message, r.trust_anchor, workdir)
    assert v.ok, f"openssl cms -verify failed:\n{v.output}"
    p = workdir / "signer.pem"
    p.write_bytes(v.signer_pem)
    return serial_of(p)


# ---------------------------------------------------------------------------------------------
# EnrollCommand with openssl ca

def test_identity_new_with_openssl_ca_signs_mail_that_verifies_everywhere(lc, rcpt, tmp_path):
    before = reloads(lc)
    cp = identity(lc, "new", "dave@example.com")
    assert cp.returncode == 0, cp.stderr.decode() + cp.stdout.decode()
    assert "told to reload (SIGHUP)" in cp.stdout.decode()
    pem, key = cert_dir(lc) / "dave@example.com.pem", cert_dir(lc) / "dave@example.com.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" not in pem.read_bytes()
    text = run(["openssl", "x509", "-noout", "-text", "-in", str(pem)]).stdout.decode()
    assert "email:dave@example.com" in text and "E-mail Protection" in text
    assert "Key Encipherment" in text and "3072 bit" in text
    assert re.search(r"^V\t.*\t/CN=dave@example.com$", lc.ca.index(), re.M)
    wait_reloads(lc, before + 1)

    res = lc.send_swaks(from_="dave@example.com", to=rcpt, data=message("dave@example.com", rcpt, "first signed"))
    assert res.accepted, res.transcript
    [d] = lc.sink.wait_for(rcpt)
    assert signer_serial(d, lc, tmp_path) == serial_of(pem)
    ok, log = rigmod.nss_verify(d.message, lc.trust_anchor, tmp_path)
    assert ok, f"NSS cmsutil:\n{log}"
    ok, log = rigmod.gpgsm_verify(d.message, lc.trust_anchor, tmp_path)
    assert ok, f"gpgsm:\n{log}"

    cp = identity(lc, "new", "dave@example.com")
    assert cp.returncode == 1 and "use identity renew" in cp.stderr.decode()


def test_refused_enrolment_is_reported_with_the_cas_answer_and_installs_nothing(lc):
    lc.ca.set_refusing(True)
    try:
        cp = identity(lc, "new", "refused@example.com")
    finally:
        lc.ca.set_refusing(False)
    assert cp.returncode == 1
    assert "CA policy: not authorised for this domain" in cp.stderr.decode()
    assert not list(cert_dir(lc).glob("refused@*"))
    assert not [p for p in cert_dir(lc).iterdir() if p.name.startswith(".staging")]


# ---------------------------------------------------------------------------------------------
# CMP with OpenSSL's mock server

def cmp_config(lc: rigmod.Rig, mock: CMPMock) -> Path:
    secret = lc.root / "cmp.secret"
    secret.write_text(CMP_SECRET + "\n")
    os.chmod(secret, 0o600)
    text = lc.milter.config_path.read_text()
    text = "\n".join(l for l in text.splitlines() if not l.startswith(("EnrollCommand", "RevokeCommand")))
    path = lc.root / f"cmp-{mock.port}.conf"
    path.write_text(text + f"\nCMPServer 127.0.0.1:{mock.port}\nCMPPath pkix/\nCMPReference {CMP_REF}\n"
                           f"CMPSecretFile {secret}\n")
    return path


@pytest.fixture(scope="module")
def erin(lc):
    """erin@example.com's key, and a certificate the CA issued for it (what the CMP mock answers)."""
    key = lc.root / "erin.key"
    run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key)])
    cert = lc.ca.issue_for_key(key, "erin@example.com", lc.root / "erin.cert.pem")
    return key, cert


def test_cmp_enrolment_succeeds_and_signs(lc, erin, rcpt, tmp_path):
    key, cert = erin
    mock = CMPMock(lc.root, cert=cert, chain=lc.pki_dir / "intermediate.pem")
    try:
        before = reloads(lc)
        cp = identity(lc, "new", "erin@example.com", "--key", str(key), config=cmp_config(lc, mock))
    finally:
        mock.stop()
    assert cp.returncode == 0, cp.stderr.decode() + cp.stdout.decode()
    assert f"cmp 127.0.0.1:{mock.port}/pkix/" in cp.stdout.decode()
    assert serial_of(cert_dir(lc) / "erin@example.com.pem") == serial_of(cert)
    wait_reloads(lc, before + 1)
    res = lc.send_swaks(from_="erin@example.com", to=rcpt, data=message("erin@example.com", rcpt, "via CMP"))
    assert res.accepted, res.transcript
    [d] = lc.sink.wait_for(rcpt)
    assert signer_serial(d, lc, tmp_path) == serial_of(cert)


def test_cmp_refusal_is_reported_and_keeps_nothing(lc, erin):
    key, cert = erin
    mock = CMPMock(lc.root, cert=cert, chain=lc.pki_dir / "intermediate.pem", status=2)
    try:
        cp = identity(lc, "new", "frida@example.com", "--key", str(key), config=cmp_config(lc, mock))
    finally:
        mock.stop()
    assert cp.returncode == 1, cp.stderr.decode()
    err = cp.stderr.decode()
    assert "refused" in err and "rejection" in err and "enrolment not authorised by test policy" in err, err
    assert not list(cert_dir(lc).glob("frida@*"))


def test_cmp_answer_for_another_key_is_refused_and_the_old_identity_stays(lc, erin):
    """Renewing erin with a new key while the server answers with the certificate of the old
    key: OpenSSL's CMP client refuses it; erin's identity is untouched."""
    if not (cert_dir(lc) / "erin@example.com.pem").exists():
        pytest.skip("needs the identity of test_cmp_enrolment_succeeds_and_signs")
    key, cert = erin
    before = (cert_dir(lc) / "erin@example.com.pem").read_bytes(), (cert_dir(lc) / "erin@example.com.key").read_bytes()
    mock = CMPMock(lc.root, cert=cert, chain=lc.pki_dir / "intermediate.pem")
    try:
        cp = identity(lc, "renew", "erin@example.com", config=cmp_config(lc, mock))
    finally:
        mock.stop()
    assert cp.returncode != 0
    assert "the current identity (if any) is kept" in cp.stderr.decode()
    assert "public key" in cp.stderr.decode().lower() or "does not match" in cp.stderr.decode(), cp.stderr.decode()
    after = (cert_dir(lc) / "erin@example.com.pem").read_bytes(), (cert_dir(lc) / "erin@example.com.key").read_bytes()
    assert after == before


def test_cmp_answer_for_another_address_is_refused_and_the_old_identity_stays(lc, erin, tmp_path):
    """The server answers with a certificate for the request's key that names another address:
    our own check refuses it."""
    if not (cert_dir(lc) / "erin@example.com.pem").exists():
        pytest.skip("needs the identity of test_cmp_enrolment_succeeds_and_signs")
    key2 = tmp_path / "k2.pem"
    run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key2)])
    wrong = lc.ca.issue_for_key(key2, "mallory@example.com", tmp_path / "wrong.pem")
    before = (cert_dir(lc) / "erin@example.com.pem").read_bytes()
    mock = CMPMock(lc.root, cert=wrong, chain=lc.pki_dir / "intermediate.pem")
    try:
        cp = identity(lc, "renew", "erin@example.com", "--key", str(key2), config=cmp_config(lc, mock))
    finally:
        mock.stop()
    assert cp.returncode == 1
    assert "is not for erin@example.com" in cp.stderr.decode(), cp.stderr.decode()
    assert (cert_dir(lc) / "erin@example.com.pem").read_bytes() == before


# ---------------------------------------------------------------------------------------------
# renewal under load

def test_renew_due_while_mail_flows_signs_every_message(lc, rcpt, tmp_path):
    lc.ca.set_days(10)
    try:
        cp = identity(lc, "new", "frank@example.com")
    finally:
        lc.ca.set_days(365)
    assert cp.returncode == 0, cp.stderr.decode()
    old_serial = serial_of(cert_dir(lc) / "frank@example.com.pem")
    reloaded = reloads(lc)
    wait_reloads(lc, reloaded)

    sent: list[str] = []
    stop = threading.Event()
    errors: list[str] = []

    def load():
        n = after_stop = 0
        # Until the renewal is done and reloaded, then ten more.
        while after_stop < 10:
            n += 1
            if stop.is_set():
                after_stop += 1
            subject = f"load {n}"
            res = lc.send_swaks(from_="frank@example.com", to=rcpt, data=message("frank@example.com", rcpt, subject))
            if not res.accepted:
                errors.append(res.transcript)
            sent.append(subject)
            if n >= 200:
                break

    before = reloads(lc)
    thread = threading.Thread(target=load)
    thread.start()
    wait_until(lambda: len(sent) >= 5, 120, "5 messages before the renewal")
    cp = identity(lc, "renew", "--due")
    wait_reloads(lc, before + 1)
    after_renewal = len(sent)
    stop.set()
    thread.join(timeout=300)
    assert cp.returncode == 0, cp.stderr.decode() + cp.stdout.decode()
    assert "frank@example.com" in cp.stdout.decode()
    assert "dave@example.com" not in cp.stdout.decode()  # valid a year: not due
    assert not errors, errors[0]

    delivered = lc.sink.wait_for(rcpt, count=len(sent), timeout=120)
    assert len(delivered) == len(sent)
    new_serial = serial_of(cert_dir(lc) / "frank@example.com.pem")
    assert new_serial != old_serial
    by_subject = {}
    for i, d in enumerate(delivered):
        by_subject[d.parsed()["Subject"]] = signer_serial(d, lc, tmp_path / f"v{i}")
    assert set(by_subject) == set(sent)
    assert set(by_subject.values()) <= {old_serial, new_serial}
    # Every message sent after the reload carries the new certificate.
    for subject in sent[after_renewal + 1:]:
        assert by_subject[subject] == new_serial, subject
    assert by_subject[sent[0]] == old_serial
    old_count = sum(1 for v in by_subject.values() if v == old_serial)
    print(f"renewal under load: {len(sent)} messages, {old_count} signed with the old certificate, "
          f"{len(sent) - old_count} with the new one")
    archived = list((cert_dir(lc) / "archive").glob(f"frank@example.com.{old_serial}.*"))
    assert sorted(p.suffix for p in archived) == [".key", ".pem"]


# ---------------------------------------------------------------------------------------------
# identities from the directory (slapd)

BASE = "dc=example,dc=com"
ROOTDN = f"cn=admin,{BASE}"
ROOTPW = "directory-secret"


def person(uid: str) -> str:
    return (f"dn: uid={uid},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n"
            f"mail: {uid}@example.com\n\n")


class Slapd:
    """A private OpenLDAP server on a loopback port with a small directory."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.dir.mkdir()
        (self.dir / "db").mkdir()
        self.port = free_port()
        self.conf = self.dir / "slapd.conf"
        self.conf.write_text(f"""\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile {self.dir}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
suffix "{BASE}"
rootdn "{ROOTDN}"
rootpw {ROOTPW}
directory {self.dir}/db
""")
        ldif = self.dir / "base.ldif"
        ldif.write_text(f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n"
                        f"dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n" + person("gina"))
        run(["slapadd", "-f", str(self.conf), "-l", str(ldif)])
        self.proc = subprocess.Popen(["slapd", "-d", "0", "-f", str(self.conf), "-h", f"ldap://127.0.0.1:{self.port}/"],
                                     stdout=subprocess.DEVNULL, stderr=open(self.dir / "slapd.log", "wb"),
                                     start_new_session=True)
        wait_for_port(INTERNAL_ADDR, self.port, 20, "slapd", alive=lambda: self.proc.poll() is None)

    def add(self, uid: str) -> None:
        run(["ldapadd", "-x", "-H", f"ldap://127.0.0.1:{self.port}/", "-D", ROOTDN, "-w", ROOTPW],
            input=person(uid).encode())

    def delete(self, uid: str) -> None:
        run(["ldapdelete", "-x", "-H", f"ldap://127.0.0.1:{self.port}/", "-D", ROOTDN, "-w", ROOTPW,
             f"uid={uid},ou=people,{BASE}"])

    def stop(self) -> None:
        rigmod.stop_process(self.proc)


@pytest.fixture(scope="module")
def slapd(lc):
    if not shutil.which("slapd"):
        pytest.fail("slapd is missing: run scripts/install-deps.sh")
    s = Slapd(lc.root / "ldap")
    yield s
    s.stop()


def sync_config(lc: rigmod.Rig, slapd: Slapd) -> Path:
    secret = lc.root / "ldap.secret"
    secret.write_text(ROOTPW + "\n")
    os.chmod(secret, 0o600)
    path = lc.root / "sync.conf"
    path.write_text(lc.milter.config_path.read_text()
                    + f"IdentitySource ldap://127.0.0.1:{slapd.port}/ou=people,{BASE}?mail?sub?(objectClass=inetOrgPerson)\n"
                    + f"IdentitySourceBindDN {ROOTDN}\nIdentitySourceSecretFile {secret}\n")
    return path


def test_directory_sync_enrols_arrivals_and_revokes_departures(lc, slapd, rcpt, tmp_path):
    config = sync_config(lc, slapd)
    cp = identity(lc, "sync", "--dry-run", config=config)
    assert cp.returncode == 0, cp.stderr.decode()
    assert "would enrol gina@example.com" in cp.stdout.decode()
    assert not (cert_dir(lc) / "gina@example.com.pem").exists()

    before = reloads(lc)
    cp = identity(lc, "sync", config=config)
    assert cp.returncode == 0, cp.stderr.decode() + cp.stdout.decode()
    pem = cert_dir(lc) / "gina@example.com.pem"
    gina_serial = serial_of(pem)
    # Identities not from the directory are never touched by a sync.
    assert (cert_dir(lc) / "dave@example.com.pem").exists()

    slapd.add("hugo")
    cp = identity(lc, "sync", config=config)
    assert cp.returncode == 0, cp.stderr.decode() + cp.stdout.decode()
    assert "hugo@example.com" in cp.stdout.decode() and "gina" not in cp.stdout.decode()
    wait_reloads(lc, before + 2)
    res = lc.send_swaks(from_="hugo@example.com", to=rcpt, data=message("hugo@example.com", rcpt, "hugo joined"))
    assert res.accepted, res.transcript
    [d] = lc.sink.wait_for(rcpt)
    assert signer_serial(d, lc, tmp_path) == serial_of(cert_dir(lc) / "hugo@example.com.pem")

    slapd.delete("gina")
    cp = identity(lc, "sync", "--dry-run", config=config)
    assert "would stop signing for gina@example.com" in cp.stdout.decode()
    cp = identity(lc, "sync", config=config)
    assert cp.returncode == 0, cp.stderr.decode() + cp.stdout.decode()
    assert not pem.exists()
    assert list((cert_dir(lc) / "archive").glob(f"gina@example.com.{gina_serial}.key"))
    wait_reloads(lc, before + 3)
    sent = message("gina@example.com", rcpt, "gina left")
    res = lc.send_swaks(from_="gina@example.com", to=rcpt, data=sent)
    assert res.accepted, res.transcript
    delivered = lc.sink.wait_for(rcpt, count=2)
    last = [x for x in delivered if x.parsed()["Subject"] == "gina left"][0]
    assert last.parsed().get_content_type() == "text/plain"
    assert re.search(r"no identity for gina@example.com", lc.milter.log())
    assert re.search(rf"^R\t.*\t{gina_serial}\t.*\t/CN=gina@example.com$", lc.ca.index(), re.M), lc.ca.index()
    assert re.search(rf"^V\t.*\t/CN=hugo@example.com$", lc.ca.index(), re.M)


def test_recipient_certificates_from_the_directory(lc, slapd, tmp_path):
    """`certs --recipients sync` stores the directory's userCertificate;binary (one DER
    certificate) and userSMIMECertificate (PKCS#7 with the chain, intermediate first) values as
    recipient certificates with source ldap; a value that is no certificate is refused and named;
    a directory that cannot be reached changes nothing (exit 75)."""
    import base64
    import json
    from test_encryption import _pki_module
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    m = _pki_module()
    issuer = x509.load_pem_x509_certificate((lc.pki_dir / "intermediate.pem").read_bytes())
    issuer_key = serialization.load_pem_private_key((lc.pki_dir / "intermediate.key").read_bytes(), None)
    ivy = m.leaf(["ivy@partner.example"], m.rsa_key(), issuer, issuer_key)
    jan = m.leaf(["jan@partner.example"], m.rsa_key(), issuer, issuer_key)
    (tmp_path / "jan.pem").write_bytes(m.pem(jan))
    bag = run(["openssl", "crl2pkcs7", "-nocrl", "-certfile", str(lc.pki_dir / "intermediate.pem"),
               "-certfile", str(tmp_path / "jan.pem"), "-outform", "DER"]).stdout

    def entry(uid: str, attribute: str, value: bytes) -> str:
        return (f"dn: uid={uid},ou=partners,{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n"
                f"mail: {uid}@partner.example\n{attribute}:: {base64.b64encode(value).decode()}\n\n")
    ldif = (f"dn: ou=partners,{BASE}\nobjectClass: organizationalUnit\nou: partners\n\n"
            + entry("ivy", "userCertificate;binary", ivy.public_bytes(serialization.Encoding.DER))
            + entry("jan", "userSMIMECertificate", bag))
    run(["ldapadd", "-x", "-H", f"ldap://127.0.0.1:{slapd.port}/", "-D", ROOTDN, "-w", ROOTPW], input=ldif.encode())
    store = tmp_path / "recipients.db"
    config = tmp_path / "certs.conf"
    config.write_text(sync_config(lc, slapd).read_text() + f"CertificateStore sqlite:{store}\n"
                      + f"RecipientCertificateSource ldap://127.0.0.1:{slapd.port}/ou=partners,{BASE}??sub?(mail=*)\n")

    def certs(*args: str) -> subprocess.CompletedProcess:
        return run([str(lc.milter_bin), "certs", "--recipients", *args, "--config", str(config)], check=False, timeout=120)
    cp = certs("sync")
    assert cp.returncode == 0, cp.stderr.decode() + cp.stdout.decode()
    out = cp.stdout.decode()
    assert "ivy@partner.example\timported" in out and "jan@partner.example\timported" in out, out
    assert "2 values from the directory, 2 stored, 0 refused" in cp.stderr.decode()
    listed = {r["address"]: r for r in json.loads(certs("list", "--json").stdout)["recipients"]}
    assert listed["ivy@partner.example"]["source"] == "ldap"
    assert listed["jan@partner.example"]["source"] == "ldap"
    # jan's chain came in the bag: the intermediate is kept with jan's certificate.
    exported = certs("export", "jan@partner.example").stdout.decode()
    assert exported.count("BEGIN CERTIFICATE") == 2, exported
    assert x509.load_pem_x509_certificate(exported.encode()).serial_number == jan.serial_number
    # Again: nothing new; a CA's certificate under a person (slapd checks the syntax, so no
    # garbage) is refused and named, the others stay.
    run(["ldapadd", "-x", "-H", f"ldap://127.0.0.1:{slapd.port}/", "-D", ROOTDN, "-w", ROOTPW],
        input=entry("kim", "userCertificate;binary", issuer.public_bytes(serialization.Encoding.DER)).encode())
    cp = certs("sync")
    assert cp.returncode == 1, cp.stderr.decode()
    assert "already there" in cp.stdout.decode()
    assert "uid=kim,ou=partners" in cp.stderr.decode() and "CA certificate" in cp.stderr.decode(), cp.stderr.decode()
    unreachable = tmp_path / "down.conf"
    unreachable.write_text(config.read_text().replace(f"127.0.0.1:{slapd.port}", f"127.0.0.1:{free_port()}"))
    cp = run([str(lc.milter_bin), "certs", "--recipients", "sync", "--config", str(unreachable)], check=False, timeout=120)
    assert cp.returncode == 75, cp.stderr.decode()
    assert len(json.loads(certs("list", "--json").stdout)["recipients"]) == 2


def test_certs_shows_source_next_renewal_and_last_enrolment(lc):
    import json
    if not (cert_dir(lc) / "dave@example.com.pem").exists():
        pytest.skip("needs the identity of the first test")
    cp = run([str(lc.milter_bin), "certs", "--json", "--config", str(lc.milter.config_path)], check=False)
    items = {i["identity"]: i for i in json.loads(cp.stdout)["identities"]}
    dave = items["dave@example.com"]
    assert dave["source"] == "identity new"
    assert dave["last_enrolment"]["ok"] is True and "enrolment done" in dave["last_enrolment"]["result"]
    assert dave["next_renewal"] < dave["not_after"]
    # The operator's own identities are not renewed by the gateway.
    assert items["alice"]["source"] == "file" and "next_renewal" not in items["alice"]
    if "hugo@example.com" in items:
        assert items["hugo@example.com"]["source"] == "directory"
    cp = run([str(lc.milter_bin), "certs", "--config", str(lc.milter.config_path)], check=False)
    header = cp.stdout.decode().splitlines()[0] if isinstance(cp.stdout, bytes) else cp.stdout.splitlines()[0]
    assert header.endswith("SOURCE\tNEXT-RENEWAL\tLAST-ENROLMENT")


def test_on_missing_identity_tempfail_keeps_the_mail(lc, rcpt):
    """OnMissingIdentity tempfail: a sender without an identity is refused with 451 4.7.0 (the
    client keeps the mail); back to unsigned after the next reload."""
    config = lc.milter.config_path
    original = config.read_text()
    try:
        before = reloads(lc)
        config.write_text(original + "OnMissingIdentity tempfail\n")
        lc.milter.reload()
        wait_reloads(lc, before + 1)
        res = lc.send_swaks(from_="nobody@example.com", to=rcpt, data=message("nobody@example.com", rcpt, "no identity"))
        assert not res.accepted
        assert "451 4.7.0" in res.transcript, res.transcript
    finally:
        config.write_text(original)
        before = reloads(lc)
        lc.milter.reload()
        wait_reloads(lc, before + 1)
    res = lc.send_swaks(from_="nobody@example.com", to=rcpt, data=message("nobody@example.com", rcpt, "unsigned now"))
    assert res.accepted, res.transcript
    [d] = lc.sink.wait_for(rcpt)
    assert d.parsed().get_content_type() == "text/plain"


# ---------------------------------------------------------------------------------------------
# Renewal outcomes in the milter's metrics and ExpiryReport

def test_enrolment_outcomes_in_metrics_and_expiry_report(lc):
    """`identity new` records each result in StateDirectory/lifecycle.json; the milter reads it on
    reload: smime_milter_renewals_total{result} and a report mail saying what failed and why."""
    import urllib.request
    report_to = f"postmaster@{rigmod.SINK_DOMAIN}"
    port = free_port()
    lc.milter_settings.extra += (f"\nMetricsListen {INTERNAL_ADDR}:{port}\nExpiryReport {report_to}\n"
                                 f"SendmailCommand {lc.sendmail_wrapper()}")
    lc.milter.restart(lc.milter_settings)

    def samples() -> str:
        return urllib.request.urlopen(f"http://{INTERNAL_ADDR}:{port}/metrics", timeout=10).read().decode()

    def count(result: str) -> float:
        m = re.search(rf'^smime_milter_renewals_total\{{result="{result}"\}} (\S+)$', samples(), re.M)
        return float(m.group(1)) if m else 0.0
    wait_for_port(INTERNAL_ADDR, port, 30, "the metrics listener")
    ok_before, failed_before = count("ok"), count("failed")

    cp = identity(lc, "new", "fiona@example.com")
    assert cp.returncode == 0, cp.stderr.decode() + cp.stdout.decode()
    lc.ca.set_refusing(True)
    try:
        cp = identity(lc, "new", "refused2@example.com", "--no-reload")
    finally:
        lc.ca.set_refusing(False)
    assert cp.returncode == 1
    before = reloads(lc)
    lc.milter.reload()
    wait_reloads(lc, before + 1)

    wait_until(lambda: count("failed") == failed_before + 1, 30, "the failed count")
    assert count("ok") == ok_before + 1
    text = samples()
    assert re.search(r'smime_milter_identity_last_enrolment_ok\{identity="refused2@example.com"\} 0', text), text
    assert re.search(r'smime_milter_identity_last_enrolment_ok\{identity="fiona@example.com"\} 1', text), text

    def bodies() -> list[tuple[str, str]]:
        return [(str(d.parsed().get("Subject")), d.body.decode()) for d in lc.sink.for_rcpt(report_to)]
    wait_until(lambda: any("refused2@example.com" in b for _, b in bodies()), 30, "the failure report")
    failed = [b for s, b in bodies() if "renewal failed" in s and "refused2@example.com" in b]
    assert failed and "CA policy: not authorised for this domain" in failed[0], bodies()
    wait_until(lambda: any("fiona@example.com" in b for _, b in bodies()), 30, "the enrolment report")
    done = [b for s, b in bodies() if "enrolled or renewed" in s and "fiona@example.com" in b]
    assert done and "done, serial" in done[0], bodies()
