#!/usr/bin/env bash
# Build the execution environment of tests/ee/execution-environment.yml with ansible-builder (issue 18): the
# collection's release tarball (ansible-galaxy collection build of this checkout) installed through the EE's
# galaxy requirements, on the Debian base of tests/ee/build-base.sh.
#   tests/ee/build.sh            # tags localhost/netfilter-conntrack-ee:<galaxy.yml version>, prints the tag
# Environment: NFCT_EE_IMAGE (the tag), ANSIBLE_BUILDER (default: the venv-ee's, else PATH).
# Copyright (c) 2026, netfilter.conntrack contributors
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${NFCT_CACHE_DIR:-$HOME/.cache/netfilter-conntrack}"
VERSION="$(sed -n 's/^version: *//p' "$ROOT/galaxy.yml")"
IMAGE="${NFCT_EE_IMAGE:-localhost/netfilter-conntrack-ee:$VERSION}"
BUILDER="${ANSIBLE_BUILDER:-$(command -v "$CACHE/venv-ee/bin/ansible-builder" || command -v ansible-builder)}"
GALAXY="$(command -v "$CACHE/venv-2.19/bin/ansible-galaxy" || command -v ansible-galaxy)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$ROOT/extensions/molecule/containers.conf}"

log() { printf '[ee-build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

"$HERE/build-base.sh"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/nfct-ee-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
# The tarball from the files git tracks (a clean clone builds the same), as `ansible-galaxy collection build` does.
mkdir -p "$WORK/src" "$WORK/def/collections"
git -C "$ROOT" ls-files -z | tar -C "$ROOT" --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -C "$WORK/src" -xf -
"$GALAXY" collection build "$WORK/src" --output-path "$WORK" >/dev/null
cp "$WORK"/netfilter-conntrack-"$VERSION".tar.gz "$WORK/def/collections/netfilter-conntrack.tar.gz"
cp "$HERE/execution-environment.yml" "$WORK/def/"
log "ansible-builder build -t $IMAGE (collection tarball netfilter-conntrack-$VERSION.tar.gz)"
T0=$(date +%s)
if ! "$BUILDER" build -f "$WORK/def/execution-environment.yml" -c "$WORK/context" -t "$IMAGE" \
    --container-runtime podman -v 2 >"$WORK/build.log" 2>&1; then
    tail -n 60 "$WORK/build.log" >&2
    exit 1
fi
log "built $IMAGE in $(($(date +%s) - T0)) s"
podman run --rm "$IMAGE" ansible-galaxy collection list netfilter.conntrack 2>/dev/null | grep -E '^netfilter\.conntrack ' >&2
echo "$IMAGE"
