#!/usr/bin/env bash
# Run tests/vm/playbooks/window_sites.yml in a real-kernel guest (default 5.10) and stop the guest.
#   tests/vm/window-sites.sh [KERNEL]
# Environment: ANSIBLE_PLAYBOOK (default: ansible-playbook on PATH), plus everything vm.sh reads.
set -euo pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
kernel="${1:-5.10}"
work="$(mktemp -d "${TMPDIR:-/tmp}/nfct-vm-sites.XXXXXX")"
started=""
cleanup() {
    local rc=$?
    [[ -z "$started" ]] || "$work/ansible_collections/netfilter/conntrack/tests/vm/vm.sh" stop "$kernel" || true
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
collection="$work/ansible_collections/netfilter/conntrack"
mkdir -p "$collection"
tar -C "$REPO_ROOT" --exclude=./.git --exclude=./tests/output -cf - . | tar -C "$collection" -xf -
inventory="$("$collection/tests/vm/vm.sh" start "$kernel")"
started=1
ANSIBLE_COLLECTIONS_PATH="$work" ANSIBLE_HOST_KEY_CHECKING=False \
    "${ANSIBLE_PLAYBOOK:-ansible-playbook}" -i "$inventory" "$collection/tests/vm/playbooks/window_sites.yml"
