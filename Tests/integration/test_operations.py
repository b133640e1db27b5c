# SPDX-License-Identifier: Apache-2.0
"""Operations: certificate lifecycle, reload under load, metrics and syslog, with the real milter.

- `smime-milter certs` on identities that expire in 400 days, 5 days and yesterday.
- Expiry warnings in the log at start and on reload, and the `ExpiryReport` mail delivered through
  the rig's real Postfix (`sendmail -C`) to the sink, once per threshold per identity.
- `OnExpiredCertificate unsigned|tempfail` for a sender whose certificate has lapsed.
- SIGHUP while several clients send continuously: every message accepted and delivered, the new
  SigningTable used afterwards, a broken configuration refused with the previous one kept.
- `MetricsListen`: the Prometheus counters equal the milter log's lines, the histogram count the
  number of messages, and the not-after gauges the certificates' notAfter (`openssl x509`).
- `Syslog yes`: run in a private mount namespace whose /dev/log is the test's own datagram
  socket, so the machine's /dev/log is never touched.

Every wait is bounded, every subprocess has a timeout, and each rig is stopped after its test.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import re
import shutil
import smtplib
import socket
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import rig as rigmod
from conftest import KEEP, _require_tools
from rig import INTERNAL_ADDR, MilterSettings, RigError, crlf, openssl_verify, run, wait_until

ALICE = "alice@example.com"
BOB = "bob@example.com"
DAY = 86_400


# ---------------------------------------------------------------------------------------------
# helpers

def message(sender: str, rcpt: str, subject: str, body: str = "Hello,\n\nthe figures.\n") -> bytes:
    return crlf(f"From: {sender}\nTo: {rcpt}\nSubject: {subject}\n"
                f"Message-ID: <{subject.replace(' ', '.')}.{time.time_ns()}@example.com>\n"
                "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n" + body)


def smtp_send(host: str, port: int, sender: str, rcpt: str, data: bytes,
              source: tuple[str, int] | None = None) -> tuple[int, str]:
    """One SMTP transaction; returns the reply to the end of DATA (or to the command that
    refused the mail), never raising for an SMTP refusal."""
    with smtplib.SMTP(host, port, local_hostname="client.example", timeout=30, source_address=source) as s:
        s.ehlo()
        code, text = s.mail(sender)
        if code != 250:
            return code, text.decode(errors="replace")
        code, text = s.rcpt(rcpt)
        if code not in (250, 251):
            return code, text.decode(errors="replace")
        code, text = s.data(data)
        return code, text.decode(errors="replace")


def send(r: rigmod.Rig, sender: str, rcpt: str, data: bytes, external: bool = False) -> tuple[int, str]:
    if external:
        return smtp_send(rigmod.EXTERNAL_ADDR, r.postfix.ext_port, sender, rcpt, data,
                         source=(rigmod.EXTERNAL_ADDR, 0))
    return smtp_send(INTERNAL_ADDR, r.postfix.int_port, sender, rcpt, data)


def log_lines(r: rigmod.Rig, pattern: str, since: int = 0) -> list[str]:
    """Lines of the milter log (from character offset `since`) matching the regex."""
    return [line for line in r.milter.log()[since:].splitlines() if re.search(pattern, line)]


def wait_log(r: rigmod.Rig, pattern: str, count: int = 1, since: int = 0, timeout: float = 30) -> list[str]:
    return wait_until(lambda: (lambda got: got if len(got) >= count else None)(log_lines(r, pattern, since)),
                      timeout, f"{count} milter log line(s) matching {pattern!r}")


def decisions_in_log(r: rigmod.Rig) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in log_lines(r, r" decision=\w+ "):
        d = re.search(r" decision=(\w+) ", line).group(1)
        counts[d] = counts.get(d, 0) + 1
    return counts


def form_of(delivered: rigmod.Delivered) -> str:
    """detached / opaque / unsigned, from the delivered message's top-level Content-Type."""
    ctype = delivered.parsed().get_content_type()
    return {"multipart/signed": "detached", "application/pkcs7-mime": "opaque"}.get(ctype, "unsigned")


def subject_of(delivered: rigmod.Delivered) -> str:
    return " ".join((delivered.parsed().get("Subject") or "").split())


