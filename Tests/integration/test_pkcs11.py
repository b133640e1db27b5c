# SPDX-License-Identifier: Apache-2.0
"""Signing keys that never leave a PKCS#11 token (SoftHSM2), behind a real Postfix.

The test makes its own SoftHSM2 token (SOFTHSM2_CONF naming a private token directory),
generates an RSA and an EC key on it as sensitive and non-extractable, has the test CA issue
their certificates from certificate requests signed on the token, and runs the milter with
`NAME.key` files holding `pkcs11:` URIs. Mail signed through Postfix must verify with openssl
cms, NSS cmsutil and gpgsm; the keys cannot be read out; a wrong PIN is refused with a clear
line; the token going away mid-run gives tempfails (the milter stays up) and signing resumes
when it is back; a key added to the token is picked up by a reload; the PIN is in no log.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import rig as rigmod
from rig import MilterSettings

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
TOKEN = "smime-test"
# A PIN that cannot be mistaken for anything else in a log.
PIN = "pin-Q7xK93vZ"
SO_PIN = "so-pin-5512"
DAVE = "dave@example.com"    # RSA-2048 on the token, detached
ERIN = "erin@example.com"    # EC P-256 on the token, opaque
FRANK = "frank@example.com"  # added to the token while the milter runs

SIGNING_TABLE = MilterSettings().signing_table + f"{DAVE} dave detached\n{ERIN} erin opaque\n"


def _missing_tools() -> str | None:
    for tool in ("softhsm2-util", "pkcs11-tool"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/install-deps.sh installs softhsm2 and opensc)"
    if not MODULE.exists():
        return f"{MODULE} is missing (softhsm2)"
    engine = subprocess.run(["openssl", "engine", "pkcs11"], capture_output=True)
    if engine.returncode != 0:
        return "OpenSSL's pkcs11 engine is missing (libengine-pkcs11-openssl)"
    return None


def _pki_module():
    spec = importlib.util.spec_from_file_location("make_test_pki", rigmod.PKI_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _PublicOnly:
    """What make_test_pki.leaf needs of a key: its public half (the private one stays on the token)."""

    def __init__(self, public_key):
        self._public = public_key

    def public_key(self):
        return self._public


class Token:
    """A SoftHSM2 token in a private directory."""

    def __init__(self, root: Path):
        self.root = root
        self.tokendir = root / "tokens"
        self.conf = root / "softhsm2.conf"
        self.tool_pin = root / "tool.pin"  # for openssl req/pkey run by the test, not the milter

    def create(self) -> None:
        self.tokendir.mkdir(parents=True)
        os.chmod(self.root, 0o700)
        self.conf.write_text(f"directories.tokendir = {self.tokendir}\nobjectstore.backend = file\n"
                             "log.level = ERROR\nslots.removable = false\n")
        os.environ["SOFTHSM2_CONF"] = str(self.conf)
        self.tool_pin.write_text(PIN)
        os.chmod(self.tool_pin, 0o600)
        rigmod.run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN,
                    "--so-pin", SO_PIN, "--pin", PIN])

    def keypair(self, label: str, key_id: str, key_type: str) -> None:
        rigmod.run(["pkcs11-tool", "--module", str(MODULE), "--token-label", TOKEN, "--login", "--pin", PIN,
                    "--keypairgen", "--key-type", key_type, "--label", label, "--id", key_id,
                    "--sensitive", "--private"])

    def uri(self, label: str) -> str:
        return f"pkcs11:token={TOKEN};object={label};type=private"

    def tool_uri(self, label: str) -> str:
        return self.uri(label) + f"?pin-source=file:{self.tool_pin}"

    def list_private_keys(self) -> str:
        return rigmod.run(["pkcs11-tool", "--module", str(MODULE), "--token-label", TOKEN, "--login",
                           "--pin", PIN, "--list-objects", "--type", "privkey"]).stdout.decode()


def issue_identity(rig: rigmod.Rig, token: Token, name: str, address: str, label: str) -> None:
    """A certificate for the token key `label`, from a request signed on the token, issued by the
    test's intermediate CA; NAME.pem (certificate + intermediate) and NAME.key (the URI)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    pki = _pki_module()
    csr_path = token.root / f"{name}.csr"
    rigmod.run(["openssl", "req", "-new", "-engine", "pkcs11", "-keyform", "engine",
                "-key", token.tool_uri(label), "-subj", f"/CN={address}", "-out", str(csr_path)])
    csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    assert csr.is_signature_valid
    inter = x509.load_pem_x509_certificate((rig.pki_dir / "intermediate.pem").read_bytes())
    inter_key = serialization.load_pem_private_key((rig.pki_dir / "intermediate.key").read_bytes(), None)
    cert = pki.leaf([address], _PublicOnly(csr.public_key()), inter, inter_key)
    certs = rig.pki_dir / "certs"
    pki.write(str(certs / f"{name}.pem"), pki.pem(cert) + pki.pem(inter), 0o644)
    pki.write(str(certs / f"{name}.key"), (token.uri(label) + "\n").encode(), 0o644)


