#!/usr/bin/env bash
# Cost of the read-only gather (ansible-playbook netfilter.conntrack.facts) on podman containers, against
# `ansible all -m ansible.builtin.ping` on the same hosts, in the same run.
#   bench/fleet/facts.sh            # prints the "## Fleet: the facts gather" section for docs/benchmarks.md
# For each size (NFCT_FACTS_SIZES, "10 50") and NFCT_FACTS_REPEAT rounds (2), the runs go back to back and
# alternate which goes first, so that load from other jobs hits them alike: ping, the gather with its defaults
# (plan included), the gather without the plan (conntrack_facts_plan=false), and the gather into a jsonfile fact
# cache. Bytes per host are what the controller received for the gather task (callback fleet_stats).
# The containers are plain (`sleep infinity`, no systemd: the gather needs none), started from the Molecule image
# (extensions/molecule/build-image.sh, cached) and removed on any exit. NFCT_FLEET_KEEP=1 keeps the work directory.
# Copyright (c) 2026, netfilter.conntrack contributors
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${NFCT_VENV:-${NFCT_CACHE_DIR:-$HOME/.cache/netfilter-conntrack}/venv-2.19}"
read -r -a SIZES <<<"${NFCT_FACTS_SIZES:-10 50}"
REPEAT="${NFCT_FACTS_REPEAT:-2}"
FORKS="${NFCT_FACTS_FORKS:-25}"
MAX="${SIZES[-1]}"
IMAGE="${NFCT_MOLECULE_IMAGE:-localhost/netfilter-conntrack-debian:bookworm}"
RUN_ID="$$"
LABEL="nfct-facts-bench=$RUN_ID"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$ROOT/extensions/molecule/containers.conf}"
export PATH="$VENV/bin:$PATH"

log() { printf '[facts-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
T_START=$(date +%s)
"$ROOT/extensions/molecule/build-image.sh"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/nfct-facts-bench.XXXXXX")"
cleanup() {
    local rc=$?
    set +e
    log "removing the containers of run $RUN_ID"
    podman ps -aq --filter "label=$LABEL" | xargs -r podman rm -f -t 0 >/dev/null 2>&1
    if [[ "${NFCT_FLEET_KEEP:-0}" == 1 ]]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

COLL="$WORK/collections/ansible_collections/netfilter/conntrack"
mkdir -p "$COLL" "$WORK/stats" "$WORK/logs" "$WORK/cache"
git -C "$ROOT" ls-files -z | tar -C "$ROOT" --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -C "$COLL" -xf -
cat >"$WORK/ansible.cfg" <<EOF
[defaults]
collections_path = $WORK/collections
callback_plugins = $HERE/callback_plugins
callbacks_enabled = fleet_stats
interpreter_python = /usr/bin/python3
gathering = explicit
retry_files_enabled = false
host_key_checking = false
nocolor = true
deprecation_warnings = false
forks = $FORKS
EOF
export ANSIBLE_CONFIG="$WORK/ansible.cfg"

name() { printf 'nfct-facts-%02d' "$1"; }
{
    echo "all:"
    echo "  vars:"
    echo "    ansible_connection: containers.podman.podman"
    echo "    ansible_become: false"
    echo "  children:"
    for size in "${SIZES[@]}"; do
        echo "    n$size:"
        echo "      hosts:"
        for ((i = 1; i <= size; i++)); do echo "        $(name "$i"):"; done
    done
} >"$WORK/inventory.yml"

log "starting $MAX containers"
T0=$(date +%s)
for ((i = 1; i <= MAX; i++)); do name "$i"; echo; done |
    xargs -P 4 -I{} podman run -d --name {} --hostname {} --label "$LABEL" --privileged "$IMAGE" sleep infinity >/dev/null
# A conntrack rule in each, so that its table is in use (a few entries from the rule's own traffic).
for ((i = 1; i <= MAX; i++)); do name "$i"; echo; done |
    xargs -P 4 -I{} podman exec {} sh -c 'nft add table inet b; nft "add chain inet b o { type filter hook output priority 0; }"; nft add rule inet b o ct state new accept' 2>/dev/null || true
log "$MAX containers up in $(($(date +%s) - T0)) s"

cd "$WORK"
# run LABEL COMMAND...: one timed run; its wall time in times.tsv, its stats (playbooks) in stats/LABEL.json.
run() {
    local label=$1 t0 t1
    shift
    t0=$(date +%s.%N)
    if ! FLEET_STATS_OUT="$WORK/stats/$label.json" "$@" >"$WORK/logs/$label.log" 2>&1; then
        log "FAILED: $label"
        tail -n 30 "$WORK/logs/$label.log" >&2
        return 1
    fi
    t1=$(date +%s.%N)
    printf '%s\t%s\n' "$label" "$(awk "BEGIN{print $t1 - $t0}")" >>"$WORK/times.tsv"
    log "$label: $(awk "BEGIN{printf \"%.1f\", $t1 - $t0}") s"
}
ping_run() { run "$1" ansible "n$2" -i inventory.yml -m ansible.builtin.ping; }
facts_run() { run "$1" ansible-playbook netfilter.conntrack.facts -i inventory.yml -l "n$2" "${@:3}"; }

for size in "${SIZES[@]}"; do
    for ((round = 1; round <= REPEAT; round++)); do
        if ((round % 2)); then
            ping_run "ping-n$size-r$round" "$size"
            facts_run "facts-n$size-r$round" "$size"
        else
            facts_run "facts-n$size-r$round" "$size"
            ping_run "ping-n$size-r$round" "$size"
        fi
    done
    facts_run "noplan-n$size" "$size" -e conntrack_facts_plan=false
    ANSIBLE_CACHE_PLUGIN=jsonfile ANSIBLE_CACHE_PLUGIN_CONNECTION="$WORK/cache/n$size" \
        facts_run "cached-n$size" "$size"
    ping_run "ping-n$size-after" "$size"
done

{
    echo "machine $(nproc) CPUs, $(free -g | awk '/^Mem:/{print $2}') GiB, kernel $(uname -r)"
    echo "controller $(ansible --version 2>/dev/null | sed -n 1p), $(python3 --version 2>&1), podman $(podman --version | awk '{print $3}')"
    echo "date $(date -u '+%Y-%m-%d %H:%M UTC'), load average at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "bench_seconds $(($(date +%s) - T_START))"
} >"$WORK/meta.txt"
"$VENV/bin/python" "$HERE/facts_report.py" "$WORK" "${SIZES[@]}"