def openssl_not_after(cert_file: Path, passfile: Path | None = None) -> int:
    """The certificate's notAfter as a Unix time, as `openssl x509 -enddate` prints it."""
    if passfile is not None:  # PKCS#12: take the end-entity certificate out first
        pem = run(["openssl", "pkcs12", "-in", str(cert_file), "-passin", f"file:{passfile}",
                   "-nokeys", "-clcerts"]).stdout
        out = run(["openssl", "x509", "-noout", "-enddate"], input=pem).stdout.decode()
    else:
        out = run(["openssl", "x509", "-noout", "-enddate", "-in", str(cert_file)]).stdout.decode()
    text = out.strip().removeprefix("notAfter=")
    when = datetime.datetime.strptime(text, "%b %d %H:%M:%S %Y GMT").replace(tzinfo=datetime.timezone.utc)
    return int(when.timestamp())


def days_left(not_after: int, now: float) -> int:
    """Whole days from now to notAfter, rounded down, as `certs` defines it."""
    return math.floor((not_after - now) / DAY)


def parse_prometheus(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(metric name, ((label, value), ...)): value} from the Prometheus text format."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)", line)
        assert m, f"not a Prometheus sample line: {line!r}"
        labels = tuple(sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or "")))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{INTERNAL_ADDR}:{port}{path}", timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


# ---------------------------------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A fresh test PKI (certs/, expiring/soon.pem and lapsed.pem, ...)."""
    d = tmp_path_factory.mktemp("pki") / "pki"
    run(["python3", str(rigmod.PKI_SCRIPT), str(d)], timeout=120)
    return d


@pytest.fixture
def make_rig(request, milter_bin):
    """Starts rigs with given milter settings; stops them after the test. Their logs are printed
    at teardown, which pytest shows only when the test failed."""
    rigs: list[rigmod.Rig] = []

    def make(settings: MilterSettings, prepare=None) -> rigmod.Rig:
        _require_tools()
        r = rigmod.Rig(milter_bin=milter_bin, milter_settings=settings)
        rigs.append(r)
        if prepare is not None:
            prepare(r)
        r.start()
        return r

    yield make
    for r in rigs:
        print(r.diagnostics())
        if KEEP:
            print(f"rig directory kept: {r.root}")
        r.stop(keep=KEEP)


# ---------------------------------------------------------------------------------------------
# 1. smime-milter certs

def certs(milter_bin: Path, config: Path, as_json: bool) -> tuple[int, str, float, float]:
    """(exit code, stdout, time before, time after) of `smime-milter certs`."""
    before = time.time()
    cp = run([str(milter_bin), "certs", "--config", str(config), *(["--json"] if as_json else [])],
             check=False)
    after = time.time()
    assert cp.returncode in (0, 1), cp.stderr.decode(errors="replace")
    return cp.returncode, cp.stdout.decode(), before, after


def certs_setup(tmp_path: Path, pki: Path, files: list[str], extra: str = "") -> Path:
    cert_dir = tmp_path / "certs"
    cert_dir.mkdir(mode=0o700, exist_ok=True)
    for rel in files:
        shutil.copy2(pki / rel, cert_dir / Path(rel).name)
    config = tmp_path / "milter.conf"
    config.write_text(f"Mode s\nCertificateDir {cert_dir}\n{extra}")
    return config


def test_stop_does_not_wait_out_libmilters_five_second_listener_wait(milter_bin, pki, tmp_path):
    """SIGTERM stops the milter at once, not when libmilter's listener next looks at its stop
    flag (it waits up to 5 s on the socket, MI_CHK_TIME, holding the lock smfi_stop needs): a
    restart (systemctl, the tests' own) took up to 5 s. Each stop comes 1 s after the start, when
    the listener is inside such a wait; without the wake-up it takes about 4 s."""
    milter = rigmod.Milter(milter_bin, tmp_path / "milter", pki / "certs", rigmod.free_port())
    try:
        for _ in range(3):
            milter.start(MilterSettings())
            time.sleep(1)
            began = time.monotonic()
            milter.stop()
            took = time.monotonic() - began
            assert took < 2.5, f"stop took {took:.2f} s\n{milter.log()}"
        assert milter.log().count("smime-milter stopped") == 3, milter.log()
    finally:
        milter.stop()