@pytest.fixture(scope="module")
def token_rig(request, milter_bin):
    why = _missing_tools()
    if why:
        pytest.skip(why)
    old_conf = os.environ.get("SOFTHSM2_CONF")
    r = rigmod.Rig(milter_bin=milter_bin)
    request.node._rig = r
    token = Token(r.root / "softhsm")
    pin_file = r.root / "milter-secrets" / "token.pin"

    def finish():
        try:
            r.stop(keep=os.environ.get("SMIME_RIG_KEEP") == "1")
        finally:
            if old_conf is None:
                os.environ.pop("SOFTHSM2_CONF", None)
            else:
                os.environ["SOFTHSM2_CONF"] = old_conf
    request.addfinalizer(finish)
    r.postfix.extra_relay_domains = ["example.com"]   # inbound mail to the token identities
    r.start()
    token.create()
    token.keypair("dave-rsa", "01", "rsa:2048")
    token.keypair("erin-ec", "02", "EC:prime256v1")
    issue_identity(r, token, "dave", DAVE, "dave-rsa")
    issue_identity(r, token, "erin", ERIN, "erin-ec")
    pin_file.parent.mkdir(mode=0o700)
    pin_file.write_text(PIN + "\n")
    os.chmod(pin_file, 0o600)
    r.token = token
    r.pin_file = pin_file
    r.token_settings = MilterSettings(
        signing_table=SIGNING_TABLE,
        extra=f"PKCS11Module {MODULE}\nTokenPINFile {pin_file}\nTokenSessions 2\n")
    r.milter.restart(r.token_settings)
    return r


def send(rig: rigmod.Rig, sender: str, rcpt: str, subject: str = "Token test") -> rigmod.SendResult:
    message = (f"From: <{sender}>\nTo: <{rcpt}>\nSubject: {subject}\n"
               f"Message-ID: <{rcpt}.{time.time_ns()}@example.com>\n"
               "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n"
               "Signed by a key that never left the token.\n")
    return rig.send_swaks(from_=sender, to=rcpt, data=message)


def assert_signed_by(rig: rigmod.Rig, delivered: rigmod.Delivered, tmp_path: Path, signer: str, kind: str) -> None:
    v = rigmod.openssl_verify(delivered.message, rig.trust_anchor, tmp_path)
    assert v.ok, f"openssl cms -verify failed:\n{v.output}"
    emails, key_type = rigmod.signer_info(v.signer_pem)
    assert signer in emails and key_type == kind
    ok, log = rigmod.nss_verify(delivered.message, rig.trust_anchor, tmp_path)
    assert ok, f"NSS cmsutil:\n{log}"
    ok, log = rigmod.gpgsm_verify(delivered.message, rig.trust_anchor, tmp_path)
    assert ok, f"gpgsm:\n{log}"


@pytest.mark.parametrize("sender,kind,content_type", [
    (DAVE, "RSA", "multipart/signed"), (ERIN, "EC", "application/pkcs7-mime")])
def test_mail_signed_on_the_token_verifies_everywhere(token_rig, rcpt, tmp_path, sender, kind, content_type):
    result = send(token_rig, sender, rcpt)
    assert result.accepted, result.transcript
    [d] = token_rig.sink.wait_for(rcpt)
    assert d.parsed().get_content_type() == content_type
    assert_signed_by(token_rig, d, tmp_path, sender, kind)


