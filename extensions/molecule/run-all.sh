#!/usr/bin/env bash
# Run every Molecule scenario of the collection in podman containers (CI entry point).
#   extensions/molecule/run-all.sh [SCENARIO...]      default: all scenarios
#   extensions/molecule/run-all.sh --host-state       only HOST_STATE_SCENARIOS (make test: the host lane)
#   extensions/molecule/run-all.sh --no-host-state    every other scenario (make test: beside the host lane)
# Needs: podman, runc, debootstrap (apt) and a Python with molecule, molecule-plugins[podman] and the
# ansible package (for containers.podman). Set NFCT_PYTHON_BIN to the bin directory of that Python
# (default: the one molecule is found in). Prints each scenario's log when it ends, then one line per scenario
# with its time; exit 1 if any failed.
# Scenarios run NFCT_MOLECULE_JOBS at a time (default 2): each has its own containers, and so its own network
# namespace, /run and systemd, and its own Molecule directory. HOST_STATE_SCENARIOS also write state of this
# machine (full_cycle sets the host's nf_log_all_netns for a moment to see its container's log lines in the
# kernel log, which another scenario's invalid packets would then reach): they run alone, before the others.
# The others change nothing outside their containers, so they may run beside the host's other tests.
# Copyright (c) 2026, netfilter.conntrack contributors
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# Longest first (measured two at a time: upgrade 246 s, timer_lost 220, no_systemd 138, interpreter 101, auto_revert 70
# then, about 105 since its window is 60 s, fleet 48, capture 47, second_enable 38, enable_failure 33), so that the two
# at a time end together.
SCENARIOS=(full_cycle upgrade timer_lost no_systemd interpreter auto_revert fleet capture second_enable enable_failure)
HOST_STATE_SCENARIOS=(full_cycle)
case "${1:-}" in
    --host-state) SCENARIOS=("${HOST_STATE_SCENARIOS[@]}") ;;
    --no-host-state)
        others=()
        for scenario in "${SCENARIOS[@]}"; do
            [[ " ${HOST_STATE_SCENARIOS[*]} " == *" $scenario "* ]] || others+=("$scenario")
        done
        SCENARIOS=("${others[@]}")
        ;;
    -*) sed -n '2,5s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
    *) [[ $# -gt 0 ]] && SCENARIOS=("$@") ;;
esac
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

# No scenario does Molecule's prerun: it would install this collection with `ansible-galaxy collection install
# --force` into ~/.ansible/collections, shared by every run on the machine (two at once delete each other's files)
# and left behind. The scenarios find the collection through NFCT_COLLECTIONS_PATH, and their Galaxy dependencies
# are off (containers.podman comes with the ansible package).
printf 'prerun: false\n' >"$COLLECTIONS/no-prerun.yml"
export NO_PRERUN="$COLLECTIONS/no-prerun.yml"

# run_scenario SCENARIO: molecule test into the scenario's log, printed whole when it ends (one at a
# time), and its summary line.
run_scenario() {
    local scenario=$1 start status
    start=$(date +%s)
    if molecule -c "$NO_PRERUN" test -s "$scenario" >"$LOGS/$scenario.log" 2>&1 </dev/null; then
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
for scenario in "${alone[@]}"; do run_scenario "$scenario"; done
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
[[ ${#failed[@]} -eq 0 ]] && exit 0
# The logs were printed whole above, which a CI tail cuts: repeat where each failed scenario failed, last.
for scenario in "${failed[@]}"; do
    echo "--- where $scenario failed (the first failing task and Molecule's error, from its log above) ---"
    grep -n -B 2 -A 12 -m 1 -E '^(fatal|failed): \[' "$LOGS/$scenario.log" 2>/dev/null | cut -c1-400 || true
    grep -n -m 3 -E '^(CRITICAL|ERROR) ' "$LOGS/$scenario.log" 2>/dev/null | cut -c1-400 || true
done
echo "failed: ${failed[*]}" >&2
exit 1
