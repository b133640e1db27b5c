# SPDX-License-Identifier: Apache-2.0
"""A private Sendmail 8.17 on loopback, relaying everything to an smtp-sink, for integration tests.

Debian's `sendmail-bin` conflicts with `postfix`, so Sendmail is not installed: its packages are
fetched with `apt-get download` into a cache directory (SENDMAIL_RIG_CACHE, default
/var/tmp/smime-milter-sendmail), unpacked there with `dpkg -x`, and run from that folder with a
`.cf` built by m4 from sendmail-cf's macros. The shared libraries that sendmail-bin needs are
installed with apt-get when missing (they do not conflict with Postfix). Needs root and apt.

Sendmail looks up its own fully qualified host name at start and waits about 60 s for DNS when
the name is not qualified; `ensure_fqdn_host()` gives the host one in /etc/hosts first
(idempotent: one marked line, added once).

    with SmtpSink(workdir / "sink") as sink, SendmailRig(workdir / "sendmail", sink.port,
                                                          milter="inet:8891@127.0.0.1") as mta:
        mta.send(message_bytes, sender="alice@example.com", recipients=["bob@sink.test"])
        [delivered] = sink.wait_for(1)
"""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import time

PACKAGES = ("sendmail-bin", "sendmail-base", "sendmail-cf")
CACHE = pathlib.Path(os.environ.get("SENDMAIL_RIG_CACHE", "/var/tmp/smime-milter-sendmail"))
HOSTS_MARK = "# smime-milter test rig: fully qualified host name for Sendmail"
FQDN_DOMAIN = "smime-milter.test"
SINK_DOMAIN = "sink.test"


class RigError(RuntimeError):
    """The rig could not be set up; the message says what to do."""


def _run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(cmd, **kw)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (see rig.free_port: below the ephemeral range)."""
    import rig
    return rig.free_port("127.0.0.1")


def wait_for_port(port: int, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    """Wait until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RigError(f"process {process.args[0]} exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RigError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def ensure_fqdn_host() -> str:
    """Make the host name resolve to a fully qualified name through /etc/hosts; return that name.

    The line is put first so that it wins over an existing unqualified entry for the host.
    """
    host = socket.gethostname().split(".")[0]
    fqdn = f"{host}.{FQDN_DOMAIN}"
    hosts = pathlib.Path("/etc/hosts")
    text = hosts.read_text()
    if HOSTS_MARK not in text:
        hosts.write_text(f"127.0.1.1\t{fqdn} {host}\t{HOSTS_MARK}\n" + text)
    return fqdn


def _installed(package: str) -> bool:
    res = _run(["dpkg-query", "-W", "-f=${Status}", package])
    return res.returncode == 0 and res.stdout.endswith(" installed")


def _apt_install(packages) -> None:
    missing = [p for p in packages if not _installed(p)]
    if not missing:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    res = _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env)
    if res.returncode != 0:
        _run(["apt-get", "update", "-q"], env=env)
        res = _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env)
    if res.returncode != 0:
        raise RigError(f"apt-get install {' '.join(missing)} failed:\n{res.stderr[-2000:]}")


def sendmail_root(cache: pathlib.Path = CACHE) -> pathlib.Path:
    """Sendmail's packages unpacked into `cache/root` (downloaded once); returns that root."""
    if os.geteuid() != 0:
        raise RigError("the Sendmail rig needs root (apt-get, /etc/hosts, a daemon on a port)")
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise RigError(f"{tool} not found: the Sendmail rig needs a Debian system")
    debs = cache / "debs"
    root = cache / "root"
    binary = root / "usr/libexec/sendmail/sendmail"
    debs.mkdir(parents=True, exist_ok=True)
    if not all(list(debs.glob(f"{p}_*.deb")) for p in PACKAGES):
        res = _run(["apt-get", "download", *PACKAGES], cwd=debs)
        if res.returncode != 0:  # the package lists may never have been fetched on this machine
            _run(["apt-get", "update", "-q"])
            res = _run(["apt-get", "download", *PACKAGES], cwd=debs)
        if res.returncode != 0:
            raise RigError(f"apt-get download {' '.join(PACKAGES)} failed:\n{res.stderr[-2000:]}")
    if not binary.exists():
        tmp = cache / "root.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for deb in sorted(debs.glob("*.deb")):
            res = _run(["dpkg-deb", "-x", str(deb), str(tmp)])
            if res.returncode != 0:
                raise RigError(f"dpkg-deb -x {deb.name} failed: {res.stderr}")
        tmp.rename(root)
    # Libraries sendmail-bin links to (libwrap0, liblockfile1, libldap...) and m4 for the .cf.
    [bin_deb] = sorted(debs.glob("sendmail-bin_*.deb"))[-1:]
    depends = _run(["dpkg-deb", "-f", str(bin_deb), "Depends"]).stdout
    libs = [re.sub(r"\s*\(.*\)", "", d).strip().split(":")[0] for d in depends.split(",")]
    _apt_install([d for d in libs if d and not d.startswith("sendmail")] + ["m4"])
    missing = [l for l in _run(["ldd", str(binary)]).stdout.splitlines() if "not found" in l]
    if missing:
        raise RigError("sendmail still lacks libraries:\n" + "\n".join(missing))
    return root


