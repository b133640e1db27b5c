# SPDX-License-Identifier: Apache-2.0
"""pytest fixtures for the real-Postfix integration tests (see rig.py).

Environment:
  SMIME_MILTER_BIN   the smime-milter binary (default: .build/release, then .build/debug).
                     If it is set but does not exist the signing tests fail; if it is unset and
                     nothing is built they are skipped with a message saying so.
  SMIME_RIG_KEEP=1   keep each rig's temporary directory (its path is printed) for debugging.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rig as rigmod  # noqa: E402

KEEP = os.environ.get("SMIME_RIG_KEEP") == "1"


def _require_tools():
    missing = [t for t in ("postfix", "postconf", "postqueue", "smtp-sink", "swaks", "saslpasswd2", "openssl")
               if not any((Path(d) / t).exists() for d in os.environ.get("PATH", "").split(":") + ["/usr/sbin"])]
    if missing:
        pytest.fail(f"missing tools {missing}: run scripts/install-deps.sh")
    if os.geteuid() != 0:
        pytest.skip("the Postfix rig needs root (it starts a private Postfix instance)")


@pytest.fixture(scope="session")
def milter_bin() -> Path:
    explicit = os.environ.get("SMIME_MILTER_BIN")
    path = rigmod.milter_binary()
    if explicit:
        if not (path and path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(f"SMIME_MILTER_BIN={explicit} is not an executable file")
        return path
    if path is None:
        pytest.skip("smime-milter is not built (swift build -c release), and SMIME_MILTER_BIN is not set")
    return path


def _start(request, **kwargs) -> rigmod.Rig:
    _require_tools()
    r = rigmod.Rig(**kwargs)
    r.start()
    request.node._rig = r
    if KEEP:
        print(f"\nrig directory kept: {r.root}")
    request.addfinalizer(lambda: r.stop(keep=KEEP))
    return r


@pytest.fixture(scope="module")
def plain_rig(request) -> rigmod.Rig:
    """Postfix with no milter: proves the rig itself."""
    return _start(request)


@pytest.fixture(scope="module")
def dead_milter_rig(request) -> rigmod.Rig:
    """Postfix pointed at a milter socket where nothing listens."""
    return _start(request, dead_milter=True)


@pytest.fixture(scope="module")
def signing_rig(request, milter_bin) -> rigmod.Rig:
    """Postfix + smime-milter with the default test configuration (rig.MilterSettings())."""
    return _start(request, milter_bin=milter_bin)


@pytest.fixture
def rcpt(request) -> str:
    """A recipient address unique to the test, so tests sharing a rig find their own mail."""
    import hashlib
    name = request.node.name.replace("[", "-").replace("]", "").replace("_", "-").lower()
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:6]
    return f"{name[5:40].strip('-')}-{digest}@{rigmod.SINK_DOMAIN}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, append the rig's Postfix and milter logs to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for name in ("plain_rig", "dead_milter_rig", "signing_rig", "verify_rig", "broken_rig"):
            r = item.funcargs.get(name) if hasattr(item, "funcargs") else None
            if r is not None:
                report.sections.append((f"{name} logs", r.diagnostics()))