def test_token_keys_cannot_be_exported(token_rig, tmp_path):
    listing = token_rig.token.list_private_keys()
    for label in ("dave-rsa", "erin-ec"):
        block = listing.split(f"label:      {label}")[1].split("Private Key Object")[0]
        assert "never extractable" in block and "sensitive" in block, listing
    out = tmp_path / "exported.pem"
    cp = subprocess.run(["openssl", "pkey", "-engine", "pkcs11", "-inform", "engine",
                         "-in", token_rig.token.tool_uri("dave-rsa"), "-out", str(out)],
                        capture_output=True, timeout=60)
    assert cp.returncode != 0
    assert b"PRIVATE KEY" not in (out.read_bytes() if out.exists() else b"")


def test_check_config_and_certs_show_the_token(token_rig):
    cp = token_rig.milter.check_config()
    text = cp.stdout.decode()
    assert cp.returncode == 0, text
    assert f"token {token_rig.token.uri('dave-rsa')}: answers" in text
    assert f"token {token_rig.token.uri('erin-ec')}: answers" in text
    cp = rigmod.run([str(token_rig.milter.binary), "certs", "--json", "--config",
                     str(token_rig.milter.config_path)], check=False)
    listing = {i["identity"]: i for i in json.loads(cp.stdout)["identities"]}
    assert listing["dave"]["token_uri"] == token_rig.token.uri("dave-rsa")
    assert listing["dave"]["token_answers"] is True
    assert listing["erin"]["key"] == "EC-P-256"
    assert "token_uri" not in listing["alice"]


def test_wrong_pin_is_refused_at_start_with_a_clear_line(token_rig, rcpt, tmp_path):
    wrong = token_rig.root / "milter-secrets" / "wrong.pin"
    wrong.write_text("not-the-pin-4417\n")
    os.chmod(wrong, 0o600)
    settings = MilterSettings(signing_table=SIGNING_TABLE,
                              extra=f"PKCS11Module {MODULE}\nTokenPINFile {wrong}\n")
    try:
        token_rig.milter.restart(settings)
        cp = token_rig.milter.check_config()
        assert cp.returncode == 1
        assert "the token refused the PIN" in cp.stdout.decode()
        log = token_rig.milter.log()
        assert "identity refused:" in log and "the token refused the PIN" in log
        assert "not-the-pin-4417" not in log and "not-the-pin-4417" not in cp.stdout.decode()
    finally:
        token_rig.milter.restart(token_rig.token_settings)
    # A PIN file others can read is refused before it is read.
    os.chmod(token_rig.pin_file, 0o644)
    try:
        cp = token_rig.milter.check_config()
        assert cp.returncode == 1 and "accessible by group or others" in cp.stdout.decode()
    finally:
        os.chmod(token_rig.pin_file, 0o600)


def test_token_outage_tempfails_then_signing_resumes(token_rig, rcpt, tmp_path):
    tokendir = token_rig.token.tokendir
    away = tokendir.with_name("tokens.away")
    tokendir.rename(away)
    try:
        for i in range(3):
            result = send(token_rig, DAVE, rcpt, subject=f"during the outage {i}")
            assert not result.accepted, result.transcript
            assert "451" in result.transcript or "4.7.1" in result.transcript, result.transcript
        assert token_rig.milter.proc.poll() is None, "the milter died during the token outage"
        # Mail signed with a key in a file is not held up by the token.
        other = rcpt.replace("@", "-alice@")
        assert send(token_rig, "alice@example.com", other).accepted
        token_rig.sink.wait_for(other)
    finally:
        away.rename(tokendir)
    result = send(token_rig, DAVE, rcpt, subject="after the outage")
    assert result.accepted, result.transcript
    [d] = token_rig.sink.wait_for(rcpt)
    assert_signed_by(token_rig, d, tmp_path, DAVE, "RSA")
    assert "token" in token_rig.milter.log()


