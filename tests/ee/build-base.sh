#!/usr/bin/env bash
# The execution environment's base image, without any registry (issue 18): Debian bookworm made with debootstrap
# and `podman import`, prepared for ansible-builder 3:
#   - a venv at /opt/ee-python (Debian disables ensurepip for the system Python; ansible-builder's pip_install
#     runs `$PYCMD -m ensurepip`, which a venv's Python allows), first on PATH;
#   - /usr/local/bin/apt-pkgmgr, the package manager ansible-builder calls (`install -y PKGS`, `clean all`) for
#     bindep's packages, on top of apt-get;
#   - this machine's extra CA certificates (/usr/local/share/ca-certificates), so that pip and apt inside the
#     build reach PyPI and Debian through an intercepting egress proxy; PIP_CERT points at the bundle.
#   - openssh-client: the EE reaches its targets with the ssh connection.
# Cached: nothing is done when the image exists (NFCT_REBUILD_IMAGE=1 forces a rebuild).
# Copyright (c) 2026, netfilter.conntrack contributors
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
IMAGE="${NFCT_EE_BASE_IMAGE:-localhost/netfilter-conntrack-ee-base:bookworm}"
MIRROR="${NFCT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PACKAGES="python3,python3-venv,ca-certificates,openssh-client"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$ROOT/extensions/molecule/containers.conf}"

log() { printf '[ee-base] %s\n' "$*" >&2; }

if [[ "${NFCT_REBUILD_IMAGE:-0}" != 1 ]] && podman image exists "$IMAGE"; then
    log "$IMAGE exists, nothing to build"
    exit 0
fi
command -v debootstrap >/dev/null || { log "debootstrap is missing: apt-get install -y debootstrap"; exit 1; }
ROOTFS="$(mktemp -d /var/tmp/nfct-ee-rootfs.XXXXXX)"
trap 'rm -rf --one-file-system "$ROOTFS" "$ROOTFS.log"' EXIT
log "debootstrap bookworm into $ROOTFS (a few minutes)"
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 || {
    tail -n 30 "$ROOTFS.log" >&2; exit 1; }
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
fi
chroot "$ROOTFS" update-ca-certificates >/dev/null
chroot "$ROOTFS" python3 -m venv /opt/ee-python
cat >"$ROOTFS/usr/local/bin/apt-pkgmgr" <<'WRAPPER'
#!/bin/sh
# ansible-builder's package manager interface (dnf-like) on top of apt-get.
set -e
export DEBIAN_FRONTEND=noninteractive
command=$1
shift
case "$command" in
install)
    packages=""
    for arg in "$@"; do case "$arg" in -*) ;; *) packages="$packages $arg" ;; esac; done
    [ -n "$packages" ] || exit 0
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $packages ;;
clean)
    apt-get clean
    rm -rf /var/lib/apt/lists/* ;;
*)
    echo "apt-pkgmgr: unsupported command $command" >&2
    exit 2 ;;
esac
WRAPPER
chmod 0755 "$ROOTFS/usr/local/bin/apt-pkgmgr"
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
log "podman import as $IMAGE"
tar -C "$ROOTFS" -c . | podman import \
    --change 'ENV PATH=/opt/ee-python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    - "$IMAGE" >/dev/null
log "done"
