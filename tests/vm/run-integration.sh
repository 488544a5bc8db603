#!/usr/bin/env bash
# Run integration targets inside a real-kernel qemu guest (see tests/vm/README.md).
#
# Usage: run-integration.sh KERNEL TARGET...
#
# KERNEL is what tests/vm/vm.sh accepts (linux-image-6.1.0-56-amd64, or an alias
# such as 6.1).  Each TARGET is a directory under tests/integration/targets/;
# it is run as a role (like ansible-test does) against the guest, one
# ansible-playbook run per target, with a snapshot of this checkout installed
# as the netfilter.conntrack collection.  The guest is stopped in every case.
# Exit status: 0 when every target passed, 1 otherwise, 2 for usage errors.
#
# Environment: ANSIBLE_PLAYBOOK (default: ansible-playbook on PATH),
# NFCT_RUN_VERBOSITY (e.g. -v), plus everything vm.sh reads.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
readonly SCRIPT_DIR REPO_ROOT
readonly PLAYBOOK_CMD="${ANSIBLE_PLAYBOOK:-ansible-playbook}"

log() { printf '[run-integration] %s\n' "$*" >&2; }

if (($# < 2)); then
    sed -n '2,14s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    exit 2
fi
kernel="$1"
shift
targets=("$@")

for target in "${targets[@]}"; do
    if [[ ! "$target" =~ ^[A-Za-z0-9_.-]+$ || ! -f "$REPO_ROOT/tests/integration/targets/$target/tasks/main.yml" ]]; then
        log "no integration target '$target' (expected tests/integration/targets/$target/tasks/main.yml)"
        exit 2
    fi
done
command -v "$PLAYBOOK_CMD" >/dev/null 2>&1 || { log "$PLAYBOOK_CMD not found (set ANSIBLE_PLAYBOOK)"; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/nfct-vm-it.XXXXXX")"
VM=""
vm_started=""
cleanup() {
    local rc=$?
    if [[ -n "$vm_started" ]]; then
        "$VM" stop "$kernel" || log "stopping the guest failed"
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A snapshot, so that edits made while the guest runs do not mix into the run.
collection="$work/ansible_collections/netfilter/conntrack"
mkdir -p "$collection"
tar -C "$REPO_ROOT" --exclude=./.git --exclude=./tests/output -cf - . | tar -C "$collection" -xf -
# bash reads a script while running it: use the snapshot's vm.sh too.
VM="$collection/tests/vm/vm.sh"
bash -n "$VM" || { log "$VM has a syntax error"; exit 1; }

start=$SECONDS
vm_started=1
inventory="$("$VM" start "$kernel" | tail -n 1)"
[[ -f "$inventory" ]] || { log "vm.sh start did not print an inventory path (got '$inventory')"; exit 1; }
log "guest up in $((SECONDS - start)) s; inventory $inventory"

export ANSIBLE_COLLECTIONS_PATH="$work"
export ANSIBLE_ROLES_PATH="$collection/tests/integration/targets"
export ANSIBLE_HOST_KEY_CHECKING=False
export ANSIBLE_RETRY_FILES_ENABLED=False
export ANSIBLE_NOCOLOR=1

failed=()
for target in "${targets[@]}"; do
    playbook="$work/run-$target.yml"
    cat >"$playbook" <<PLAY
---
- name: Integration target $target
  hosts: nfct_vms
  gather_facts: false
  tasks:
    - name: Run target $target
      ansible.builtin.include_role:
        name: $target
PLAY
    t0=$SECONDS
    log "running $target"
    # shellcheck disable=SC2086 # NFCT_RUN_VERBOSITY may hold several flags
    if "$PLAYBOOK_CMD" -i "$inventory" ${NFCT_RUN_VERBOSITY:-} "$playbook"; then
        log "PASS $target ($((SECONDS - t0)) s)"
    else
        log "FAIL $target ($((SECONDS - t0)) s)"
        failed+=("$target")
    fi
done

log "total $((SECONDS - start)) s; ${#targets[@]} target(s), ${#failed[@]} failed${failed[*]:+: ${failed[*]}}"
((${#failed[@]} == 0))
