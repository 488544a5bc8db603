#!/usr/bin/env bash
# Build the Debian bookworm systemd image the Molecule scenarios run in, without any registry:
# debootstrap a minimal root file system and `podman import` it. Cached: nothing is done when the
# image already exists (set NFCT_REBUILD_IMAGE=1 to force a rebuild).
# Copyright (c) 2026, netfilter.conntrack contributors
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
IMAGE="${NFCT_MOLECULE_IMAGE:-localhost/netfilter-conntrack-debian:bookworm}"
MIRROR="${NFCT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PACKAGES="python3,iproute2,conntrack,nftables,procps,systemd,systemd-sysv,dbus"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$HERE/containers.conf}"

log() { printf '[build-image] %s\n' "$*" >&2; }

if [[ "${NFCT_REBUILD_IMAGE:-0}" != 1 ]] && podman image exists "$IMAGE"; then
    log "$IMAGE exists, nothing to build"
    exit 0
fi

command -v debootstrap >/dev/null || { log "debootstrap is missing: apt-get install -y debootstrap"; exit 1; }
ROOTFS="$(mktemp -d /var/tmp/nfct-rootfs.XXXXXX)"
trap 'rm -rf --one-file-system "$ROOTFS"' EXIT
log "debootstrap bookworm into $ROOTFS (a few minutes)"
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 || {
    tail -n 30 "$ROOTFS.log" >&2; rm -f "$ROOTFS.log"; exit 1; }
rm -f "$ROOTFS.log"
# Smaller image, quieter boot: no apt caches, no getty on a console that does not exist.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
ln -sf /dev/null "$ROOTFS/etc/systemd/system/getty@tty1.service" 2>/dev/null || true
log "podman import as $IMAGE"
tar -C "$ROOTFS" -c . | podman import \
    --change 'CMD ["/sbin/init"]' \
    --change 'ENV container=podman' \
    --change 'STOPSIGNAL SIGRTMIN+3' \
    - "$IMAGE" >/dev/null
log "done"