def test_certs_lists_expiry_and_exits_1_within_the_warning_window(milter_bin, pki, tmp_path):
    config = certs_setup(tmp_path, pki, ["certs/alice.pem", "expiring/soon.pem"])
    not_after = {"alice": openssl_not_after(pki / "certs/alice.pem"),
                 "soon": openssl_not_after(pki / "expiring/soon.pem")}

    rc, out, t0, t1 = certs(milter_bin, config, as_json=True)
    items = {i["identity"]: i for i in json.loads(out)["identities"]}
    assert set(items) == {"alice", "soon"}
    for name, item in items.items():
        assert item["not_after_unix"] == not_after[name]
        assert item["days_left"] in {days_left(not_after[name], t0), days_left(not_after[name], t1)}
        assert item["used_now"] is True
        assert item["issuer"] == "CN=smime-milter Test Issuing CA,O=smime-milter test"
        assert item["key"] == "RSA-2048"
    assert items["alice"]["addresses"] == [ALICE] and items["soon"]["addresses"] == ["soon@example.com"]
    assert items["alice"]["days_left"] in (399, 400) and items["soon"]["days_left"] == 5
    # Default ExpiryWarnDays 30,14,7,1: 5 days left is within the 7-day threshold.
    assert items["soon"]["warning_threshold_days"] == 7
    assert items["soon"]["expires_within_warning_window"] is True
    assert "warning_threshold_days" not in items["alice"]
    assert items["alice"]["expires_within_warning_window"] is False
    assert rc == 1, "an identity expiring within max(ExpiryWarnDays) must make certs exit 1"

    # The table lists the same identities with the same days.
    rc_table, table, _, _ = certs(milter_bin, config, as_json=False)
    rows = [line.split("\t") for line in table.strip().splitlines()]
    assert rows[0][:5] == ["IDENTITY", "DAYS", "NOT-AFTER", "KEY", "USED"]
    by_name = {row[0]: row for row in rows[1:]}
    assert set(by_name) == {"alice", "soon"}
    for name, row in by_name.items():
        assert int(row[1]) == items[name]["days_left"]
        assert row[2] == items[name]["not_after"]
        assert row[4] == "yes"
        assert row[5] == ",".join(items[name]["addresses"])
    assert rc_table == 1

    # A 3-day window: nothing expires within it.
    config = certs_setup(tmp_path, pki, [], extra="ExpiryWarnDays 3\n")
    rc, out, _, _ = certs(milter_bin, config, as_json=True)
    items = {i["identity"]: i for i in json.loads(out)["identities"]}
    assert set(items) == {"alice", "soon"}
    assert not any(i["expires_within_warning_window"] for i in items.values())
    assert "warning_threshold_days" not in items["soon"]
    assert rc == 0


def test_certs_lists_a_lapsed_identity_as_expired_and_not_used(milter_bin, pki, tmp_path):
    config = certs_setup(tmp_path, pki, ["certs/alice.pem", "expiring/soon.pem", "expiring/lapsed.pem"],
                         extra="ExpiryWarnDays 3\n")
    lapsed_not_after = openssl_not_after(pki / "expiring/lapsed.pem")
    rc, out, t0, t1 = certs(milter_bin, config, as_json=True)
    items = {i["identity"]: i for i in json.loads(out)["identities"]}
    assert set(items) == {"alice", "soon", "lapsed"}
    lapsed = items["lapsed"]
    assert lapsed["used_now"] is False and lapsed["note"] == "expired"
    assert lapsed["not_after_unix"] == lapsed_not_after < t0
    assert lapsed["days_left"] < 0
    assert lapsed["addresses"] == ["lapsed@example.com"]
    assert items["alice"]["used_now"] is True and items["soon"]["used_now"] is True
    # An expired certificate is past any warning window: certs still exits 1.
    assert lapsed["expires_within_warning_window"] is True
    assert rc == 1

    _, table, _, _ = certs(milter_bin, config, as_json=False)
    row = next(line.split("\t") for line in table.splitlines() if line.startswith("lapsed\t"))
    assert row[4] == "no (expired)"
    assert int(row[1]) == lapsed["days_left"]


# ---------------------------------------------------------------------------------------------
# 2. expiry warnings in the log and the ExpiryReport mail

REPORT_TO = f"postmaster@{rigmod.SINK_DOMAIN}"


def write_sendmail_wrapper(r: rigmod.Rig) -> Path:
    """A SendmailCommand that keeps a copy of each report (reports/N) and hands it to the rig's
    real Postfix with `sendmail -C`, so the report is delivered to the sink."""
    sendmail = shutil.which("sendmail") or "/usr/sbin/sendmail"
    d = r.root / "report-sendmail"
    (d / "reports").mkdir(parents=True)
    script = d / "sendmail"
    script.write_text(f"""#!/bin/sh
n=$(ls '{d}/reports' | wc -l)
cat > '{d}/reports/'$n
echo "$*" >> '{d}/calls'
exec '{sendmail}' -C '{r.postfix.config_dir}' "$@" < '{d}/reports/'$n
""")
    script.chmod(0o755)
    return script


