# SPDX-License-Identifier: Apache-2.0
"""Two gateways, one PostgreSQL certificate store (issue 21), with a real PostgreSQL 15 started
here on loopback (initdb as user postgres in a temporary directory; the standby by
pg_basebackup -R).

- A certificate imported through gateway A (its own configuration, Postfix and milter) is used
  by gateway B for its next message; removed on A, B stops encrypting within the staleness.
- Two processes writing certificates for one address at once: one current certificate, the
  whole history, no duplicates.
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

TABLE = "dave@sink.test require\nerin@sink.test encrypt\n*@sink.test never\n"
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