def test_reload_picks_up_a_key_added_to_the_token(token_rig, rcpt, tmp_path):
    token_rig.token.keypair("frank-rsa", "03", "rsa:2048")
    issue_identity(token_rig, token_rig.token, "frank", FRANK, "frank-rsa")
    settings = MilterSettings(signing_table=SIGNING_TABLE + f"{FRANK} frank detached\n",
                              extra=token_rig.token_settings.extra)
    token_rig.milter.write_config(settings)
    token_rig.token_settings = settings
    mark = len(token_rig.milter.log())
    token_rig.milter.reload()
    rigmod.wait_until(lambda: "reloaded" in token_rig.milter.log()[mark:], 30, "the reload")
    result = send(token_rig, FRANK, rcpt)
    assert result.accepted, result.transcript
    [d] = token_rig.sink.wait_for(rcpt)
    assert_signed_by(token_rig, d, tmp_path, FRANK, "RSA")
    # ...and the identities loaded before still sign.
    other = rcpt.replace("@", "-erin@")
    assert send(token_rig, ERIN, other).accepted
    [d] = token_rig.sink.wait_for(other)
    assert_signed_by(token_rig, d, tmp_path, ERIN, "EC")


def test_concurrent_mail_shares_the_bounded_token_sessions(token_rig, rcpt, tmp_path):
    # TokenSessions 2 in this rig: twelve messages at once for two token identities must all be
    # signed (they wait for a session), none tempfailed.
    import concurrent.futures
    jobs = [(DAVE if i % 2 == 0 else ERIN, rcpt.replace("@", f"-{i}@")) for i in range(12)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda job: send(token_rig, job[0], job[1], subject="at once"), jobs))
    for result in results:
        assert result.accepted, result.transcript
    for i, (sender, to) in enumerate(jobs):
        [d] = token_rig.sink.wait_for(to)
        v = rigmod.openssl_verify(d.message, token_rig.trust_anchor, tmp_path / str(i))
        assert v.ok, v.output
        assert sender in rigmod.signer_info(v.signer_pem)[0]