def test_expiry_warning_logged_and_reported_once_across_reloads(make_rig):
    settings = MilterSettings(identities=("expiring/soon.pem",))
    r = make_rig(settings)
    # The rig starts the milter before Postfix; the report needs Postfix running, so the
    # milter is restarted with ExpiryReport now (a real start, with the check at start).
    wrapper = write_sendmail_wrapper(r)
    reports = wrapper.parent / "reports"
    settings.extra = f"ExpiryReport {REPORT_TO}\nSendmailCommand {wrapper}\n"
    mark = len(r.milter.log())
    r.milter.restart(settings)

    warning = r"warning: certificate of identity soon \(soon@example\.com\) expires in 5 days, on "
    wait_log(r, warning, since=mark)
    wait_log(r, rf"expiry report sent to {re.escape(REPORT_TO)}", since=mark)
    # No other identity is near expiry: exactly one warning, one report.
    assert len(log_lines(r, r"warning: certificate of identity", since=mark)) == 1
    assert len(list(reports.iterdir())) == 1
    first = r.sink.wait_for(REPORT_TO)[0]
    assert "signing certificate expiry" in subject_of(first)
    body = first.body.decode()
    assert "certificate of identity soon (soon@example.com) expires in 5 days" in body
    assert first.parsed().get("Auto-Submitted") == "auto-generated"

    # Reload with one more identity whose certificate has lapsed ("zz-lapsed" sorts after
    # "soon", and the check goes through identities in name order on one thread): its report
    # being sent proves the check got past "soon" without sending that report again.
    shutil.copy2(r.pki_dir / "expiring" / "lapsed.pem", r.pki_dir / "certs" / "zz-lapsed.pem")
    mark = len(r.milter.log())
    r.milter.reload()
    wait_log(r, r"notice: reloaded ", since=mark)
    wait_log(r, warning, since=mark)
    wait_log(r, r"warning: certificate of identity zz-lapsed \(lapsed@example\.com\) expired on ", since=mark)
    wait_log(r, rf"expiry report sent to {re.escape(REPORT_TO)}", since=mark)
    copies = sorted(reports.iterdir(), key=lambda p: int(p.name))
    assert len(copies) == 2, [p.read_text() for p in copies]
    assert "identity soon " in copies[0].read_text()
    assert "identity zz-lapsed (lapsed@example.com) expired on" in copies[1].read_text()

    # A second reload changes nothing to report: warnings logged again, no mail.
    mark = len(r.milter.log())
    r.milter.reload()
    wait_log(r, r"warning: certificate of identity zz-lapsed ", since=mark)
    assert log_lines(r, warning, since=mark)
    assert not log_lines(r, r"expiry report", since=mark)
    assert len(list(reports.iterdir())) == 2

    delivered = r.sink.wait_for(REPORT_TO, count=2)
    assert len(delivered) == 2
    assert sorted("zz-lapsed" in d.body.decode() for d in delivered) == [False, True]


def test_failed_expiry_report_is_tried_again_at_the_next_check(make_rig):
    settings = MilterSettings(identities=("expiring/soon.pem",))
    r = make_rig(settings)
    d = r.root / "flaky-sendmail"
    d.mkdir()
    script = d / "sendmail"
    # Fails (EX_TEMPFAIL) the first time, as a sendmail does while the MTA is not running yet.
    script.write_text(f"""#!/bin/sh
if [ ! -e '{d}/failed-once' ]; then touch '{d}/failed-once'; cat > /dev/null; exit 75; fi
cat > '{d}/report'
""")
    script.chmod(0o755)
    settings.extra = f"ExpiryReport {REPORT_TO}\nSendmailCommand {script}\n"
    mark = len(r.milter.log())
    r.milter.restart(settings)
    wait_log(r, r"expiry report to .* exited with 75", since=mark)
    mark = len(r.milter.log())
    r.milter.reload()
    wait_log(r, r"notice: reloaded ", since=mark)
    wait_log(r, r"warning: certificate of identity soon ", since=mark)
    wait_log(r, rf"expiry report sent to {re.escape(REPORT_TO)}", since=mark, timeout=10)
    assert "identity soon " in (d / "report").read_text()


