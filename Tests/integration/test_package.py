# SPDX-License-Identifier: Apache-2.0
"""The Debian package: build it (or take SMIME_MILTER_DEB), unpack it into a throw-away root with
`dpkg -x`, and check what an administrator gets: files, modes, dependencies, the systemd unit
(`systemd-analyze verify`), the manual pages (groff/mandoc lint) and lintian. With CI=true the
package is also really installed with apt-get, checked (user, key directory, conffile) and purged.

Run: python3 -m pytest -v Tests/integration/test_package.py
     (SMIME_MILTER_DEB=dist/smime-milter_*.deb to test a package built before)
"""
import gzip
import os
import pathlib
import re
import shutil
import stat
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
NAME = "smime-milter"
UNIT = f"lib/systemd/system/{NAME}.service"
CONF = f"etc/{NAME}/{NAME}.conf"
CERTS = f"etc/{NAME}/certs"
MAN8 = f"usr/share/man/man8/{NAME}.8.gz"
MAN5 = f"usr/share/man/man5/{NAME}.conf.5.gz"
DOC = f"usr/share/doc/{NAME}"

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian)")


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(cmd, **kw)


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    """The package under test: SMIME_MILTER_DEB, or one built now by scripts/deb-build.sh."""
    given = os.environ.get("SMIME_MILTER_DEB")
    if given:
        path = pathlib.Path(given).resolve()
        assert path.is_file(), f"SMIME_MILTER_DEB={given} does not exist"
        return path
    out = tmp_path_factory.mktemp("dist")
    env = dict(os.environ, DEB_OUT_DIR=str(out))
    built = run(["bash", str(REPO / "scripts/deb-build.sh")], env=env, cwd=REPO)
    assert built.returncode == 0, f"deb-build.sh failed:\n{built.stderr[-4000:]}"
    path = pathlib.Path(built.stdout.strip().splitlines()[-1])
    assert path.is_file()
    return path


@pytest.fixture(scope="module")
def root(deb, tmp_path_factory):
    """The package's files unpacked into a throw-away root."""
    r = tmp_path_factory.mktemp("root")
    res = run(["dpkg-deb", "-x", str(deb), str(r)])
    assert res.returncode == 0, res.stderr
    return r


def field(deb, name):
    return run(["dpkg-deb", "-f", str(deb), name]).stdout.strip()


def mode(path):
    return stat.S_IMODE(path.lstat().st_mode)


# --- control data -------------------------------------------------------------------------

def test_control_fields(deb):
    assert field(deb, "Package") == NAME
    assert field(deb, "Architecture") == run(["dpkg", "--print-architecture"]).stdout.strip()
    assert field(deb, "Section") == "mail"
    depends = [d.strip().split()[0] for d in field(deb, "Depends").split(",")]
    for lib in ("adduser", "libc6", "libmilter1.0.1", "libssl3"):
        assert lib in depends, f"Depends lacks {lib}: {depends}"
    assert not [d for d in depends if "swift" in d], depends


def test_conffiles_and_maintainer_scripts(deb, tmp_path):
    ctl = tmp_path / "DEBIAN"
    assert run(["dpkg-deb", "-e", str(deb), str(ctl)]).returncode == 0
    assert (ctl / "conffiles").read_text().split() == [f"/{CONF}"]
    for script in ("postinst", "prerm", "postrm"):
        path = ctl / script
        assert mode(path) == 0o755, script
        assert run(["sh", "-n", str(path)]).returncode == 0, f"{script} has a shell syntax error"
    postinst = (ctl / "postinst").read_text()
    assert re.search(r"adduser --system --group .*--no-create-home", postinst)
    assert "chmod 0700 /etc/smime-milter/certs" in postinst
    # md5sums covers every regular file of the package.
    listed = {line.split(None, 1)[1] for line in (ctl / "md5sums").read_text().splitlines()}
    contents = run(["dpkg-deb", "-c", str(deb)]).stdout.splitlines()
    files = {l.split()[-1].removeprefix("./") for l in contents if l.startswith("-")}
    assert listed == files


# --- files in the unpacked root -----------------------------------------------------------

def test_every_file_owned_by_root(deb):
    for line in run(["dpkg-deb", "-c", str(deb)]).stdout.splitlines():
        assert line.split()[1] == "root/root", line


def test_binary(root):
    binary = root / "usr/sbin" / NAME
    assert mode(binary) == 0o755
    ldd = run(["ldd", str(binary)]).stdout
    assert "not found" not in ldd, ldd
    assert not re.search(r"libswift|libFoundation|lib_Foundation|libdispatch|/opt/", ldd), \
        f"the binary still needs the Swift toolchain's libraries:\n{ldd}"
    assert re.search(r"libmilter\.so", ldd) and re.search(r"libssl\.so\.3", ldd), ldd
    # Stripped: no symbol table left.
    assert "no symbols" in run(["nm", str(binary)]).stderr
    res = run([str(binary), "--help"])
    assert res.returncode == 0, res.stderr
    for command in ("run", "sign", "check-config"):
        assert command in res.stdout + res.stderr


