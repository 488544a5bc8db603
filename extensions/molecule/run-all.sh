#!/usr/bin/env bash
# Run every Molecule scenario of the collection in podman containers (CI entry point).
#   extensions/molecule/run-all.sh [SCENARIO...]      default: all scenarios
# Needs: podman, runc, debootstrap (apt) and a Python with molecule, molecule-plugins[podman] and the
# ansible package (for containers.podman). Set NFCT_PYTHON_BIN to the bin directory of that Python
# (default: the one molecule is found in). Prints one line per scenario with its time; exit 1 if any failed.
# Copyright (c) 2026, netfilter.conntrack contributors
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SCENARIOS=(full_cycle auto_revert timer_lost no_systemd second_enable enable_failure fleet upgrade interpreter)
[[ $# -gt 0 ]] && SCENARIOS=("$@")

if [[ -n "${NFCT_PYTHON_BIN:-}" ]]; then export PATH="$NFCT_PYTHON_BIN:$PATH"; fi
command -v molecule >/dev/null || { echo "molecule not found (set NFCT_PYTHON_BIN)" >&2; exit 1; }

export CONTAINERS_CONF="$HERE/containers.conf"
"$HERE/build-image.sh"

# The collection must be importable as netfilter.conntrack whatever the checkout is called.
COLLECTIONS="$(mktemp -d "${TMPDIR:-/tmp}/nfct-molecule.XXXXXX")"
trap 'rm -rf "$COLLECTIONS"' EXIT
mkdir -p "$COLLECTIONS/ansible_collections/netfilter"
ln -s "$ROOT" "$COLLECTIONS/ansible_collections/netfilter/conntrack"
export NFCT_COLLECTIONS_PATH="$COLLECTIONS"
export ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS"
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 ANSIBLE_NOCOLOR=1

cd "$ROOT"
failed=()
summary=()
for scenario in "${SCENARIOS[@]}"; do
    start=$(date +%s)
    if molecule test -s "$scenario"; then status=passed; else status=FAILED; failed+=("$scenario"); fi
    summary+=("$(printf '%-16s %-7s %4ss' "$scenario" "$status" "$(( $(date +%s) - start ))")")
done
printf '%s\n' "--- molecule scenarios ---" "${summary[@]}"
# Never leave a container behind, even after a failure in destroy.
podman ps -a --filter label=owner=molecule --format '{{.Names}}' | grep -E '^nfct-' | xargs -r podman rm -f -t 0 >/dev/null || true
[[ ${#failed[@]} -eq 0 ]] || { echo "failed: ${failed[*]}" >&2; exit 1; }