def issue_short_lived(pki_dir: Path, name: str, seconds: int) -> int:
    """Writes certs/NAME.pem for NAME@example.com, issued by the test intermediate, valid for
    `seconds` more; returns its notAfter as a Unix time."""
    import sys
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    sys.path.insert(0, str(rigmod.PKI_SCRIPT.parent))
    import make_test_pki as mk
    inter = x509.load_pem_x509_certificate((pki_dir / "intermediate.pem").read_bytes())
    inter_key = serialization.load_pem_private_key((pki_dir / "intermediate.key").read_bytes(), None)
    key = mk.rsa_key()
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    cert = mk.leaf([f"{name}@example.com"], key, inter, inter_key,
                   not_after=now + datetime.timedelta(seconds=seconds))
    mk.write(str(pki_dir / "certs" / f"{name}.pem"), mk.pem(cert) + mk.pem(inter) + mk.key_pem(key))
    return int(cert.not_valid_after_utc.timestamp())


def test_expired_report_follows_the_last_threshold_report(make_rig):
    settings = MilterSettings()
    r = make_rig(settings)
    wrapper = write_sendmail_wrapper(r)
    reports = wrapper.parent / "reports"
    not_after = issue_short_lived(r.pki_dir, "brief", seconds=20)
    settings.extra = f"ExpiryReport {REPORT_TO}\nSendmailCommand {wrapper}\n"
    r.milter.restart(settings)
    wait_log(r, r"warning: certificate of identity brief \(brief@example\.com\) expires in 0 days")
    wait_log(r, r"expiry report sent to ")
    wait_until(lambda: time.time() > not_after + 1, 60, "the short-lived certificate to expire")
    # zz-soon sorts after brief: its report marks the end of the check (see the test above).
    shutil.copy2(r.pki_dir / "expiring" / "soon.pem", r.pki_dir / "certs" / "zz-soon.pem")
    mark = len(r.milter.log())
    r.milter.reload()
    wait_log(r, r"warning: certificate of identity brief \(brief@example\.com\) expired on ", since=mark)
    wait_log(r, r"warning: certificate of identity zz-soon ", since=mark)
    wait_log(r, r"expiry report sent to ", since=mark)
    texts = [p.read_text() for p in sorted(reports.iterdir(), key=lambda p: int(p.name))]
    assert "identity brief (brief@example.com) expires in 0 days" in texts[0]
    assert any("identity brief (brief@example.com) expired on" in t for t in texts[1:]), texts


# ---------------------------------------------------------------------------------------------
# 3. OnExpiredCertificate

def lapsed_settings(action: str) -> MilterSettings:
    s = MilterSettings(identities=("expiring/lapsed.pem",), extra=f"OnExpiredCertificate {action}\n")
    s.signing_table += "lapsed@example.com lapsed detached\n"
    return s


def test_expired_certificate_unsigned_then_tempfail(make_rig, rcpt):
    r = make_rig(lapsed_settings("unsigned"))
    sender = "lapsed@example.com"
    data = message(sender, rcpt, "lapsed unsigned")
    assert send(r, sender, rcpt, data)[0] == 250
    got = r.sink.wait_for(rcpt)[0]
    assert form_of(got) == "unsigned"
    assert got.body == b"Hello,\n\nthe figures.\n"
    line = wait_log(r, r"from=<lapsed@example\.com> decision=")[0]
    assert "decision=skipped" in line
    assert re.search(r'reason="certificate of identity lapsed expired on \d{4}-', line), line
    assert "action=tempfail" not in line

    # The same with OnExpiredCertificate tempfail: the client sees 4xx, nothing is queued.
    r.milter.restart(lapsed_settings("tempfail"))
    code, text = send(r, sender, rcpt, message(sender, rcpt, "lapsed tempfail"))
    assert 400 <= code < 500, (code, text)
    line = wait_log(r, r"from=<lapsed@example\.com> decision=", count=2)[1]
    assert "decision=skipped" in line and "expired on" in line and "action=tempfail" in line
    # Refused at end of DATA: Postfix did not take responsibility, so nothing can be delivered.
    assert r.postfix.queue_ids() == []
    # A sender with a valid certificate is still signed by the same milter.
    assert send(r, ALICE, rcpt, message(ALICE, rcpt, "alice still signed"))[0] == 250
    delivered = r.sink.wait_for(rcpt, count=2)
    assert sorted(subject_of(d) for d in delivered) == ["alice still signed", "lapsed unsigned"]
    assert form_of(next(d for d in delivered if subject_of(d) == "alice still signed")) == "detached"


# ---------------------------------------------------------------------------------------------
# 4. reload under load