def test_signs_with_a_read_only_token_directory_and_private_dev(token_rig, rcpt, tmp_path):
    """What the sandboxed unit gives the milter: ProtectSystem=strict makes the token directory
    read-only, PrivateDevices=yes leaves only the pseudo-devices in /dev."""
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a mount namespace here: {probe.stderr.decode(errors='replace')}")
    import stat
    dev = token_rig.root / "private-dev"
    dev.mkdir(exist_ok=True)
    for name, minor in (("null", 3), ("zero", 5), ("random", 8), ("urandom", 9)):
        if not (dev / name).exists():
            os.mknod(dev / name, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    tokendir = str(token_rig.token.tokendir)
    token_rig.milter.launcher = [
        "unshare", "--mount", "--propagation", "private", "sh", "-c",
        'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && mount --bind "$1" /dev '
        '&& shift && exec "$@"', tokendir, str(dev)]
    try:
        token_rig.milter.restart(token_rig.token_settings)
        for sender, kind in ((DAVE, "RSA"), (ERIN, "EC")):
            to = rcpt.replace("@", f"-{kind.lower()}@")
            result = send(token_rig, sender, to)
            assert result.accepted, result.transcript
            [d] = token_rig.sink.wait_for(to)
            v = rigmod.openssl_verify(d.message, token_rig.trust_anchor, tmp_path / kind)
            assert v.ok, v.output
    finally:
        token_rig.milter.launcher = []
        token_rig.milter.restart(token_rig.token_settings)


@pytest.mark.parametrize("rcpt_addr,options", [(DAVE, ["-aes256"]), (ERIN, ["-aes-128-gcm"])], ids=["rsa", "ec"])
def test_mail_encrypted_to_a_token_key_is_decrypted_on_the_token(token_rig, tmp_path, rcpt_addr, options):
    """Inbound decryption (DecryptionTable) with the key on the token: RSA key transport and ECDH."""
    table = token_rig.root / "decryption.table"
    table.write_text(f"{DAVE} decrypt\n{ERIN} decrypt\n")
    settings = MilterSettings(signing_table=SIGNING_TABLE,
                              extra=token_rig.token_settings.extra + f"DecryptionTable {table}\n")
    name = "dave" if rcpt_addr == DAVE else "erin"
    (tmp_path / "in.txt").write_text("Content-Type: text/plain; charset=us-ascii\n\nOpened on the token.\n")
    cp = rigmod.run(["openssl", "cms", "-encrypt", "-in", str(tmp_path / "in.txt"),
                     "-recip", str(token_rig.pki_dir / "certs" / f"{name}.pem"), *options])
    subject = f"to the token {name}"
    data = (f"From: partner@outside.example\nTo: {rcpt_addr}\nSubject: {subject}\n"
            f"Message-ID: <{name}.{time.time_ns()}@outside.example>\n").encode() + cp.stdout
    try:
        token_rig.milter.restart(settings)
        token_rig.send_smtp(from_="partner@outside.example", to=rcpt_addr, data=data, external=True)
        [d] = token_rig.sink.wait_for(rcpt_addr)
        msg = d.parsed()
        assert msg.get_content_type() == "text/plain", (msg["Content-Type"], token_rig.milter.log()[-1500:])
        assert msg.get_payload().strip() == "Opened on the token."
        assert msg["X-SMIME-Decrypted"].startswith(f"yes (by test.example; identity {name};")
    finally:
        token_rig.milter.restart(token_rig.token_settings)




@pytest.mark.parametrize("key_type,kind", [("rsa3072", "RSA"), ("p256", "EC")])
def test_identity_new_makes_the_key_on_the_token(token_rig, rcpt, tmp_path, key_type, kind):
    """NewKeysOn pkcs11:token=...: `identity new` has the token generate the key (sensitive,
    never extractable), signs the request there, installs NAME.key holding the key's URI; the
    milter then signs with it, verifiably; a renewal makes another key and the old one stays."""
    address = f"kay-{key_type}@example.com"
    enrol = rigmod.enrol_command(token_rig.root / "enrol.py", token_rig.pki_dir)
    state = tmp_path / "state"
    state.mkdir()
    config = tmp_path / "identity.conf"
    config.write_text(token_rig.milter.config_path.read_text()
                      + f"NewKeysOn pkcs11:token={TOKEN}\nKeyType {key_type}\nStateDirectory {state}\n"
                      + f"TrustAnchors {token_rig.trust_anchor}\n"
                      + f"EnrollCommand {enrol}\n")

    def identity(*args: str) -> subprocess.CompletedProcess:
        return rigmod.run([str(token_rig.milter_bin), "identity", *args, address, "--config", str(config)],
                          check=False, timeout=180)
    cp = identity("new")
    assert cp.returncode == 0, cp.stderr.decode() + cp.stdout.decode()
    key_file = token_rig.pki_dir / "certs" / f"{address}.key"
    uri = key_file.read_text().strip()
    assert uri.startswith(f"pkcs11:token={TOKEN};object=smime-{address}-") and uri.endswith(";type=private"), uri
    label = uri.split("object=")[1].split(";")[0]
    listing = token_rig.token.list_private_keys()
    block = listing.split(f"label:      {label}")[1].split("Private Key Object")[0]
    assert "never extractable" in block and "sensitive" in block, listing
    assert PIN not in cp.stdout.decode() + cp.stderr.decode()

    settings = MilterSettings(signing_table=SIGNING_TABLE + f"{address} {address} detached\n",
                              extra=token_rig.token_settings.extra)
    try:
        token_rig.milter.restart(settings)
        result = send(token_rig, address, rcpt, subject=f"new key on the token {key_type}")
        assert result.accepted, result.transcript
        [d] = token_rig.sink.wait_for(rcpt)
        assert_signed_by(token_rig, d, tmp_path, address, kind)
        # Renewal with a new key: another object on the token; the old key stays for old mail.
        cp = identity("renew")
        assert cp.returncode == 0, cp.stderr.decode() + cp.stdout.decode()
        renewed = key_file.read_text().strip()
        assert renewed != uri and renewed.startswith(f"pkcs11:token={TOKEN};object=smime-{address}-"), renewed
        listing = token_rig.token.list_private_keys()
        assert label in listing and renewed.split("object=")[1].split(";")[0] in listing, listing
        archived = list((token_rig.pki_dir / "certs" / "archive").glob(f"{address}.*.key"))
        assert [a.read_text().strip() for a in archived] == [uri]
    finally:
        token_rig.milter.restart(token_rig.token_settings)


def test_no_pin_in_any_log(token_rig):
    # Runs last in this file: after starts, a wrong PIN, an outage and a reload.
    texts = {"milter log": token_rig.milter.log(), "postfix log": token_rig.postfix.log_text()}
    for what, text in texts.items():
        assert PIN not in text, f"the PIN is in the {what}"
    assert "identity dave:" in texts["milter log"]
