#!/usr/bin/env bash
# The Molecule image (extensions/molecule/build-image.sh) plus Debian's openssh-server, for the fleet benchmark's
# ssh transport (bench/fleet/run.sh with NFCT_FLEET_TRANSPORTS containing "ssh"). No key is baked in: run.sh
# installs a key made for the run when it starts the containers. Cached: nothing is done when the image exists
# (NFCT_REBUILD_IMAGE=1 forces a rebuild).
# Copyright (c) 2026, netfilter.conntrack contributors
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BASE="${NFCT_MOLECULE_IMAGE:-localhost/netfilter-conntrack-debian:bookworm}"
IMAGE="${NFCT_SSHD_IMAGE:-localhost/netfilter-conntrack-debian-sshd:bookworm}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$ROOT/extensions/molecule/containers.conf}"

log() { printf '[build-sshd-image] %s\n' "$*" >&2; }

if [[ "${NFCT_REBUILD_IMAGE:-0}" != 1 ]] && podman image exists "$IMAGE"; then
    log "$IMAGE exists, nothing to build"
    exit 0
fi
"$ROOT/extensions/molecule/build-image.sh"
CTX="$(mktemp -d)"
trap 'rm -rf "$CTX"' EXIT
# Root logs in with a key only (Debian's default PermitRootLogin prohibit-password); no DNS lookups, no PAM
# session modules that would slow every connection down.
cat >"$CTX/Containerfile" <<CONTAINERFILE
FROM $BASE
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openssh-server \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \\
 && printf 'UseDNS no\nPasswordAuthentication no\nPermitRootLogin prohibit-password\nMaxStartups 100:30:200\nMaxSessions 100\n' >/etc/ssh/sshd_config.d/bench.conf \\
 && systemctl enable ssh.service
CMD ["/sbin/init"]
CONTAINERFILE
log "podman build $IMAGE from $BASE"
podman build -q -t "$IMAGE" "$CTX" >/dev/null
log "done"