def test_reload_under_load_loses_nothing_and_switches_settings(make_rig, rcpt):
    r = make_rig(MilterSettings())
    table = r.milter.directory / "signing.table"
    good_config = r.milter.config_path.read_text()
    results: list[tuple[int, float, float, int, str]] = []   # (n, start, end, code, text)
    lock = threading.Lock()
    stop = threading.Event()
    numbers = iter(range(10_000))
    limit = 150   # bound on the messages sent, whatever happens
    deadline = time.monotonic() + 240

    def sender():
        while not stop.is_set() and time.monotonic() < deadline:
            with lock:
                n = next(numbers)
            if n >= limit:
                return
            start = time.monotonic()
            try:
                code, text = send(r, ALICE, rcpt, message(ALICE, rcpt, f"load {n}"))
            except (OSError, smtplib.SMTPException) as e:
                code, text = -1, repr(e)
            with lock:
                results.append((n, start, time.monotonic(), code, text))
            time.sleep(0.02)

    def sent_after(t: float) -> int:
        with lock:
            return sum(1 for _, start, _, _, _ in results if start > t)

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: sent_after(0) >= 8, 120, "8 messages before the reload")
        # One session certainly in flight across the reload: envelope accepted (the milter has
        # seen connect, MAIL and RCPT) and the header sent before the SIGHUP, the body after.
        held = smtplib.SMTP(INTERNAL_ADDR, r.postfix.int_port, local_hostname="client.example", timeout=30)
        held.ehlo()
        assert held.mail(ALICE)[0] == 250 and held.rcpt(rcpt)[0] == 250
        assert held.docmd("DATA")[0] == 354
        held_head, held_body = message(ALICE, rcpt, "held across reload").split(b"\r\n\r\n", 1)
        held.send(held_head + b"\r\n\r\n")
        # Switch alice to the opaque form: visible in every delivered message.
        table.write_text(table.read_text().replace("alice@example.com alice detached",
                                                   "alice@example.com alice opaque"))
        hup = time.monotonic()
        r.milter.reload()
        wait_log(r, r"notice: reloaded ")
        reloaded = time.monotonic()
        held.send(held_body + b".\r\n")
        held_reply = held.getreply()
        held.quit()
        wait_until(lambda: sent_after(reloaded) >= 8, 120, "8 messages after the reload")

        # A broken configuration (unknown key) with the table switched back: refused, the
        # configuration in force (opaque) stays.
        table.write_text(table.read_text().replace("alice@example.com alice opaque",
                                                   "alice@example.com alice detached"))
        r.milter.config_path.write_text(good_config + "NoSuchKey yes\n")
        r.milter.reload()
        refusal = wait_log(r, r"reload refused")[0]
        refused = time.monotonic()
        wait_until(lambda: sent_after(refused) >= 8, 120, "8 messages after the refused reload")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)

    bad_line = len(good_config.splitlines()) + 1
    assert "keeping the configuration in force" in refusal
    assert f'{r.milter.config_path}:{bad_line}: unknown key "NoSuchKey"' in refusal, refusal
    assert len(log_lines(r, r"notice: reloaded ")) == 1
    total = len(results)
    assert sorted(n for n, *_ in results) == list(range(total))
    failed = [(n, code, text) for n, _, _, code, text in results if code != 250]
    assert not failed, f"not accepted: {failed}"

    assert held_reply[0] == 250, held_reply
    delivered = r.sink.wait_for(rcpt, count=total + 1)
    by_subject = {subject_of(d): d for d in delivered}
    assert len(delivered) == total + 1
    assert set(by_subject) == {f"load {n}" for n in range(total)} | {"held across reload"}
    assert len(log_lines(r, r"from=<alice@example\.com> decision=signed ")) == total + 1
    # A message is decided with the set in force when it started (MAIL FROM), so the one in
    # flight across the reload finishes with what it started with.
    assert form_of(by_subject["held across reload"]) == "detached"

    forms = {n: form_of(by_subject[f"load {n}"]) for n in range(total)}
    before = [n for n, _, end, _, _ in results if end < hup]
    after = [n for n, start, _, _, _ in results if start > reloaded]
    assert before and all(forms[n] == "detached" for n in before), {n: forms[n] for n in before}
    assert len(after) >= 16 and all(forms[n] == "opaque" for n in after), {n: forms[n] for n in after}
    assert set(forms.values()) == {"detached", "opaque"}
    # Every signature, old form or new, verifies with alice's certificate.
    for subject, d in by_subject.items():
        v = openssl_verify(d.message, r.trust_anchor, r.root / "verify")
        assert v.ok, f"{subject}: {v.output}"
        assert rigmod.signer_info(v.signer_pem)[0] == [ALICE]
    overlapping = [n for n, start, end, _, _ in results if start < hup < end]
    print(f"{total} messages, {len(before)} before the SIGHUP, {len(overlapping)} in flight at it, "
          f"{len(after)} after the reload")