def test_configuration_and_key_directory(root):
    conf = root / CONF
    assert mode(conf) == 0o644
    text = conf.read_text()
    assert re.search(r"^Socket\s+\S+", text, re.M)
    assert re.search(r"^CertificateDir\s+/etc/smime-milter/certs\s*$", text, re.M)
    # The package must start without the example tables, which are only examples.
    assert not re.search(r"^(SigningTable|SenderMap)\s", text, re.M)
    certs = root / CERTS
    assert certs.is_dir() and mode(certs) == 0o700
    assert list(certs.iterdir()) == []


def test_packaged_configuration_is_valid(root, tmp_path):
    """The conffile as shipped passes check-config (paths moved into the throw-away root)."""
    text = (root / CONF).read_text().replace("/etc/smime-milter/", f"{root}/etc/smime-milter/")
    conf = tmp_path / "smime-milter.conf"
    conf.write_text(text)
    res = run([str(root / "usr/sbin" / NAME), "check-config", "--config", str(conf)])
    assert res.returncode == 0, f"check-config refused the packaged configuration:\n{res.stdout}{res.stderr}"


def test_documentation(root):
    doc = root / DOC
    assert "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/" in \
        (doc / "copyright").read_text()
    changelog = gzip.decompress((doc / "changelog.Debian.gz").read_bytes()).decode()
    assert changelog.startswith(f"{NAME} (")
    for example in ("postfix-chroot.conf", "postfix-chroot.tmpfiles"):
        assert (doc / "examples" / example).is_file()


# --- systemd --------------------------------------------------------------------------------

def unit_settings(path):
    settings = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_unit_sandboxing(root):
    s = unit_settings(root / UNIT)
    expected = {
        "User": NAME, "ProtectSystem": "strict", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
        "ProtectHome": "yes", "ReadOnlyPaths": "/etc/smime-milter", "RuntimeDirectory": NAME,
        "ExecReload": "/bin/kill -HUP $MAINPID", "Restart": "on-failure",
    }
    for key, value in expected.items():
        assert s.get(key) == [value], f"{key}: {s.get(key)}"
    assert s["ExecStart"] == [f"/usr/sbin/{NAME} run --config /etc/{NAME}/{NAME}.conf"]


def systemd_verify(unit_text, tmp_path, man_root):
    unit = tmp_path / f"{NAME}.service"
    unit.write_text(unit_text)
    env = dict(os.environ, MANPATH=f"{man_root}/usr/share/man:", SYSTEMD_LOG_COLOR="0")
    return run(["systemd-analyze", "verify", str(unit)], env=env)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze (package systemd)")
def test_systemd_analyze_verify(root, tmp_path):
    """`systemd-analyze verify` checks the unit's syntax, that ExecStart exists and that the
    Documentation= manual pages open. It needs no running systemd (it works in a container);
    ExecStart is pointed at the unpacked binary and MANPATH at the unpacked pages."""
    text = (root / UNIT).read_text().replace(f"/usr/sbin/{NAME}", str(root / "usr/sbin" / NAME))
    res = systemd_verify(text, tmp_path, root)
    assert res.returncode == 0 and res.stderr.strip() == "", res.stderr
    # The check can fail: a unit whose program is missing is refused.
    broken = text.replace(str(root / "usr/sbin" / NAME), str(root / "usr/sbin/missing"))
    assert systemd_verify(broken, tmp_path, root).returncode != 0


def test_renewal_timer_and_service(root, tmp_path):
    """The daily renewal: a timer and a sandboxed oneshot service that may write CertificateDir
    and its state directory only, reloads the milter afterwards and retries CA errors (exit 75)."""
    timer = root / "lib/systemd/system" / f"{NAME}-renew.timer"
    service = root / "lib/systemd/system" / f"{NAME}-renew.service"
    assert mode(timer) == 0o644 and mode(service) == 0o644
    t = unit_settings(timer)
    assert t["OnCalendar"] == ["daily"] and t["Persistent"] == ["true"] and t["WantedBy"] == ["timers.target"]
    s = unit_settings(service)
    expected = {"Type": "oneshot", "User": NAME, "ProtectSystem": "strict", "ReadOnlyPaths": f"/etc/{NAME}",
                "ReadWritePaths": f"/etc/{NAME}/certs", "StateDirectory": NAME, "Restart": "on-failure",
                "RestartPreventExitStatus": "1 2", "NoNewPrivileges": "yes"}
    for key, value in expected.items():
        assert s.get(key) == [value], f"{key}: {s.get(key)}"
    assert s["ExecStart"] == [f"/usr/sbin/{NAME} identity renew --due --no-reload --config /etc/{NAME}/{NAME}.conf"]
    assert s["ExecStopPost"] == [f"+/bin/systemctl try-reload-or-restart {NAME}.service"]
    postinst = (REPO / "packaging/debian/postinst").read_text()
    assert "enable 'smime-milter-renew.timer'" in postinst
    if shutil.which("systemd-analyze"):
        text = service.read_text().replace(f"/usr/sbin/{NAME}", str(root / "usr/sbin" / NAME))
        unit = tmp_path / service.name
        unit.write_text(text)
        (tmp_path / timer.name).write_text(timer.read_text())
        env = dict(os.environ, MANPATH=f"{root}/usr/share/man:", SYSTEMD_LOG_COLOR="0")
        res = run(["systemd-analyze", "verify", str(unit), str(tmp_path / timer.name)], env=env)
        assert res.returncode == 0 and res.stderr.strip() == "", res.stderr
        res = run([str(root / "usr/sbin" / NAME), "identity", "renew", "--help"])
        assert res.returncode == 0 and "--no-reload" in res.stdout