def _m4_quote(value: str) -> str:
    return f"`{value}'"


def milter_lines(name: str, socket_spec: str, flags: str = "T",
                 timeouts: str = "S:30s;R:30s;E:60s") -> str:
    """The sendmail.mc lines that put a milter in front of Sendmail (see docs/sendmail.md)."""
    return (
        f"INPUT_MAIL_FILTER({_m4_quote(name)}, {_m4_quote(f'S={socket_spec}, F={flags}, T={timeouts}')})dnl\n"
        # Sendmail's defaults already send {daemon_name} at connect and i, {auth_authen} at
        # MAIL FROM; the queue id is sent again at end of message, where the milter logs it.
        "define(`confMILTER_MACROS_EOM', confMILTER_MACROS_EOM`, i')dnl\n"
    )


class SmtpSink:
    """Postfix's smtp-sink on 127.0.0.1, keeping every message it receives as a file."""

    def __init__(self, directory: pathlib.Path, port: int | None = None):
        self.directory = pathlib.Path(directory)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> "SmtpSink":
        if shutil.which("smtp-sink") is None:
            raise RigError("smtp-sink not found (package postfix)")
        self.directory.mkdir(parents=True, exist_ok=True)
        # -u root: the sink writes into a test's private (0700) directory; it listens on
        # loopback only and exits with the test.
        self.process = subprocess.Popen(
            ["smtp-sink", "-u", "root", "-d", f"{self.directory}/%H%M%S.", f"127.0.0.1:{self.port}", "64"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, process=self.process)
        return self

    def messages(self) -> list[pathlib.Path]:
        return sorted(p for p in self.directory.iterdir() if p.is_file())

    def wait_for(self, count: int, timeout: float = 60.0) -> list[pathlib.Path]:
        """The first `count` messages, once that many have arrived (complete files)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.messages()
            if len(got) >= count:
                time.sleep(0.2)  # smtp-sink writes the file while the session ends
                return self.messages()[:count]
            time.sleep(0.2)
        raise RigError(f"the sink received {len(self.messages())} of {count} messages in {timeout} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class SendmailRig:
    """A Sendmail daemon on 127.0.0.1:`port` with its own .cf, queue and pid file under `workdir`,
    sending every message to the smtp-sink on `sink_port`, optionally through a milter."""

    def __init__(self, workdir: pathlib.Path, sink_port: int, milter: str | None = None,
                 port: int | None = None, cache: pathlib.Path = CACHE):
        self.workdir = pathlib.Path(workdir)
        self.sink_port = sink_port
        self.milter = milter
        self.port = port or free_port()
        self.cache = cache
        self.process: subprocess.Popen | None = None
        self.root: pathlib.Path | None = None

    @property
    def binary(self) -> pathlib.Path:
        assert self.root is not None
        return self.root / "usr/libexec/sendmail/sendmail"

    def mc(self) -> str:
        w = self.workdir
        lines = [
            "divert(-1)",
            "# sendmail.mc of the smime-milter test rig (generated by sendmail_rig.py)",
            "divert(0)dnl",
            "VERSIONID(`smime-milter test rig')dnl",
            "OSTYPE(`linux')dnl",
            # $j: no lookup of our own name at delivery, no probing of interfaces.
            "define(`confDOMAIN_NAME', `rig.smime-milter.test')dnl",
            "define(`confDONT_PROBE_INTERFACES', `True')dnl",
            f"define(`QUEUE_DIR', `{w}/queue')dnl",
            f"define(`STATUS_FILE', `{w}/sendmail.st')dnl",
            f"define(`confPID_FILE', `{w}/sendmail.pid')dnl",
            "define(`confHOST_STATUS_DIRECTORY', `')dnl",
            f"define(`confCW_FILE', `-o {w}/local-host-names')dnl",
            "define(`ALIAS_FILE', `')dnl",
            # Only /etc/hosts, never DNS: the machine has loopback only.
            f"define(`confSERVICE_SWITCH_FILE', `{w}/service.switch')dnl",
            "define(`confTO_IDENT', `0s')dnl",
            "define(`confDELIVERY_MODE', `background')dnl",
            # Everything goes to the sink. "esmtp:" is needed: a bare [127.0.0.1] is one of
            # Sendmail's own addresses, and a smart host equal to itself is ignored.
            "define(`SMART_HOST', `esmtp:[127.0.0.1]')dnl",
            f"define(`ESMTP_MAILER_ARGS', `TCP $h {self.sink_port}')dnl",
            f"define(`RELAY_MAILER_ARGS', `TCP $h {self.sink_port}')dnl",
            # Test domains do not resolve; loopback clients may relay anywhere.
            "FEATURE(`nocanonify')dnl",
            "FEATURE(`accept_unresolvable_domains')dnl",
            "FEATURE(`accept_unqualified_senders')dnl",
            "FEATURE(`promiscuous_relay')dnl",
            f"DAEMON_OPTIONS(`Port={self.port}, Addr=127.0.0.1, Name=MTA')dnl",
        ]
        text = "\n".join(lines) + "\n"
        if self.milter:
            text += milter_lines("smime-milter", self.milter)
        return text + "MAILER(`smtp')dnl\n"

    def build_cf(self) -> pathlib.Path:
        self.root = sendmail_root(self.cache)
        w = self.workdir
        w.mkdir(parents=True, exist_ok=True)
        (w / "queue").mkdir(mode=0o700, exist_ok=True)
        (w / "local-host-names").write_text("")
        (w / "service.switch").write_text("hosts files\naliases files\n")
        (w / "sendmail.mc").write_text(self.mc())
        cfdir = self.root / "usr/share/sendmail/cf"
        res = _run(["m4", f"-D_CF_DIR_={cfdir}/", str(cfdir / "m4/cf.m4"), str(w / "sendmail.mc")])
        if res.returncode != 0 or "ERROR" in res.stderr:
            raise RigError(f"m4 failed building sendmail.cf:\n{res.stderr}")
        (w / "sendmail.cf").write_text(res.stdout)
        return w / "sendmail.cf"

    def start(self) -> "SendmailRig":
        ensure_fqdn_host()
        cf = self.build_cf()
        # -bD: daemon in the foreground, so that the rig owns the process;
        # -X: SMTP trace of every session (the container has no syslog to look at).
        self.process = subprocess.Popen(
            [str(self.binary), "-C", str(cf), "-bD", "-X", str(self.workdir / "trace.log")],
            stdout=open(self.workdir / "sendmail.out", "wb"), stderr=subprocess.STDOUT,
            start_new_session=True)
        wait_for_port(self.port, process=self.process)
        return self

    def send(self, message: bytes, sender: str, recipients: list[str]) -> subprocess.CompletedProcess:
        """Send one message with swaks; returns swaks' result (stdout has the SMTP dialogue)."""
        data = self.workdir / f"outgoing-{time.monotonic_ns()}.eml"
        data.write_bytes(message)
        cmd = ["swaks", "--server", f"127.0.0.1:{self.port}", "--from", sender,
               "--helo", "client.smime-milter.test", "--data", str(data)]
        for rcpt in recipients:
            cmd += ["--to", rcpt]
        return _run(cmd, timeout=180)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            # Sendmail's children (one per session, deliveries) share the session group.
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