# ---------------------------------------------------------------------------------------------
# 5. metrics

def test_metrics_match_the_log(make_rig, rcpt):
    port = rigmod.free_port()
    r = make_rig(MilterSettings(extra=f"MetricsListen {INTERNAL_ADDR}:{port}\n"))
    rigmod.wait_for_port(INTERNAL_ADDR, port, 15, "metrics endpoint")

    load = ([(ALICE, ALICE, False, "signed")] * 10            # internal, alice's own address
            + [("someone@elsewhere.example", ALICE, True, "skipped")] * 5   # external client
            + [(BOB, ALICE, False, "unauthorised")] * 2)     # bob's envelope, alice's From
    for i, (envelope, from_, external, _) in enumerate(load):
        code, text = send(r, envelope, rcpt, message(from_, rcpt, f"metrics {i}"), external=external)
        assert code == 250, (i, code, text)
        if i == 8:   # a scrape during the load works too
            status, _ = http_get(port, "/metrics")
            assert status == 200
    r.sink.wait_for(rcpt, count=len(load))
    wait_log(r, r" decision=\w+ ", count=len(load))

    status, text = http_get(port, "/metrics")
    assert status == 200
    samples = parse_prometheus(text)
    counters = {dict(labels)["decision"]: value for (name, labels), value in samples.items()
                if name == "smime_milter_messages_total"}
    from_log = decisions_in_log(r)
    assert from_log == {"signed": 10, "skipped": 5, "unauthorised": 2}
    assert counters == {k: float(v) for k, v in from_log.items()}
    assert samples[("smime_milter_message_duration_seconds_count", ())] == len(load)
    assert samples[("smime_milter_message_duration_seconds_bucket", (("le", "+Inf"),))] == len(load)
    assert samples[("smime_milter_message_duration_seconds_sum", ())] > 0
    buckets = sorted((float(dict(labels)["le"]), value) for (name, labels), value in samples.items()
                     if name == "smime_milter_message_duration_seconds_bucket")
    assert [v for _, v in buckets] == sorted(v for _, v in buckets), "cumulative buckets"

    # Idle now: no message in flight, no MTA connection open (Postfix closed them at QUIT).
    def idle():
        s = parse_prometheus(http_get(port, "/metrics")[1])
        return s[("smime_milter_messages_in_flight", ())] == 0 and s[("smime_milter_connections", ())] == 0
    wait_until(idle, 20, "in-flight and connection gauges back to 0")

    certs = r.pki_dir / "certs"
    expected = {"alice": openssl_not_after(certs / "alice.pem"),
                "bob": openssl_not_after(certs / "bob.pem"),
                "carol": openssl_not_after(certs / "carol.p12", passfile=certs / "carol.pass"),
                "news": openssl_not_after(certs / "news.pem")}
    gauges = {dict(labels)["identity"]: value for (name, labels), value in samples.items()
              if name == "smime_milter_certificate_not_after_seconds"}
    assert gauges == {k: float(v) for k, v in expected.items()}

    for path in ("/", "/metric", "/metricsx", "/other/metrics"):
        status, _ = http_get(port, path)
        assert status == 404, path


