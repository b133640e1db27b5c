# SPDX-License-Identifier: Apache-2.0
"""Two gateways, one PostgreSQL certificate store (issue 21), with a real PostgreSQL 15 started
here on loopback (initdb as user postgres in a temporary directory; the standby by
pg_basebackup -R).

- A certificate imported through gateway A (its own configuration, Postfix and milter) is used
  by gateway B for its next message; removed on A, B stops encrypting within the staleness.
- Two processes writing certificates for one address at once: one current certificate, the
  whole history, no duplicates.
- A certificate harvested on A (from a verified signed message through A's Postfix) is used by
  B for its next message; removed on A, B stops encrypting within the staleness.
- TLS to the database (sslmode=verify-full against a CA file, server certificate made here by
  openssl) with a scram-sha-256 user and CertificateStorePasswordFile: mail is encrypted, every
  connection of the user is TLS, a wrong CA and a wrong password fail check-config with a clear
  line, and the password is in no log or output.
- The revocation cache is shared: an OCSP response (and CRL) fetched by A verifies B's inbound
  message with the responder and the CRL server down.
- A schema newer than the binary knows: the milter does not start, with a clear line.
- PostgreSQL stopped during a load through B's Postfix: tempfails (the sender keeps the mail),
  no plaintext to the `require` recipient; started again, or the standby promoted: delivery
  resumes without restarting the milter, and every message is delivered encrypted.
"""
from __future__ import annotations

import email
import os
import pwd
import shutil
import smtplib
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

import pg_server
import rig as rigmod
from pg_server import PostgreSQL
from rig import run
from test_encryption import make_recipient, message, openssl_decrypt

TABLE = "dave@sink.test require\nerin@sink.test encrypt\nfrank@sink.test encrypt\n*@sink.test never\n"
STALENESS = 10
ALICE = "alice@example.com"

pytestmark = pytest.mark.skipif(not pg_server.available(), reason="PostgreSQL 15 is not installed (scripts/install-deps.sh)")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base = Path(tempfile.mkdtemp(prefix="smime-milter-pg."))
    os.chmod(base, 0o755)
    primary = PostgreSQL(base, "primary").init()
    primary.start()
    primary.sql("CREATE DATABASE smime", db="postgres")
    standby = PostgreSQL(base, "standby").standby_of(primary)
    standby.start()
    yield primary, standby
    standby.stop()
    primary.stop()
    shutil.rmtree(base, ignore_errors=True)


def store_address(primary: PostgreSQL, standby: PostgreSQL, db: str = "smime") -> str:
    return f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/{db}"


def gateway(milter_bin, store: str, anchors: Path | None, work: Path) -> rigmod.Rig:
    r = rigmod.Rig(milter_bin=milter_bin)
    (r.root / "enc.table").write_text(TABLE)
    r.milter_settings = rigmod.MilterSettings(
        mode="sv",
        extra=(f"TrustAnchors {anchors or (r.root / 'pki' / 'root.pem')}\n"
               f"EncryptionTable {r.root / 'enc.table'}\n"
               f"CertificateStore {store}\n"
               f"CertificateStoreStaleness {STALENESS}\n"
               "CertificateStoreTimeout 2\n"
               "CertificateStorePoolSize 4\n"))
    return r


@pytest.fixture(scope="module")
def gateways(cluster, milter_bin, tmp_path_factory):
    primary, standby = cluster
    work = tmp_path_factory.mktemp("cluster")
    store = store_address(primary, standby)
    a = gateway(milter_bin, store, None, work)
    # The schema first (the milter does not migrate a shared database itself).
    a.milter.write_config(a.milter_settings)
    run([str(milter_bin), "store", "migrate", "--config", str(a.milter.config_path)])
    a.start()
    # B trusts A's test PKI (the partner certificates are issued from it).
    b = gateway(milter_bin, store, a.pki_dir / "root.pem", work)
    try:
        b.start()
    except BaseException:
        a.stop()
        raise
    keys = {}
    for name in ("dave", "erin"):
        keys[name] = make_recipient(a.pki_dir, f"{name}@sink.test", work / f"{name}.pem")
        pem = keys[name].read_bytes()
        (work / f"{name}.crt").write_bytes(pem[:pem.index(b"-----BEGIN PRIVATE KEY-----")])
    yield a, b, keys, work
    b.stop()
    a.stop()


