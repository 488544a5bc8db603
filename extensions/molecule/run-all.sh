#!/usr/bin/env bash
# Run every Molecule scenario of the collection in podman containers (CI entry point).
#   extensions/molecule/run-all.sh [SCENARIO...]      default: all scenarios
# Needs: podman, runc, debootstrap (apt) and a Python with molecule, molecule-plugins[podman] and the
# ansible package (for containers.podman). Set NFCT_PYTHON_BIN to the bin directory of that Python
# (default: the one molecule is found in). Prints each scenario's log when it ends, then one line per scenario
# with its time; exit 1 if any failed.
# Scenarios run NFCT_MOLECULE_JOBS at a time (default 2): each has its own containers, and so its own network
# namespace, /run and systemd, and its own Molecule directory. HOST_STATE_SCENARIOS also write state of this
# machine (full_cycle sets the host's nf_log_all_netns for a moment to see its container's log lines in the
# kernel log, which another scenario's invalid packets would then reach): they run alone, before the others.
# The first scenario always runs alone: it does Molecule's prerun, which the others skip (see NO_PRERUN).
# Copyright (c) 2026, netfilter.conntrack contributors
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SCENARIOS=(full_cycle auto_revert timer_lost no_systemd second_enable enable_failure fleet upgrade interpreter capture)
HOST_STATE_SCENARIOS=(full_cycle)
[[ $# -gt 0 ]] && SCENARIOS=("$@")
JOBS="${NFCT_MOLECULE_JOBS:-2}"

if [[ -n "${NFCT_PYTHON_BIN:-}" ]]; then export PATH="$NFCT_PYTHON_BIN:$PATH"; fi
command -v molecule >/dev/null || { echo "molecule not found (set NFCT_PYTHON_BIN)" >&2; exit 1; }

export CONTAINERS_CONF="$HERE/containers.conf"
# make test builds the image early, beside other stages (make molecule-image); wait for that build, never run two.
flock "${TMPDIR:-/tmp}/nfct-molecule-image.lock" "$HERE/build-image.sh"

# The collection must be importable as netfilter.conntrack whatever the checkout is called.
COLLECTIONS="$(mktemp -d "${TMPDIR:-/tmp}/nfct-molecule.XXXXXX")"
trap 'rm -rf "$COLLECTIONS"' EXIT
mkdir -p "$COLLECTIONS/ansible_collections/netfilter"
ln -s "$ROOT" "$COLLECTIONS/ansible_collections/netfilter/conntrack"
export NFCT_COLLECTIONS_PATH="$COLLECTIONS"
export ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS"
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 ANSIBLE_NOCOLOR=1
export LOGS="$COLLECTIONS/logs"
mkdir -p "$LOGS"

# Molecule's prerun installs this collection with `ansible-galaxy collection install --force` into one directory
# for every scenario; two at once delete each other's files. The first scenario does it; the others skip it
# (the scenarios find the collection through NFCT_COLLECTIONS_PATH anyway).
printf 'prerun: false\n' >"$COLLECTIONS/no-prerun.yml"
export NO_PRERUN="$COLLECTIONS/no-prerun.yml"

# run_scenario SCENARIO [prerun]: molecule test into the scenario's log, printed whole when it ends (one at a
# time), and its summary line.
run_scenario() {
    local scenario=$1 start status options=(-c "$NO_PRERUN")
    [[ "${2:-}" == prerun ]] && options=()
    start=$(date +%s)
    if molecule "${options[@]}" test -s "$scenario" >"$LOGS/$scenario.log" 2>&1 </dev/null; then
        status=passed
    else
        status=FAILED
    fi
    printf '%-16s %-7s %4ss\n' "$scenario" "$status" "$(( $(date +%s) - start ))" >"$LOGS/$scenario.result"
    {
        flock 9
        printf '===== molecule scenario %s: %s =====\n' "$scenario" "$status"
        cat "$LOGS/$scenario.log"
    } 9>"$LOGS/.print"
}
export -f run_scenario

cd "$ROOT"
alone=()
shared=()
for scenario in "${SCENARIOS[@]}"; do
    if [[ " ${HOST_STATE_SCENARIOS[*]} " == *" $scenario "* ]]; then alone+=("$scenario"); else shared+=("$scenario"); fi
done
# The first scenario runs alone whatever it is, for the prerun.
if ((${#alone[@]} == 0)); then alone=("${shared[0]}"); shared=("${shared[@]:1}"); fi
run_scenario "${alone[0]}" prerun
for scenario in "${alone[@]:1}"; do run_scenario "$scenario"; done
if ((${#shared[@]})); then
    # shellcheck disable=SC2016  # $1 is the child bash's argument: xargs passes each scenario there
    printf '%s\0' "${shared[@]}" | xargs -0 -n 1 -P "$JOBS" bash -c 'run_scenario "$1"' run_scenario
fi

failed=()
echo "--- molecule scenarios ($JOBS at a time; ${alone[*]:-none} alone) ---"
for scenario in "${SCENARIOS[@]}"; do
    if [[ -f "$LOGS/$scenario.result" ]]; then cat "$LOGS/$scenario.result"; else printf '%-16s %s\n' "$scenario" "not run"; fi
    grep -q ' passed ' "$LOGS/$scenario.result" 2>/dev/null || failed+=("$scenario")
done
# Never leave a container behind, even after a failure in destroy: the platforms of the scenarios run here, and
# only those (another run of this script on the machine may be using the others).
for scenario in "${SCENARIOS[@]}"; do
    sed -n 's/^  - name: \(nfct-[A-Za-z0-9_.-]*\)$/\1/p' "$HERE/$scenario/molecule.yml"
done | xargs -r podman rm -f -t 0 >/dev/null 2>&1 || true
[[ ${#failed[@]} -eq 0 ]] || { echo "failed: ${failed[*]}" >&2; exit 1; }