def test_metrics_count_inbound_results_and_broken_signature_causes(make_rig, rcpt):
    """Inbound mail (Mode sv): the result counter and the broken-signature cause counter
    follow the log, for a signature broken by an appended footer and an unsigned message."""
    port = rigmod.free_port()
    settings = MilterSettings(mode="sv")
    r = make_rig(settings)
    settings.extra = f"TrustAnchors {r.trust_anchor}\nMetricsListen {INTERNAL_ADDR}:{port}\n"
    r.milter.restart(settings)
    rigmod.wait_for_port(INTERNAL_ADDR, port, 15, "metrics endpoint")

    entity = rigmod.openssl_sign(crlf("Content-Type: text/plain; charset=us-ascii\n\nHello Bob,\nsee you.\n"),
                                 r.pki_dir / "certs" / "alice.pem", r.root / "sign")
    # A disclaimer tool on the way appends its footer inside the signed part.
    tampered = entity.replace(b"see you.\r\n", b"see you.\r\n-- \r\nThis e-mail is confidential.\r\n", 1)
    assert tampered != entity
    head = crlf(f"From: {ALICE}\nTo: {rcpt}\nSubject: broken\nMessage-ID: <broken.{time.time_ns()}@example.com>\n")
    assert send(r, ALICE, rcpt, head + tampered, external=True)[0] == 250
    assert send(r, "someone@elsewhere.example", rcpt, message("someone@elsewhere.example", rcpt, "unsigned"),
                external=True)[0] == 250
    r.sink.wait_for(rcpt, count=2)
    lines = wait_log(r, r" decision=verified ", count=2)
    assert any("smime=fail" in line and "cause=footer" in line for line in lines), lines
    assert any("smime=none" in line for line in lines), lines

    samples = parse_prometheus(http_get(port, "/metrics")[1])
    results = {dict(labels)["result"]: value for (name, labels), value in samples.items()
               if name == "smime_milter_inbound_results_total"}
    causes = {dict(labels)["cause"]: value for (name, labels), value in samples.items()
              if name == "smime_milter_broken_signatures_total"}
    assert results == {"fail": 1.0, "none": 1.0}
    assert causes == {"footer": 1.0}


# ---------------------------------------------------------------------------------------------
# 6. syslog

def test_syslog_records_go_to_dev_log_with_the_facility(make_rig, rcpt):
    """The milter runs in a private mount namespace (unshare) where a directory of the rig is
    mounted on /dev: device nodes null/zero/random/urandom and the test's datagram socket
    `log`. The machine's /dev and /dev/log are not touched."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to give the milter a private /dev/log")
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                           capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a mount namespace here: {probe.stderr.decode(errors='replace')}")
    machine_dev_log = os.path.lexists("/dev/log")
    records: list[bytes] = []
    listener: dict[str, socket.socket] = {}

    def prepare(r: rigmod.Rig):
        dev = r.root / "dev"
        dev.mkdir()
        for name, minor in (("null", 3), ("zero", 5), ("random", 8), ("urandom", 9)):
            os.mknod(dev / name, stat.S_IFCHR | 0o666, os.makedev(1, minor))
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(str(dev / "log"))
        os.chmod(dev / "log", 0o666)
        s.settimeout(0.5)
        listener["socket"] = s
        r.milter.launcher = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                             'mount --bind "$0" /dev && exec "$@"', str(dev)]

    stop = threading.Event()

    def receive():
        while not stop.is_set():
            try:
                records.append(listener["socket"].recv(65536))
            except socket.timeout:
                continue
            except OSError:
                return

    settings = MilterSettings(extra="Syslog yes\nSyslogFacility local3\n")
    try:
        r = make_rig(settings, prepare=prepare)
        thread = threading.Thread(target=receive, daemon=True)
        thread.start()
        assert send(r, ALICE, rcpt, message(ALICE, rcpt, "via syslog"))[0] == 250
        assert form_of(r.sink.wait_for(rcpt)[0]) == "detached"

        def parsed():
            out = []
            for rec in list(records):
                m = re.match(rb"<(\d+)>.*?smime-milter\[(\d+)\]: (.*)", rec, re.S)
                if m:
                    out.append((int(m.group(1)), int(m.group(2)), m.group(3).decode(errors="replace")))
            return out
        wait_until(parsed, 15, "syslog records from the milter")
        got = parsed()
        assert {pid for _, pid, _ in got} == {r.milter.proc.pid}
        local3 = 19  # syslog(3) LOG_LOCAL3 >> 3
        assert {pri >> 3 for pri, _, _ in got} == {local3}
        # Nothing goes to standard error when Syslog is yes.
        assert "decision=" not in r.milter.log() and "listening on" not in r.milter.log()
        wait_until(lambda: any("decision=signed" in text for _, _, text in parsed()), 15,
                   "the per-message line in the syslog records")
        got = parsed()
        assert {pri >> 3 for pri, _, _ in got} == {local3}
        signed = next((pri, text) for pri, _, text in got if "decision=signed" in text)
        assert signed[0] & 7 == 6, "the per-message line is LOG_INFO"   # LOG_INFO
        assert "from=<alice@example.com>" in signed[1] and "identity=alice" in signed[1]
        listening = next(pri for pri, _, text in got if " listening on " in text)
        assert listening & 7 == 5   # LOG_NOTICE
    finally:
        stop.set()
        if "socket" in listener:
            listener["socket"].close()
    assert os.path.lexists("/dev/log") == machine_dev_log