def certs(r: rigmod.Rig, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([str(r.milter.binary), "certs", "--recipients", "-c", str(r.milter.config_path), *args], check=check)


def with_subject(r: rigmod.Rig, rcpt: str, subject: str):
    got = [d for d in r.sink.for_rcpt(rcpt) if email.message_from_bytes(d.message).get("Subject") == subject]
    return got[0] if got else None


def is_encrypted(delivered: rigmod.Delivered) -> bool:
    return email.message_from_bytes(delivered.message).get_content_type() == "application/pkcs7-mime"


def test_imported_on_a_used_by_b_and_removal_seen_within_staleness(gateways, tmp_path):
    a, b, keys, work = gateways
    rcpt = "erin@sink.test"
    assert b"imported" in certs(a, "import", str(work / "erin.crt")).stdout
    b.send_smtp(from_=ALICE, to=rcpt, data=message(rcpt, "cluster one"))
    delivered = rigmod.wait_until(lambda: with_subject(b, rcpt, "cluster one"), rigmod.DELIVERY_TIMEOUT, "cluster one")
    assert is_encrypted(delivered), delivered.message[:400]
    from test_encryption import enveloped_der
    assert openssl_decrypt(enveloped_der(delivered), keys["erin"], tmp_path).startswith(b"Content-Type: multipart/signed")
    # B's listing (its own configuration) shows it too, and says which store answers.
    listing = certs(b, "list")
    assert rcpt.encode() in listing.stdout
    assert b"PostgreSQL, answers" in listing.stderr
    # Removed on A: B sends erin (encrypt, no certificate) plaintext again, within the staleness.
    assert certs(a, "remove", rcpt).returncode == 0
    removed_at = time.monotonic()
    n = 0

    def plaintext_again():
        nonlocal n
        n += 1
        subject = f"after removal {n}"
        b.send_smtp(from_=ALICE, to=rcpt, data=message(rcpt, subject))
        got = rigmod.wait_until(lambda: with_subject(b, rcpt, subject), rigmod.DELIVERY_TIMEOUT, subject)
        return not is_encrypted(got)

    rigmod.wait_until(plaintext_again, STALENESS + 20, "B to stop encrypting to the removed certificate", interval=1)
    # The documented bound (CertificateStoreStaleness), with room for the delivery itself.
    assert time.monotonic() - removed_at < STALENESS + 20


def test_two_processes_writing_one_address_leave_one_current_and_the_whole_history(gateways, cluster, milter_bin, tmp_path):
    a, b, keys, work = gateways
    primary, _ = cluster
    address = "race@sink.test"
    files = {side: [] for side in ("a", "b")}
    for side in files:
        for i in range(6):
            cert = make_recipient(a.pki_dir, address, tmp_path / f"{side}{i}.pem")
            pem = cert.read_bytes()
            path = tmp_path / f"{side}{i}.crt"
            path.write_bytes(pem[:pem.index(b"-----BEGIN PRIVATE KEY-----")])
            files[side].append(path)
    barrier = threading.Barrier(2)
    failures = []

    def writer(r: rigmod.Rig, paths):
        barrier.wait()
        for path in paths:
            cp = certs(r, "import", str(path), check=False)
            if cp.returncode != 0:
                failures.append(cp.stderr.decode())

    threads = [threading.Thread(target=writer, args=(a, files["a"])), threading.Thread(target=writer, args=(b, files["b"]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures
    assert primary.sql(f"SELECT count(*) FROM certificate WHERE address = '{address}' AND is_current") == "1"
    assert primary.sql("SELECT max(version) FROM schema_version") == "2"  # certificates, then the revocation cache
    assert primary.sql(f"SELECT count(*) FROM certificate WHERE address = '{address}'") == "12"
    assert primary.sql(f"SELECT count(DISTINCT fingerprint) FROM certificate WHERE address = '{address}'") == "12"
    history = certs(a, "history", address).stdout.decode().splitlines()[1:]
    assert len(history) == 12
    assert sum(1 for line in history if line.split("\t")[4] == "yes") == 1


def test_one_gateway_enrols_at_a_time_through_the_shared_store(gateways, cluster, tmp_path):
    """With a PostgreSQL store the lifecycle lock is in the database: while another gateway
    holds it (here a psql session), B's `identity new` waits and installs nothing; when the
    holder's session ends, B's run goes on and enrols. B's StateDirectory is its own, so only
    the shared lock can have held it."""
    a, b, _, _ = gateways
    primary, _ = cluster
    state = tmp_path / "state"
    config = tmp_path / "identity.conf"
    config.write_text(b.milter.config_path.read_text() + f"StateDirectory {state}\n"
                      + f"EnrollCommand {rigmod.enrol_command(tmp_path / 'enrol.py', a.pki_dir)}\n")
    holder = subprocess.Popen(["psql", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres", "-d", "smime", "-At"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = None
    try:
        holder.stdin.write(b"SELECT pg_advisory_lock(%d);\n" % 0x736D696D656C6966)
        holder.stdin.flush()
        rigmod.wait_until(lambda: primary.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted") == "1",
                          30, "the advisory lock held by psql")
        proc = subprocess.Popen([str(b.milter.binary), "identity", "new", "lena@example.com", "--config", str(config)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(4)
        assert proc.poll() is None, "identity new did not wait for the lock: " + proc.communicate()[1].decode()
        assert not (b.pki_dir / "certs" / "lena@example.com.pem").exists()
        holder.stdin.close()   # the session ends, and its lock with it
        holder.wait(timeout=30)
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err.decode() + out.decode()
        assert (b.pki_dir / "certs" / "lena@example.com.pem").exists()
        assert primary.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == "0"
    finally:
        for p in (holder, proc):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


def test_a_newer_schema_is_refused_with_a_clear_line(gateways, cluster, milter_bin, tmp_path):
    a, _, _, _ = gateways
    primary, standby = cluster
    primary.sql("CREATE DATABASE future", db="postgres")
    conf = tmp_path / "future.conf"
    conf.write_text(a.milter.config_path.read_text().replace(store_address(primary, standby), store_address(primary, standby, "future")))
    run([str(milter_bin), "store", "migrate", "--config", str(conf)])
    primary.sql("INSERT INTO schema_version (version) VALUES (99)", db="future")
    cp = run([str(milter_bin), "run", "--config", str(conf)], check=False, timeout=60)
    assert cp.returncode != 0
    assert b"schema version 99, newer than version" in cp.stderr + cp.stdout
    cp = run([str(milter_bin), "store", "migrate", "--config", str(conf)], check=False)
    assert cp.returncode != 0 and b"newer than version" in cp.stderr


def test_harvested_on_a_used_by_b_and_removal_seen_within_staleness(gateways, tmp_path):
    """frank signs a message to us through A's Postfix (external side): A verifies it and
    harvests his certificate into the shared store; B encrypts its next message to frank with
    it. Removed on A, B sends frank (encrypt, no certificate) unencrypted within the staleness."""
    from test_encryption import enveloped_der, signed_inbound
    a, b, keys, work = gateways
    rcpt = "frank@sink.test"
    frank = make_recipient(a.pki_dir, rcpt, tmp_path / "frank.pem")
    b.send_smtp(from_=ALICE, to=rcpt, data=message(rcpt, "harvest before"))
    before = rigmod.wait_until(lambda: with_subject(b, rcpt, "harvest before"), rigmod.DELIVERY_TIMEOUT, "before")
    assert not is_encrypted(before)
    a.send_smtp(from_=rcpt, to="alice-in@sink.test", external=True, data=signed_inbound(a, frank, rcpt, tmp_path))
    inbound = rigmod.wait_until(lambda: with_subject(a, "alice-in@sink.test", f"signed by {rcpt}"),
                                rigmod.DELIVERY_TIMEOUT, "the signed inbound message")
    assert b"smime=pass" in inbound.message
    rigmod.wait_until(lambda: "harvest=kept" in a.milter.log(), 30, "the harvest on A")
    # In the shared store, as harvested (not imported): B's listing shows it with its source.
    listing = certs(b, "list").stdout.decode()
    assert any(rcpt in line and "harvested" in line for line in listing.splitlines()), listing
    assert "harvest=kept" not in b.milter.log()  # B did not see the inbound message
    n = 0

    def delivered(subject: str) -> rigmod.Delivered:
        b.send_smtp(from_=ALICE, to=rcpt, data=message(rcpt, subject))
        return rigmod.wait_until(lambda: with_subject(b, rcpt, subject), rigmod.DELIVERY_TIMEOUT, subject)

    def encrypted_by_b():
        nonlocal n
        n += 1
        got = delivered(f"harvest after {n}")
        return got if is_encrypted(got) else None

    # A harvest is a change on A: B hears of it by NOTIFY, or at the latest after the staleness.
    got = rigmod.wait_until(encrypted_by_b, STALENESS + 20, "B to encrypt to the harvested certificate", interval=1)
    assert openssl_decrypt(enveloped_der(got), frank, tmp_path).startswith(b"Content-Type: multipart/signed")
    assert certs(a, "remove", rcpt).returncode == 0
    removed_at = time.monotonic()

    def plaintext_again():
        nonlocal n
        n += 1
        return not is_encrypted(delivered(f"harvest removed {n}"))

    rigmod.wait_until(plaintext_again, STALENESS + 20, "B to stop encrypting to the removed certificate", interval=1)
    assert time.monotonic() - removed_at < STALENESS + 20


DB_USER = "gw"
DB_PASSWORD = "Corr3ct-horse-battery-staple"


@pytest.fixture(scope="module")
def tls_database():
    """A third PostgreSQL with ssl=on (server certificate for 127.0.0.1 and localhost made by
    openssl) where user gw logs in only over TLS with scram-sha-256, owning database smime."""
    base = Path(tempfile.mkdtemp(prefix="smime-milter-pgtls."))
    os.chmod(base, 0o755)
    pg = PostgreSQL(base, "tls").init()
    ca = pg.enable_tls(base / "pki", DB_USER, DB_PASSWORD)
    os.chmod(base / "pki", 0o755)
    ca.chmod(0o644)
    pg.start()
    pg.sql(f"CREATE DATABASE smime OWNER {DB_USER}", db="postgres")
    yield pg, ca, base
    pg.stop()
    shutil.rmtree(base, ignore_errors=True)


def test_tls_verify_full_and_a_password_file_never_logged(tls_database, milter_bin, tmp_path):
    pg, ca, base = tls_database
    password_file = tmp_path / "db.password"
    password_file.write_text(DB_PASSWORD + "\n")
    password_file.chmod(0o600)
    store = f"postgresql://{DB_USER}@127.0.0.1:{pg.port}/smime"
    r = gateway(milter_bin, store, None, tmp_path)
    r.milter_settings.extra += f"CertificateStorePasswordFile {password_file}\nCertificateStoreCAFile {ca}\n"
    r.milter.write_config(r.milter_settings)
    conf = r.milter.config_path
    outputs = []

    def cmd(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        cp = run([str(milter_bin), *args], check=check)
        outputs.append(cp.stdout + cp.stderr)
        return cp

    cmd("store", "migrate", "--config", str(conf))
    try:
        r.start()
        pem = make_recipient(r.pki_dir, "erin@sink.test", tmp_path / "erin.pem").read_bytes()
        (tmp_path / "erin.crt").write_bytes(pem[:pem.index(b"-----BEGIN PRIVATE KEY-----")])
        assert b"imported" in cmd("certs", "--recipients", "-c", str(conf), "import", str(tmp_path / "erin.crt")).stdout
        check = cmd("check-config", "--config", str(conf))
        assert b"PostgreSQL, answers" in check.stdout, check.stdout
        r.send_smtp(from_=ALICE, to="erin@sink.test", data=message("erin@sink.test", "over tls"))
        got = rigmod.wait_until(lambda: with_subject(r, "erin@sink.test", "over tls"), rigmod.DELIVERY_TIMEOUT, "over tls")
        assert is_encrypted(got)
        # The milter's own connections (the pool, the listener) are TLS, as user gw.
        assert int(pg.sql(f"SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) "
                          f"WHERE usename = '{DB_USER}' AND ssl", db="postgres")) >= 1
        assert pg.sql(f"SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) "
                      f"WHERE usename = '{DB_USER}' AND NOT ssl", db="postgres") == "0"
        # A CA that did not issue the server's certificate: check-config says so and fails.
        other = tmp_path / "other-ca"
        other.mkdir()
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(other / "ca.key"),
             "-out", str(other / "ca.pem"), "-days", "2", "-subj", "/CN=some other CA"])
        wrong = tmp_path / "wrong-ca.conf"
        wrong.write_text(conf.read_text().replace(f"CertificateStoreCAFile {ca}", f"CertificateStoreCAFile {other / 'ca.pem'}"))
        bad = cmd("check-config", "--config", str(wrong), check=False)
        text = (bad.stdout + bad.stderr).decode()
        assert bad.returncode != 0, text
        assert "does not answer" in text and "certificate verify failed" in text, text
        # A wrong password: refused, and said so, without the password.
        wrong_pw = tmp_path / "wrong.password"
        wrong_pw.write_text("not-the-password\n")
        wrong_pw.chmod(0o600)
        wp = tmp_path / "wrong-pw.conf"
        wp.write_text(conf.read_text().replace(f"CertificateStorePasswordFile {password_file}",
                                               f"CertificateStorePasswordFile {wrong_pw}"))
        bad = cmd("check-config", "--config", str(wp), check=False)
        text = (bad.stdout + bad.stderr).decode()
        assert bad.returncode != 0 and "password authentication failed" in text, text
        log = r.milter.log()
    finally:
        r.stop()
    # The password is in none of it: milter log, command output, the server's log.
    for out in [log.encode(), *outputs, pg.log.read_bytes()]:
        assert DB_PASSWORD.encode() not in out
        assert b"not-the-password" not in out


def revocation_servers(out: Path):
    """make_revocation_pki.py's PKI, `openssl ocsp` and a CRL server; returns (ocsp, crl) processes."""
    import sys
    ports = [rigmod.free_port() for _ in range(4)]
    run([sys.executable, str(Path(__file__).resolve().parents[2] / "Tests" / "fixtures" / "make_revocation_pki.py"),
         str(out), *map(str, ports)])
    ocsp_log = out / "ocsp.log"
    with open(ocsp_log, "wb") as log:
        ocsp = subprocess.Popen(
            ["openssl", "ocsp", "-index", str(out / "ocsp" / "index.txt"), "-port", str(ports[0]),
             "-rsigner", str(out / "ocsp" / "responder.pem"), "-rkey", str(out / "ocsp" / "responder.key"),
             "-CA", str(out / "intermediate.pem"), "-nmin", "60"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    crl = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(out / "crl"), str(ports[2])],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    # openssl ocsp hangs after a connection that sends nothing: wait for its log line, not the port.
    rigmod.wait_until(lambda: "waiting for OCSP client connections" in ocsp_log.read_text(errors="replace"), 20,
                      "the OCSP responder")
    rigmod.wait_for_port("127.0.0.1", ports[2], 20, "CRL server")
    return ocsp, crl


def test_revocation_answers_fetched_by_a_are_used_by_b_with_the_responders_down(cluster, milter_bin, tmp_path):
    from test_revocation import message as revocation_message
    primary, standby = cluster
    pki = tmp_path / "revocation-pki"
    ocsp, crl = revocation_servers(pki)
    store = store_address(primary, standby)
    sides = []
    try:
        for _ in range(2):
            r = rigmod.Rig(milter_bin=milter_bin)
            r.milter.cert_dir = pki / "certs"
            # Verification only (no identities of ours, so nothing is checked at start) and no
            # RevocationCacheDir: the answers can only be shared through the store.
            r.milter_settings = rigmod.MilterSettings(
                mode="v", signing_table=None, sender_map=None,
                extra=(f"TrustAnchors {pki / 'trust.pem'}\nRevocationCheck ocsp,crl\nRevocationTimeout 5\n"
                       f"OnRevocationUnknown tempfail\nCertificateStore {store}\nCertificateStoreTimeout 2\n"))
            sides.append(r)
            r.start()
        a, b = sides
        before = int(primary.sql("SELECT count(*) FROM revocation_cache"))
        a.send_smtp(from_="good@example.com", to="in@sink.test", external=True,
                    data=revocation_message(pki, "good", "in@sink.test", tmp_path))
        [d] = a.sink.wait_for("in@sink.test")
        assert b"smime=pass" in d.message
        assert int(primary.sql("SELECT count(*) FROM revocation_cache")) > before
        # The responder and the CRL server stop: only the shared cache can answer B.
        rigmod.terminate(ocsp)
        rigmod.terminate(crl)
        b.send_smtp(from_="good@example.com", to="in@sink.test", external=True,
                    data=revocation_message(pki, "good", "in@sink.test", tmp_path))
        [d] = b.sink.wait_for("in@sink.test")
        assert b"smime=pass" in d.message, d.message[:600]
    finally:
        rigmod.terminate(ocsp)
        rigmod.terminate(crl)
        for r in sides:
            r.stop()


class Load:
    """Messages to the `require` recipient through B's Postfix from two threads, each either
    accepted (then it must arrive encrypted) or refused with 4xx (the sender keeps it)."""

    def __init__(self, r: rigmod.Rig, rcpt: str, tag: str):
        self.r, self.rcpt, self.tag = r, rcpt, tag
        self.accepted: list[str] = []
        self.tempfailed: list[str] = []
        self.other: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counter = 0
        self.threads = [threading.Thread(target=self._run) for _ in range(2)]

    def send(self, subject: str) -> str:
        try:
            self.r.send_smtp(from_=ALICE, to=self.rcpt, data=message(self.rcpt, subject))
            return "accepted"
        except smtplib.SMTPRecipientsRefused as e:
            code = list(e.recipients.values())[0][0]
            return "tempfailed" if 400 <= code < 500 else f"refused {code}"
        except smtplib.SMTPResponseException as e:
            return "tempfailed" if 400 <= e.smtp_code < 500 else f"refused {e.smtp_code}"

    def _run(self):
        while not self.stop.is_set():
            with self.lock:
                self.counter += 1
                subject = f"{self.tag} {self.counter}"
            result = self.send(subject)
            with self.lock:
                {"accepted": self.accepted, "tempfailed": self.tempfailed}.get(result, self.other).append(subject)
            time.sleep(0.2)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def settle(self):
        """Send the tempfailed ones again (what the sender's MTA does), then check every
        message arrived exactly once, encrypted."""
        for subject in self.tempfailed:
            assert self.send(subject) == "accepted", subject
        for subject in self.accepted + self.tempfailed:
            got = rigmod.wait_until(lambda: with_subject(self.r, self.rcpt, subject), rigmod.DELIVERY_TIMEOUT, subject)
            assert is_encrypted(got), f"{subject} was delivered in plaintext"
        for d in self.r.sink.for_rcpt(self.rcpt):
            assert is_encrypted(d), "plaintext to a require recipient"


def wait_sent(load: Load, what: str, accepted: int = 0, tempfailed: int = 0, timeout: float = 60):
    start_a, start_t = len(load.accepted), len(load.tempfailed)
    rigmod.wait_until(lambda: len(load.accepted) - start_a >= accepted and len(load.tempfailed) - start_t >= tempfailed,
                      timeout, what)


def test_database_stopped_during_load_tempfails_and_resumes_after_restart(gateways, cluster):
    a, b, keys, work = gateways
    primary, _ = cluster
    rcpt = "dave@sink.test"
    certs(a, "import", str(work / "dave.crt"))
    with Load(b, rcpt, "restart") as load:
        wait_sent(load, "messages accepted before the stop", accepted=3)
        primary.stop()
        # The listener loses its connection and drops the cache: the store is asked and cannot answer.
        wait_sent(load, "tempfails while PostgreSQL is down", tempfailed=3, timeout=STALENESS + 60)
        primary.start()
        wait_sent(load, "accepted again after the restart", accepted=3, timeout=60)
    assert not load.other, load.other
    load.settle()
    assert b.milter.proc.poll() is None  # the same milter process throughout


def test_standby_promoted_delivery_resumes_without_restarting_the_milter(gateways, cluster):
    a, b, keys, work = gateways
    primary, standby = cluster
    rcpt = "dave@sink.test"
    pid = b.milter.proc.pid
    # dave's certificate was written on the primary; the standby has it by streaming replication.
    rigmod.wait_until(lambda: standby.sql(f"SELECT count(*) FROM certificate WHERE address = '{rcpt}' AND is_current") == "1",
                      60, "replication of dave's certificate")
    with Load(b, rcpt, "failover") as load:
        wait_sent(load, "messages accepted before the failover", accepted=3)
        primary.stop()
        wait_sent(load, "tempfails while there is no primary", tempfailed=2, timeout=STALENESS + 60)
        standby.promote()
        wait_sent(load, "accepted again on the promoted standby", accepted=3, timeout=60)
    assert not load.other, load.other
    load.settle()
    assert b.milter.proc.pid == pid and b.milter.proc.poll() is None
    # And writes go to the new primary: an import on A lands there.
    assert b"imported" in certs(a, "import", str(work / "erin.crt")).stdout
    assert standby.sql("SELECT count(*) FROM certificate WHERE address = 'erin@sink.test' AND is_current") == "1"
