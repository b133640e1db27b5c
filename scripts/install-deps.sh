#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install what building, testing and demonstrating smime-milter needs on Debian 12.
# Idempotent: installs only what is missing (apt-get update only then). Non-interactive
# (works with CI=true and no stdin). Run as root. The Swift toolchain is not a Debian package:
# it is checked for and reported, not installed.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
    # build
    libmilter-dev libssl-dev pkg-config make
    # the recipient certificate store (GRDB builds against the system SQLite)
    libsqlite3-dev
    # the shared store for several gateways (libpq) and a real PostgreSQL 15 for test_cluster.py
    libpq-dev postgresql
    # the real-Postfix integration tests and the demo
    postfix swaks libauthen-sasl-perl libio-socket-inet6-perl
    sasl2-bin libsasl2-modules libsasl2-modules-db
    openssl python3 python3-pip
    # protocol-level tests and the other verifiers (NSS cmsutil, GnuPG gpgsm)
    miltertest libnss3-tools gpgsm
    # Bouncy Castle (Java): a further verifier of header-protected signatures, and it decrypts
    # what NSS and gpgsm cannot (AES-GCM, RSA-OAEP, ECDH) in the encryption tests
    libbcpkix-java default-jdk-headless
    # a real disclaimer milter before ours (broken client signatures, test_postfix_broken.py)
    mimedefang
    # tools that break signatures, for the diagnosis tests (reformime is in maildrop)
    maildrop altermime
    # a mailing list that re-posts signed mail with its footer (test_list_injectors.py)
    mailman3
    # the Debian package, its lint, unit check and man pages; the Sendmail rig (m4, libwrap0)
    dpkg-dev binutils lintian mandoc man-db groff-base systemd m4 libwrap0
    # keys on a PKCS#11 token: SoftHSM2, OpenSSL's pkcs11 engine (libp11), pkcs11-tool
    softhsm2 libengine-pkcs11-openssl opensc libp11-kit-dev
    # identities from the directory: OpenLDAP's client library, and a private slapd for the tests
    libldap-dev slapd ldap-utils
)

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
    command -v sudo >/dev/null || { echo "install-deps: run as root (or install sudo)" >&2; exit 1; }
else
    SUDO=
fi

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    # Postfix asks what kind of mail server this is; answer before it asks.
    echo "postfix postfix/main_mailer_type select Local only" | $SUDO debconf-set-selections
    echo "postfix postfix/mailname string $(hostname -f 2>/dev/null || hostname)" | $SUDO debconf-set-selections
    # slapd: no system directory is configured, so the package starts no daemon; the tests run
    # their own slapd with a private configuration on a loopback port.
    echo "slapd slapd/no_configuration boolean true" | $SUDO debconf-set-selections
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q < /dev/null
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" < /dev/null
else
    echo "install-deps: system packages already installed"
fi

# Python modules for the tests and the test PKI: pip only when missing (module:package;
# pytest-xdist runs the integration test files on two workers).
py_missing=()
for mp in pytest:pytest xdist:pytest-xdist cryptography:cryptography; do
    python3 -c "import ${mp%%:*}" 2>/dev/null || py_missing+=("${mp#*:}")
done
if [ "${#py_missing[@]}" -gt 0 ]; then
    echo "install-deps: pip installing ${py_missing[*]}"
    # Debian's own python3 is "externally managed" (PEP 668): pip then needs the override.
    python3 -m pip install -q "${py_missing[@]}" < /dev/null \
        || python3 -m pip install -q --break-system-packages "${py_missing[@]}" < /dev/null
else
    echo "install-deps: pytest, pytest-xdist and cryptography already available"
fi

if ! command -v swift >/dev/null; then
    echo "install-deps: warning: no 'swift' on PATH; building needs the Swift 6 toolchain from swift.org" >&2
fi
