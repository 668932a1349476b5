#!/usr/bin/env bash
# Build (once) the root filesystem tarballs the role tests boot with systemd-nspawn:
#   .cache/hosts/debian-bookworm.tar.zst  debootstrap'ed Debian 12 with systemd, sshd, python3 and gpg (deb flavour)
#   .cache/hosts/rpm-dnf.tar.zst          the same plus Debian's rpm and dnf, with an Amazon Linux 2023 os-release:
#                                          it drives the role's RedHat-family branch; it is NOT Amazon Linux.
# Usage: tests/hosts/build-rootfs.sh [debian|rpm|all]   (a tarball that exists is kept; delete it to rebuild)
# Needs root, debootstrap and zstd, and Debian's mirror (the one configured in /etc/apt/sources.list.d).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${FLEETPATCH_HOSTS_CACHE:-$here/../../.cache/hosts}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
# What a test host needs: systemd as PID 1, sshd for Ansible, python3 (+ python3-apt: the host has no network to
# fetch it later), gpg to verify the agent's signature, and a few tools the role or the tests call.
packages=python3,python3-apt,systemd,systemd-sysv,dbus,openssh-server,sudo,iproute2,ca-certificates,gpg,curl,procps

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

# The test user's SSH key, baked into every image (private key stays in the cache, next to the tarballs).
ssh_key() {
    [ -f "$cache/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C fleetpatch-test-hosts -f "$cache/id_ed25519"
}

pack() {  # pack <rootfs dir> <tarball>: write atomically so an interrupted build never leaves a half tarball
    tar -C "$1" --numeric-owner -cf - . | zstd -q -T0 -3 -o "$2.partial" && mv "$2.partial" "$2"
}

configure_debian() {  # configure_debian <rootfs>: what every image shares
    local root=$1
    install -d -m 700 "$root/root/.ssh"
    install -m 600 "$cache/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
    echo fleetpatch-host > "$root/etc/hostname"
    # sshd keys are generated at first boot by the package's postinst only once: make them per image build.
    rm -f "$root"/etc/ssh/ssh_host_*
    chroot "$root" ssh-keygen -A >/dev/null
    printf 'PermitRootLogin prohibit-password\nUseDNS no\n' > "$root/etc/ssh/sshd_config.d/fleetpatch-test.conf"
    # Units that make no sense in a container without network or consoles.
    chroot "$root" systemctl mask -q getty@tty1.service systemd-networkd-wait-online.service apt-daily.timer \
        apt-daily-upgrade.timer 2>/dev/null || true
    echo 'root:fleetpatch' | chroot "$root" chpasswd
}

build_debian() {
    local out=$cache/debian-bookworm.tar.zst root
    [ -f "$out" ] && { echo "kept $out"; return; }
    root=$(mktemp -d "$cache/build.XXXXXX")
    trap 'rm -rf "$root"' RETURN
    echo "debootstrap $suite (~60 s) -> $out"
    debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" >"$root.log" 2>&1 \
        || { tail -20 "$root.log"; exit 1; }
    rm -f "$root.log"
    configure_debian "$root"
    chroot "$root" apt-get clean
    pack "$root" "$out"
}

userland_provides_rpm() {  # userland_provides_rpm <dir>: an empty rpm that declares what Debian installed
    local top
    top=$(mktemp -d)
    install -d "$top/SPECS"
    cat > "$top/SPECS/userland.spec" <<'SPEC'
Name: fleetpatch-debian-userland
Version: 12
Release: 1
Summary: The Debian userland of the fleetpatch rpm test flavour, declared to rpm
License: MIT
BuildArch: noarch
Provides: /bin/sh /bin/bash /usr/bin/python3 python3 systemd coreutils bash
%description
Declares the files and capabilities the Debian packages of this test image provide.
%files
SPEC
    rpmbuild --quiet --define "_topdir $top" -bb "$top/SPECS/userland.spec" >/dev/null 2>&1
    cp "$top"/RPMS/noarch/fleetpatch-debian-userland-*.rpm "$1/fleetpatch-debian-userland.rpm"
    rm -rf "$top"
}

build_rpm() {
    local out=$cache/rpm-dnf.tar.zst base=$cache/debian-bookworm.tar.zst root
    [ -f "$out" ] && { echo "kept $out"; return; }
    build_debian
    root=$(mktemp -d "$cache/build.XXXXXX")
    trap 'umount -q "$root/proc" 2>/dev/null || true; rm -rf "$root"' RETURN
    echo "rpm/dnf flavour (Debian's rpm + dnf, Amazon Linux os-release) -> $out"
    zstd -q -dc "$base" | tar -C "$root" -xf -
    mount -t proc proc "$root/proc"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get -qq update
    chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends \
        rpm dnf python3-dnf >/dev/null
    chroot "$root" apt-get clean
    rm -rf "$root"/var/lib/apt/lists/*
    umount "$root/proc"
    # Ansible's facts: ID=amzn -> distribution Amazon, os_family RedHat, package manager dnf.
    rm -f "$root/etc/os-release" "$root/usr/lib/os-release"
    cat > "$root/usr/lib/os-release" <<'EOF'
NAME="Amazon Linux"
VERSION="2023"
ID="amzn"
ID_LIKE="fedora"
VERSION_ID="2023"
PLATFORM_ID="platform:al2023"
PRETTY_NAME="Amazon Linux 2023 (fleetpatch test flavour: Debian userland with rpm and dnf)"
ANSI_COLOR="0;33"
HOME_URL="https://aws.amazon.com/linux/amazon-linux-2023/"
EOF
    ln -s ../usr/lib/os-release "$root/etc/os-release"
    echo "Amazon Linux release 2023 (fleetpatch test flavour)" > "$root/etc/system-release"
    # An rpm database that knows the Debian userland underneath, as a real Amazon Linux rpmdb would: packages
    # whose scriptlets need /bin/sh (or that need systemd, python3) then install with dnf.
    chroot "$root" rpm --initdb
    userland_provides_rpm "$root/tmp"
    chroot "$root" rpm --install --justdb --nodeps /tmp/fleetpatch-debian-userland.rpm
    rm -f "$root/tmp/fleetpatch-debian-userland.rpm"
    install -d "$root/etc/dnf/vars"
    echo 2023 > "$root/etc/dnf/vars/releasever"
    pack "$root" "$out"
}

ssh_key
case ${1:-all} in
    debian) build_debian ;;
    rpm) build_rpm ;;
    all) build_debian; build_rpm ;;
    *) echo "usage: $0 [debian|rpm|all]" >&2; exit 2 ;;
esac
