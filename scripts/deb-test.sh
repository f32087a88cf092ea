#!/usr/bin/env bash
# The Debian package, proven the way a gateway receives it: built with a pinned cargo-deb from
# the aarch64 release binary (scripts/arm-test.sh aarch64 builds it), its contents listed and checked,
# lintian run (errors and warnings fail), then installed, reinstalled and purged with dpkg inside a
# throwaway Debian 12 root made by mmdebstrap from Debian's packages. Checked there: the service
# user (in dialout), the unit enabled, the conffile root:dockhand 0640, the state folder
# dockhand:dockhand 0750.
set -euo pipefail
cd "$(dirname "$0")/.."
T=aarch64-unknown-linux-gnu
if [ "$(id -u)" != 0 ]; then echo "deb-test needs root (mmdebstrap, mount and chroot)"; exit 1; fi
out=$(mktemp -d)
root=$(mktemp -d)
cleanup() {
  umount "$root/proc" 2>/dev/null || true
  rm -rf "$out" "$root"
}
trap cleanup EXIT
rm -f target/"$T"/debian/*.deb
scripts/package.sh "$T" >/dev/null
deb=$(ls target/"$T"/debian/*.deb)
echo "== $(basename "$deb"): contents"
dpkg-deb -c "$deb" | awk '{print $1, $2, $6}' | tee "$out/contents"
for path in ./usr/bin/dockhand ./etc/dockhand/dockhand.toml ./usr/lib/systemd/system/dockhand.service \
    ./usr/lib/sysusers.d/dockhand.conf ./usr/lib/tmpfiles.d/dockhand.conf \
    ./usr/share/doc/dockhand/DEVICES.md ./usr/share/doc/dockhand/CONTRACTS.md ./usr/share/doc/dockhand/README.md \
    ./usr/share/doc/dockhand/dockhand.example.toml ./usr/share/man/man1/dockhand.1.gz; do
  grep -q " ${path#./}\$\| $path\$" "$out/contents" || { echo "missing from the package: $path"; exit 1; }
done
echo "== lintian"
set +e
lintian --fail-on error,warning "$deb" 2>&1 | grep -v 'running with root privileges'
status=${PIPESTATUS[0]}
set -e
if [ "$status" != 0 ]; then echo "lintian found errors or warnings (exit $status)"; exit 1; fi
echo "== install into a throwaway Debian 12 root"
mmdebstrap --quiet --variant=essential --architectures=amd64,arm64 \
  --include=systemd,libc6:arm64,libgcc-s1:arm64 bookworm "$root"
mount -t proc proc "$root/proc"
cp "$deb" "$root/tmp/dockhand.deb"
in_root() { chroot "$root" "$@"; }
in_root dpkg -i /tmp/dockhand.deb
owner() { in_root stat -c '%U:%G %a' "$1"; }
check() { if [ "$2" != "$3" ]; then echo "$1: expected '$3', found '$2'"; exit 1; fi; echo "ok: $1 = $2"; }
check "service user" "$(in_root id -nG dockhand)" "dockhand dialout"
check "conffile" "$(owner /etc/dockhand/dockhand.toml)" "root:dockhand 640"
check "state folder" "$(owner /var/lib/dockhand)" "dockhand:dockhand 750"
check "unit enabled" "$(readlink "$root/etc/systemd/system/multi-user.target.wants/dockhand.service")" \
  "/lib/systemd/system/dockhand.service"
check "conffile registered" "$(in_root dpkg-query -W -f='${Conffiles}' dockhand | awk '{print $1}')" \
  "/etc/dockhand/dockhand.toml"
# An edited conffile survives an upgrade (reinstall) untouched.
echo '# edited by the technician' >> "$root/etc/dockhand/dockhand.toml"
in_root dpkg -i --force-confold /tmp/dockhand.deb >/dev/null
grep -q 'edited by the technician' "$root/etc/dockhand/dockhand.toml" || { echo "the upgrade replaced the edited config"; exit 1; }
check "conffile after upgrade" "$(owner /etc/dockhand/dockhand.toml)" "root:dockhand 640"
in_root dpkg --purge dockhand >/dev/null
[ ! -e "$root/etc/dockhand/dockhand.toml" ] || { echo "purge left the config"; exit 1; }
[ ! -e "$root/usr/bin/dockhand" ] || { echo "purge left the binary"; exit 1; }
echo "deb: built, lintian clean, installed, upgraded and purged in a Debian 12 root"
# The 32-bit package (Raspberry Pi OS armhf) is the same package around the armv7 binary
# (scripts/arm-test.sh armv7 builds it): built, its architecture checked, lintian clean.
A=armv7-unknown-linux-gnueabihf
rm -f target/"$A"/debian/*.deb
scripts/package.sh "$A" >/dev/null
armhf=$(ls target/"$A"/debian/*.deb)
check "armhf package architecture" "$(dpkg-deb -f "$armhf" Architecture)" "armhf"
set +e
lintian --fail-on error,warning "$armhf" 2>&1 | grep -v 'running with root privileges'
status=${PIPESTATUS[0]}
set -e
if [ "$status" != 0 ]; then echo "lintian found errors or warnings in $(basename "$armhf") (exit $status)"; exit 1; fi
echo "deb: $(basename "$armhf") built and lintian clean"
