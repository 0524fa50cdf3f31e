#!/usr/bin/env bash
# Build (or reuse) a test-host image that looks like a stock Debian cloud VM:
# systemd as PID 1, python3, sudo, openssh-server, ca-certificates and an
# `admin` sudo user with key-only login, as on Debian's EC2 images. Nothing a
# flaskstack role installs is in it. Images are built offline from Debian's
# archive with debootstrap (its default mirror) and `docker import`ed; the tag
# carries a hash of this recipe, so an image is rebuilt only when it changes.
#
# usage: image.sh SUITE        prints the image reference on stdout
set -euo pipefail

suite=${1:?usage: image.sh SUITE (bookworm|trixie)}
here=$(cd "$(dirname "$0")" && pwd)
recipe_hash=$(sha256sum "$here/image.sh" | cut -c1-12)
image="flaskstack-testhost:${suite}-${recipe_hash}"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi

# Packages of a stock cloud image that our roles rely on being present.
include=systemd,systemd-sysv,dbus,python3,sudo,openssh-server,ca-certificates,iproute2,apt-utils,procps

root=$(mktemp -d /var/tmp/flaskstack-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT

echo "building $image with debootstrap (this takes about a minute)" >&2
debootstrap --variant=minbase --include="$include" "$suite" "$root" >&2

# Cloud images track the point-release, updates and security archives; derive
# their URLs from the mirror debootstrap used instead of naming a host here.
mirror=$(awk '$1 == "deb" { print $2; exit }' "$root/etc/apt/sources.list")
cat > "$root/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb ${mirror%/debian}/debian-security $suite-security main
SOURCES

chroot "$root" /bin/sh -eu <<'SETUP'
# The cloud-init default user: unprivileged, passwordless sudo, key-only SSH.
useradd --create-home --shell /bin/bash --groups sudo admin
passwd --lock admin
echo 'admin ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-cloud-init-users
chmod 0440 /etc/sudoers.d/90-cloud-init-users
install -d -m 0700 -o admin -g admin /home/admin/.ssh
# A container has no consoles or udev to wait for.
systemctl mask getty@tty1.service serial-getty@console.service \
  systemd-udevd.service systemd-udev-trigger.service systemd-modules-load.service \
  sys-kernel-config.mount sys-kernel-debug.mount >/dev/null 2>&1 || true
systemctl enable ssh.service >/dev/null 2>&1 || true
# Host keys are made at first boot, as on a cloud image.
rm -f /etc/ssh/ssh_host_*
cat > /etc/systemd/system/ssh-keygen-first-boot.service <<UNIT
[Unit]
Description=Generate SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
systemctl enable ssh-keygen-first-boot.service >/dev/null 2>&1
echo localhost > /etc/hostname
: > /etc/machine-id
apt-get clean
rm -rf /var/lib/apt/lists/*
SETUP

tar -C "$root" -c . | docker import \
  --change 'CMD ["/lib/systemd/systemd"]' \
  --change 'ENV container=docker' \
  - "$image" >&2
echo "$image"
