#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# deb-build.sh: build the smime-milter binary package (.deb) from a staged tree
# with dpkg-deb, without debhelper. Run from anywhere; prints the .deb's path last.
#
# Environment:
#   DEB_OUT_DIR     where the .deb goes (default: <repo>/dist)
#   DEB_BINARY      a release binary to package instead of building one
#                   (it must be linked with --static-swift-stdlib)
#   DEB_ALLOW_DYNAMIC_SWIFT=1  package a binary that needs the Swift runtime anyway
#   SWIFT           the swift driver (default: swift)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pkg=$repo/packaging
out=${DEB_OUT_DIR:-$repo/dist}
name=smime-milter

die() { echo "deb-build: $*" >&2; exit 1; }
for tool in dpkg-deb dpkg-parsechangelog dpkg-shlibdeps gzip strip ldd; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install dpkg-dev binutils)"
done

# 1. The binary: release build with the Swift runtime linked in, so that the
#    package does not depend on a toolchain under /opt.
bin=${DEB_BINARY:-}
if [ -z "$bin" ]; then
    # -z now with -z relro (the default) makes the GOT read-only (lintian: hardening-no-bindnow).
    (cd "$repo" && ${SWIFT:-swift} build -c release --static-swift-stdlib --product "$name" \
        -Xlinker -z -Xlinker now >&2)
    bin=$repo/.build/release/$name
fi
[ -x "$bin" ] || die "no executable at $bin"
swift_libs=$(ldd "$bin" | grep -E 'not found|libswift|libFoundation|lib_Foundation|libdispatch|libBlocksRuntime|/opt/' || true)
if [ -n "$swift_libs" ] && [ "${DEB_ALLOW_DYNAMIC_SWIFT:-0}" != 1 ]; then
    die "$bin needs libraries a Debian system does not have (build with --static-swift-stdlib):
$swift_libs"
fi

version=$(dpkg-parsechangelog -l "$pkg/debian/changelog" -S Version)
arch=$(dpkg --print-architecture)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
doc=$root/usr/share/doc/$name

# 2. The staged tree. Directories 0755, files 0644, programs 0755; dpkg-deb
#    --root-owner-group makes everything root:root; postinst hands certs/ to
#    the service user.
umask 022
install -d "$root/usr/sbin" "$root/etc/$name" "$root/lib/systemd/system" \
    "$root/usr/share/man/man8" "$root/usr/share/man/man5" "$doc/examples" \
    "$root/usr/share/lintian/overrides" "$root/DEBIAN"
install -d -m 0700 "$root/etc/$name/certs"
install -m 0755 "$bin" "$root/usr/sbin/$name"
# As dh_strip does: no symbol tables, no .comment/.note sections.
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/sbin/$name"

# The annotated configuration from conf/ (fallback: packaging/). The example
# tables in conf/ name example addresses and identities: they go to examples/,
# and the packaged configuration does not point at them until the admin says so.
if [ -f "$repo/conf/$name.conf" ]; then
    sed -E 's/^(SigningTable|SenderMap)([[:space:]])/#\1\2/' "$repo/conf/$name.conf" > "$root/etc/$name/$name.conf"
    for f in signing.table sender.map internal-hosts require-signature; do
        [ -f "$repo/conf/$f" ] && install -m 0644 "$repo/conf/$f" "$doc/examples/$f"
    done
else
    install -m 0644 "$pkg/$name.conf.fallback" "$root/etc/$name/$name.conf"
fi
chmod 0644 "$root/etc/$name/$name.conf"

install -m 0644 "$pkg/systemd/$name.service" "$root/lib/systemd/system/$name.service"
install -m 0644 "$pkg/systemd/$name-renew.service" "$pkg/systemd/$name-renew.timer" "$root/lib/systemd/system/"
install -m 0644 "$pkg/examples/postfix-chroot.conf" "$pkg/examples/postfix-chroot.tmpfiles" "$doc/examples/"
gzip -9n -c "$repo/docs/man/$name.8" > "$root/usr/share/man/man8/$name.8.gz"
gzip -9n -c "$repo/docs/man/$name.conf.5" > "$root/usr/share/man/man5/$name.conf.5.gz"
install -m 0644 "$pkg/debian/copyright" "$doc/copyright"
gzip -9n -c "$pkg/debian/changelog" > "$doc/changelog.Debian.gz"
for f in operations.md sendmail.md hsm.md encryption.md security.md lifecycle.md; do
    [ -f "$repo/docs/$f" ] && install -m 0644 "$repo/docs/$f" "$doc/$f"
done
install -m 0644 "$pkg/debian/lintian-overrides" "$root/usr/share/lintian/overrides/$name"
chmod 0644 "$doc"/*.gz "$root"/usr/share/man/man*/*.gz

# 3. Control files. Depends: what dpkg-shlibdeps finds for the binary, plus
#    adduser for postinst.
install -m 0755 "$pkg/debian/postinst" "$pkg/debian/prerm" "$pkg/debian/postrm" "$root/DEBIAN/"
install -m 0644 "$pkg/debian/conffiles" "$root/DEBIAN/conffiles"
mkdir -p "$work/src/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$name" "$name" > "$work/src/debian/control"
shlibs=$(cd "$work/src" && dpkg-shlibdeps -O "$root/usr/sbin/$name" | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no dependencies"
depends="adduser, $shlibs"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$size/" \
    -e "s/@DEPENDS@/$depends/" "$pkg/debian/control" > "$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z \
    | xargs -0 md5sum > DEBIAN/md5sums)
chmod 0644 "$root/DEBIAN/md5sums"

mkdir -p "$out"
deb=$out/${name}_${version}_${arch}.deb
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(dpkg-parsechangelog -l "$pkg/debian/changelog" -S Timestamp)} \
    dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
echo "$deb"