# --- manual pages ---------------------------------------------------------------------------

def man_source(root, rel):
    return gzip.decompress((root / rel).read_bytes()).decode()


@pytest.mark.parametrize("page", [MAN8, MAN5])
def test_man_page_lints_and_renders(root, tmp_path, page):
    src = tmp_path / pathlib.Path(page).stem
    src.write_text(man_source(root, page))
    groff = run(["groff", "-ww", "-man", "-z", str(src)])
    assert groff.returncode == 0 and groff.stderr == "", groff.stderr
    if shutil.which("mandoc"):
        lint = run(["mandoc", "-Tlint", "-W", "warning", str(src)])
        assert lint.returncode == 0 and lint.stdout == "", lint.stdout + lint.stderr
    rendered = run(["man", "-l", str(root / page)], env=dict(os.environ, MANWIDTH="80"))
    assert rendered.returncode == 0 and rendered.stderr == "", rendered.stderr
    text = re.sub(".\b", "", rendered.stdout)  # man's overstrike bold/underline
    assert "SEE ALSO" in text and "smime-milter" in text


def test_man_pages_cover_commands_and_keys(root):
    man8 = man_source(root, MAN8)
    for command in ("run", "sign", "check\\-config"):
        assert f".B {command}" in man8, command
    for section in ("EXIT STATUS", "SIGNALS", "HEADER FIELDS", "FILES"):
        assert f".SH {section}" in man8
    man5 = man_source(root, MAN5)
    keys = {"Socket", "SocketMode", "UserID", "PidFile", "Mode", "AuthservID", "InternalHosts",
            "CertificateDir", "SigningTable", "SenderMap", "TrustAnchors", "Digest", "OnError", "LogLevel"}
    example = REPO / "conf" / f"{NAME}.conf"
    if example.is_file():
        # Every key the annotated example documents ("## Key: ...") has an entry in the page.
        keys |= set(re.findall(r"^## (\w+):", example.read_text(), re.M))
    for key in sorted(keys):
        assert re.search(rf"^\.BI? {key}\b", man5, re.M), f"smime-milter.conf(5) does not describe {key}"


# --- lintian --------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("lintian") is None, reason="needs lintian")
def test_lintian_clean(deb):
    """Every tag lintian still reports is overridden, with the reason in packaging/LINTIAN.md."""
    res = run(["lintian", "--pedantic", "-E", "--suppress-tags", "running-with-root-privileges", str(deb)])
    tags = [l for l in res.stdout.splitlines() if re.match(r"^[EWIPXC]: ", l)]
    assert tags == [], "\n".join(tags)
    overridden = re.findall(r"^smime-milter: (\S+)", (REPO / "packaging/debian/lintian-overrides").read_text(), re.M)
    explained = (REPO / "packaging/LINTIAN.md").read_text()
    for tag in overridden:
        assert f"`{tag}" in explained, f"{tag} is overridden but not explained in LINTIAN.md"


# --- real installation (CI only) ------------------------------------------------------------

def installed_version():
    res = run(["dpkg-query", "-W", "-f=${Status}", NAME])
    return res.returncode == 0 and "installed" in res.stdout.split()[-1:]


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="installs on the machine: only with CI=true")
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_install_and_purge(deb):
    if installed_version():
        pytest.skip(f"{NAME} is already installed here; not touching it")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        res = run(["apt-get", "install", "-y", "--no-install-recommends", str(deb)], env=env)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        # Installing again (postinst runs again) must work: adduser is idempotent.
        res = run(["dpkg", "-i", str(deb)], env=env)
        assert res.returncode == 0, res.stderr
        user = run(["getent", "passwd", NAME]).stdout.split(":")
        assert user[0] == NAME and int(user[2]) < 1000, user
        assert run(["getent", "group", NAME]).returncode == 0
        certs = pathlib.Path("/", CERTS)
        st = certs.stat()
        assert stat.S_IMODE(st.st_mode) == 0o700
        assert st.st_uid == int(user[2])
        conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", NAME]).stdout
        assert f"/{CONF} " in conffiles
        assert pathlib.Path("/", UNIT).is_file() and pathlib.Path("/usr/sbin", NAME).is_file()
    finally:
        res = run(["apt-get", "purge", "-y", NAME], env=env)
    assert res.returncode == 0, res.stderr
    assert not installed_version()
    assert not pathlib.Path("/", CONF).exists(), "purge left the conffile"
    assert not pathlib.Path("/etc", NAME).exists(), "purge left an empty /etc/smime-milter"
    # The system user is kept on purge, as Debian packages do (see postrm).
    assert run(["getent", "passwd", NAME]).returncode == 0
