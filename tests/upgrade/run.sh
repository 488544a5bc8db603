#!/usr/bin/env bash
# Upgrade test (issue 20): debug windows opened by the previous release, then handled by this tree.
#   tests/upgrade/run.sh [CASE...]          default: every case; `run.sh --list` names them
# Needs root, iproute2, jq and ansible-playbook/ansible-galaxy on PATH (make upgrade-test sets PATH).
#
# The previous release is found from the git tags, or from the changelog's history in a clone without them
# (collections.sh), built from `git archive` of its release commit and
# installed into one temporary collections path; this tree is built and installed into another. Every case
# runs in its own network namespace, state directory and program directory, on this machine's kernel,
# where systemd is not PID 1: the old release arms its detached wait-and-revert watcher. The systemd
# timer path is the Molecule scenario extensions/molecule/upgrade.
#
# Each case: the old release enables (conntrack_debug_protocols: [tcp], all_netns, in the namespace),
# then this tree acts. Every case runs twice: with the old program left in place under its old name (what
# an upgrade does) and with it deleted after the old enable. The old watcher is alive whenever this tree
# acts. Cases:
#   revert        this tree's revert restores the namespace and nf_log_all_netns, and stops the old watchers
#   collect-auto  this tree's collect reports the old window; the automatic revert at the deadline restores
#   extend-revert a second enable with the same settings extends the old window (same snapshot, later
#                 deadline, no conflict, re-armed with this tree's program); revert restores the originals
#   extend-auto   as extend-revert, then nobody reverts: nothing happens at the old deadline, and the
#                 extended deadline restores the originals
# The namespace starts from non-default values (log_invalid 17, nf_log.2 and .10 NONE) so that a revert
# that restores differs from one that resets. The initial namespace's nf_conntrack_log_invalid and
# nf_log.2/.10 must never change; its nf_log_all_netns must come back to its value when the case started.
# That value is host-wide: another process changing it during a case makes the case fail (with a note).
# NFCT_UPGRADE_ALL_NETNS=0 leaves the initial namespace alone (no nf_log_all_netns, no host snapshot), for a
# machine where other tests change nf_log_all_netns at the same time.
# Durations: the cases that this tree reverts use a 600 s window. The two that wait for the automatic revert
# use a short one that must outlast the old enable and this tree's step: 20 s, or four times the longest
# step seen so far in the run when that is more (a loaded machine). NFCT_UPGRADE_DURATION fixes it.
# Environment: NFCT_UPGRADE_DURATION (seconds), NFCT_UPGRADE_FROM (a tag or a released version; default 0.2.0,
# whose formats and program layout the cases below expect: format-1 snapshots, the host snapshot, the old program),
# NFCT_UPGRADE_KEEP=1 keeps the work directory (logs, results).
# Copyright (c) 2026, netfilter.conntrack contributors
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PLAYBOOK="${ANSIBLE_PLAYBOOK:-ansible-playbook}"
LONG=600
# The longest ansible-playbook run so far (s); the short windows are four times that, at least 20 s.
STEP_MAX=5
ALL_NETNS="${NFCT_UPGRADE_ALL_NETNS:-1}"
MODES=(kept removed)
ALL_CASES=(revert collect-auto extend-revert extend-auto)
NS_KEYS=(net.netfilter.nf_conntrack_log_invalid net.netfilter.nf_log.2 net.netfilter.nf_log.10)
INIT_KEYS=(net.netfilter.nf_log_all_netns net.netfilter.nf_conntrack_log_invalid net.netfilter.nf_log.2
    net.netfilter.nf_log.10)
NS_ORIGINAL="17 NONE NONE"
NS_DEBUG="6 nf_log_ipv4 nf_log_ipv6"
OLD_PROGRAM=conntrack-debug-revert
NEW_PROGRAM=conntrack-debug-window.pyz
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 PY_COLORS=0 ANSIBLE_RETRY_FILES_ENABLED=0

if [[ "${1:-}" == --list ]]; then printf '%s\n' "${ALL_CASES[@]}"; exit 0; fi
CASES=("${ALL_CASES[@]}")
[[ $# -gt 0 ]] && CASES=("$@")
for name in "${CASES[@]}"; do
    [[ " ${ALL_CASES[*]} " == *" $name "* ]] || { echo "unknown case $name (run.sh --list)" >&2; exit 2; }
done
[[ $EUID -eq 0 ]] || { echo "run as root: the test creates network namespaces and sets sysctls" >&2; exit 1; }
for tool in ip jq sysctl "$PLAYBOOK"; do
    command -v "$tool" >/dev/null || { echo "$tool not found" >&2; exit 1; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/nfct-upgrade.XXXXXX")"
init_values() { sysctl -n "${INIT_KEYS[@]}" | paste -sd' '; }
# What the cases must leave as they found it: without NFCT_UPGRADE_ALL_NETNS, not nf_log_all_netns (others' business).
init_checked() { if [[ "$ALL_NETNS" == 1 ]]; then echo "$1"; else echo "${1#* }"; fi; }
# nf_log_all_netns is host-wide: the expectations use its value when each case starts, as read then.
INIT_AT_START="$(init_values)"
C_NS=""
SUMMARY=()
FAILED=()

log() { printf '[upgrade] %s\n' "$*"; }

# ------------------------------------------------------------------------------------------- cleanup

# case_processes: the pids of wait-and-revert processes of this case (its state directory on their command
# line, as this tree passes it, or in their environment, as the old release inherits it).
case_processes() {
    local dir pid
    for dir in /proc/[0-9]*; do
        pid=${dir#/proc/}
        tr '\0' ' ' 2>/dev/null <"$dir/cmdline" | grep -q wait-and-revert || continue
        if tr '\0' '\n' 2>/dev/null <"$dir/cmdline" | grep -qxF -- "--state-dir=$C_STATE" ||
            tr '\0' '\n' 2>/dev/null <"$dir/environ" | grep -qxF -- "CONNTRACK_DEBUG_STATE_DIR=$C_STATE"; then
            echo "$pid"
        fi
    done | paste -sd' '
}

kill_watchers() {
    local pid
    for pid in $(case_processes); do kill "$pid" 2>/dev/null || true; done
}

teardown_case() {
    [[ -n "$C_NS" ]] || return 0
    if compgen -G "$C_STATE/*.json" >/dev/null; then
        # Whatever a failed case left open: this tree's revert of every window of the case's state directory.
        role new revert teardown -e '{"conntrack_debug_netns": [], "conntrack_debug_revert_scope": "all"}' || true
    fi
    kill_watchers
    ip netns del "$C_NS" 2>/dev/null || true
    C_NS=""
}

cleanup() {
    teardown_case
    # The teardown's revert compares and restores; a host-wide value that still differs was changed by
    # someone else (or a revert failed): say so rather than overwrite it.
    if [[ "$(init_values)" != "$INIT_AT_START" ]]; then
        log "note: the initial namespace's values are now $(init_values), they were $INIT_AT_START when this run started"
    fi
    if [[ "${NFCT_UPGRADE_KEEP:-0}" == 1 ]]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# ------------------------------------------------------------------------------------------- helpers

ns_values() { ip netns exec "$C_NS" sysctl -n "${NS_KEYS[@]}" | paste -sd' '; }
all_netns() { sysctl -n net.netfilter.nf_log_all_netns; }
# The snapshot ids of a case, and their files or watchers: per_id 'ID.json'.
ids() { if [[ "$ALL_NETNS" == 1 ]]; then echo "init netns-$C_NS"; else echo "netns-$C_NS"; fi; }
formats() { local id; for id in $(ids); do jq -r .format "$C_STATE/$id.json" 2>/dev/null || echo none; done | paste -sd' '; }
per_id() { local id; for id in $(ids); do printf '%s\n' "${1//ID/$id}"; done | paste -sd' '; }
# Once this tree has acted on the old windows: 0.2.0's host snapshot (all_netns) became the shared record held by the
# namespace's window.
new_snapshots() { if [[ "$ALL_NETNS" == 1 ]]; then echo "netns-$C_NS.json shared.json"; else echo "netns-$C_NS.json"; fi; }

snapshots() { (cd "$C_STATE" 2>/dev/null && ls -- *.json 2>/dev/null) | paste -sd' '; }

# role RELEASE ACTION STEP [ansible-playbook args...]: run an entry point with the old or the new collection.
role() {
    local release=$1 action=$2 step=$3
    shift 3
    # 0.2.0 logged to the kernel log: this tree's windows must ask for the same path to extend the old ones.
    local protocol='{"conntrack_debug_protocol": "tcp", "conntrack_debug_capture": "kernel_log"}'
    [[ "$release" == old ]] && protocol='{"conntrack_debug_protocols": ["tcp"]}'
    ANSIBLE_COLLECTIONS_PATH="$WORK/$release" "$PLAYBOOK" -i localhost, -c local "$HERE/role.yml" \
        -e ansible_python_interpreter=/usr/bin/python3 -e "conntrack_debug_action=$action" \
        -e "upgrade_netns=$C_NS" -e "upgrade_state_dir=$C_STATE" -e "upgrade_program_dir=$C_PROG" \
        -e "upgrade_result=$C_DIR/$step.json" -e "upgrade_all_netns=$([[ $ALL_NETNS == 1 ]] && echo true || echo false)" \
        -e "$protocol" "$@" >"$C_DIR/$step.log" 2>&1
}

# result STEP JQ: a value from the role's registered result of a step.
result() { jq -r "$2" "$C_DIR/$1.json" 2>/dev/null || true; }

fail() {
    C_FAIL+=("$*")
    log "  FAIL: $*"
}

expect() { # expect DESCRIPTION ACTUAL EXPECTED
    if [[ "$2" == "$3" ]]; then log "  ok: $1"; else fail "$1: got '$2', expected '$3'"; fi
}

run_step() { # run_step RELEASE ACTION STEP [args]: the role must succeed
    local started=$SECONDS
    if role "$@"; then
        log "  $1 release: $2 ($3) passed in $((SECONDS - started)) s"
        if ((SECONDS - started > STEP_MAX)); then STEP_MAX=$((SECONDS - started)); fi
    else
        fail "$1 release: $2 ($3) failed, see below"
        tail -n 25 "$C_DIR/$3.log" | sed 's/^/    | /'
        return 1
    fi
}

# watchers: "ID:PROGRAM" of every live wait-and-revert named by a pid file of the state directory.
watchers() {
    local file pid cmd
    for file in "$C_STATE"/*.pid; do
        [[ -e "$file" ]] || continue
        pid="$(cat "$file")"
        cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || true)"
        [[ "$cmd" == *wait-and-revert* ]] || continue
        case "$cmd" in
        *"/$OLD_PROGRAM "*) echo "$(basename "$file" .pid):$OLD_PROGRAM" ;;
        *"/$NEW_PROGRAM "*) echo "$(basename "$file" .pid):$NEW_PROGRAM" ;;
        *) echo "$(basename "$file" .pid):unknown" ;;
        esac
    done | LC_ALL=C sort | paste -sd' '
}

alive() { # alive PID...: the given pids that still run wait-and-revert
    local pid
    for pid in "$@"; do
        if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q wait-and-revert; then echo "$pid"; fi
    done | paste -sd' '
}

restored() {
    [[ "$(ns_values)" == "$NS_ORIGINAL" && -z "$(snapshots)" ]] &&
        [[ "$ALL_NETNS" != 1 || "$(all_netns)" == "$C_ALL_NETNS_BEFORE" ]]
}

# wait_restored UNTIL_EPOCH: poll until everything is back or the time is up; prints the epoch it saw it.
wait_restored() {
    while (($(date +%s) < $1)); do
        if restored; then date +%s; return 0; fi
        sleep 1
    done
    restored && date +%s
}

expect_restored() { # after a revert: values, nf_log_all_netns, snapshots, the initial namespace untouched
    expect "namespace values restored" "$(ns_values)" "$NS_ORIGINAL"
    if [[ "$ALL_NETNS" == 1 ]]; then expect "nf_log_all_netns restored" "$(all_netns)" "$C_ALL_NETNS_BEFORE"; fi
    expect "initial namespace as before" "$(init_checked "$(init_values)")" "$(init_checked "$C_INIT_BEFORE")"
    expect "no snapshot left" "$(snapshots)" ""
}

expect_debug() {
    expect "namespace values are the debug values" "$(ns_values)" "$NS_DEBUG"
    if [[ "$ALL_NETNS" == 1 ]]; then expect "nf_log_all_netns is 1" "$(all_netns)" 1; fi
}

# ------------------------------------------------------------------------------------------- the cases

short_duration() {
    if [[ -n "${NFCT_UPGRADE_DURATION:-}" ]]; then echo "$NFCT_UPGRADE_DURATION"; return; fi
    local duration=$((4 * STEP_MAX))
    ((duration >= 20)) || duration=20
    echo "$duration"
}

# still_open STEP: fail, saying why, when the old window's deadline passed before this tree's step ended.
still_open() {
    if (($(date +%s) >= OLD_DEADLINE)); then
        fail "the old window ended before this tree's $1 had finished: the machine is too slow for a $DURATION s window (longest step $STEP_MAX s); set NFCT_UPGRADE_DURATION"
    fi
}

# The part every case starts with: enable with the old release for DURATION seconds, then the upgrade (MODE
# removed: the old program deleted as well). Sets OLD_DEADLINE, OLD_WATCHERS (pids), OLD_SNAPSHOT (its
# netns snapshot).
old_enable() {
    log "  window of $DURATION s"
    run_step old enable old-enable -e "{\"conntrack_debug_duration\": $DURATION}" || return 1
    OLD_DEADLINE="$(result old-enable '.enabled.deadline | floor')"
    expect_debug
    expect "old release wrote format-1 snapshots" \
        "$(formats)" "$(per_id 1)"
    expect "old release armed a detached watcher per snapshot" "$(watchers)" \
        "$(per_id "ID:$OLD_PROGRAM")"
    read -r -a OLD_WATCHERS <<<"$(case_processes)"
    OLD_SNAPSHOT="$(cat "$C_STATE/netns-$C_NS.json" 2>/dev/null || true)"
    if [[ "$C_MODE" == removed ]]; then
        rm -f "$C_PROG/$OLD_PROGRAM"
        log "  deleted $C_PROG/$OLD_PROGRAM"
    else
        expect "old program left in place" "$(test -x "$C_PROG/$OLD_PROGRAM" && echo yes)" yes
    fi
}

case_revert() {
    DURATION=$LONG
    old_enable || return 0
    run_step new revert new-revert || return 0
    expect_restored
    local keys="net.netfilter.nf_conntrack_log_invalid net.netfilter.nf_log.10 net.netfilter.nf_log.2"
    # nf_log_all_netns was restored unless it was 1 already when the case started.
    [[ "$C_ALL_NETNS_BEFORE" == 1 || "$ALL_NETNS" != 1 ]] || keys+=" net.netfilter.nf_log_all_netns"
    expect "revert restored both windows" "$(result new-revert \
        '[.reverted.namespaces[] | .restored | keys[]] | sort | join(" ")')" "$keys"
    sleep 1
    expect "the old watchers were stopped" "$(alive "${OLD_WATCHERS[@]}")" ""
    expect "state directory removed" "$(test -e "$C_STATE" && echo present)" ""
}

case_collect-auto() {
    DURATION="$(short_duration)"
    old_enable || return 0
    run_step new collect new-collect || return 0
    still_open collect
    local window=".report.windows[\"netns-$C_NS\"]"
    expect "collect: window_active" "$(result new-collect .report.window_active)" true
    expect "collect: the old window, read from format 1" "$(result new-collect \
        "$window | [.active, .format_read, .scheduler.kind, .scheduler.alive] | join(\" \")")" \
        "true 1 detached-process true"
    expect "collect: its deadline" "$(result new-collect "$window.deadline | floor")" "$OLD_DEADLINE"
    expect "collect: current values are the debug values" "$(result new-collect \
        "[$window.keys[\"net.netfilter.nf_conntrack_log_invalid\", \"net.netfilter.nf_log.2\"].current] | join(\" \")")" \
        "6 nf_log_ipv4"
    expect "collect: no problem reported" "$(result new-collect '.report.notes | join("; ")')" ""
    expect "collect changed nothing" "$(snapshots) $(ns_values)" "$(per_id ID.json) $NS_DEBUG"
    local seen
    seen="$(wait_restored $((OLD_DEADLINE + 20 + STEP_MAX)))" || true
    expect_restored
    if [[ -n "$seen" ]]; then log "  automatic revert seen $((seen - OLD_DEADLINE)) s after the deadline"; fi
    sleep 1
    expect "the old watchers exited" "$(alive "${OLD_WATCHERS[@]}")" ""
}

# extend: old enable, then this tree's enable with the same settings and a longer duration.
extend() {
    old_enable || return 1
    run_step new enable new-enable -e "{\"conntrack_debug_duration\": $((DURATION + 15))}" || return 1
    still_open enable
    local ns=".enabled.namespaces[\"netns-$C_NS\"]" init='.enabled.shared' originals="$NS_ORIGINAL"
    local recorded="$ns.original[\"net.netfilter.nf_conntrack_log_invalid\", \"net.netfilter.nf_log.2\", \"net.netfilter.nf_log.10\"]"
    if [[ "$ALL_NETNS" == 1 ]]; then
        originals+=" $C_ALL_NETNS_BEFORE"
        recorded+=", $init.original[\"net.netfilter.nf_log_all_netns\"]"
    else
        init='{created: false}'
    fi
    NEW_DEADLINE="$(result new-enable '.enabled.deadline | floor')"
    expect "second enable: the old windows, not new ones" "$(result new-enable "[$ns.created, $init.created] | join(\" \")")" \
        "false false"
    expect "second enable: deadline extended" "$(result new-enable "$ns.deadline_extended")" true
    expect "second enable: originals from before the old enable" "$(result new-enable "[$recorded] | join(\" \")")" \
        "$originals"
    expect "new deadline later than the old one" "$((${NEW_DEADLINE:-0} > ${OLD_DEADLINE:-0} + 10))" 1
    local snapshot
    snapshot="$(cat "$C_STATE/netns-$C_NS.json" 2>/dev/null || true)"
    expect "same snapshot, re-saved as format 3" "$(jq -r '[.format, .upgraded_from, .created, (.keys | tojson)] | join(" ")' <<<"$snapshot")" \
        "3 1 $(jq -r '[.created, (.keys | tojson)] | join(" ")' <<<"$OLD_SNAPSHOT")"
    expect "the host's snapshot became the shared record" "$(snapshots)" "$(new_snapshots)"
    expect_debug
    sleep 2
    expect "the old watchers were replaced" "$(alive "${OLD_WATCHERS[@]}")" ""
    # One watcher and its partner for every window of the state directory; the window's pid file names the watcher.
    expect "re-armed with this tree's program" "$(watchers)" \
        "netns-$C_NS:$NEW_PROGRAM watcher-partner:$NEW_PROGRAM watcher:$NEW_PROGRAM"
}

case_extend-revert() {
    DURATION=$LONG
    extend || return 0
    run_step new revert new-revert || return 0
    expect_restored
    sleep 1
    expect "no watcher left" "$(case_processes)" ""
}

case_extend-auto() {
    DURATION="$(short_duration)"
    extend || return 0
    # Past the old deadline (plus the watcher's 5 s polling): still on, whoever was watching.
    while (($(date +%s) < OLD_DEADLINE + 8)); do sleep 1; done
    expect "still on after the old deadline" "$(snapshots) $(ns_values)" "$(new_snapshots) $NS_DEBUG"
    if [[ "$ALL_NETNS" == 1 ]]; then
        expect "nf_log_all_netns still 1 (host-wide: another process may change it)" "$(all_netns)" 1
    fi
    local seen
    seen="$(wait_restored $((NEW_DEADLINE + 20 + STEP_MAX)))" || true
    expect_restored
    if [[ -n "$seen" ]]; then log "  automatic revert seen $((seen - NEW_DEADLINE)) s after the extended deadline"; fi
    sleep 1
    expect "no watcher left" "$(case_processes)" ""
}

# ------------------------------------------------------------------------------------------- main

started=$SECONDS
export NFCT_UPGRADE_FROM="${NFCT_UPGRADE_FROM:-0.2.0}"
FROM="$("$HERE/collections.sh" old "$WORK/old")"
TO="$("$HERE/collections.sh" current "$WORK/new")"
log "previous release $FROM (git archive $FROM), current tree $TO; built and installed in $((SECONDS - started)) s"
[[ -f "$WORK/old/ansible_collections/netfilter/conntrack/roles/debug/files/$OLD_PROGRAM" ]] ||
    log "note: $FROM has no roles/debug/files/$OLD_PROGRAM; the old-program checks assume 0.2.0's layout"

number=0
for name in "${CASES[@]}"; do
    for mode in "${MODES[@]}"; do
        number=$((number + 1))
        C_MODE=$mode
        C_DIR="$WORK/cases/$name-$mode"
        C_NS="nfct-upgrade-$$-$number"
        C_STATE="$C_DIR/state"
        C_PROG="$C_DIR/libexec"
        C_FAIL=()
        mkdir -p "$C_DIR"
        log "case $name, old program $mode (namespace $C_NS)"
        ip netns add "$C_NS"
        ip netns exec "$C_NS" sysctl -q -w net.netfilter.nf_conntrack_log_invalid=17 net.netfilter.nf_log.2=NONE \
            net.netfilter.nf_log.10=NONE
        C_INIT_BEFORE="$(init_values)"
        C_ALL_NETNS_BEFORE="${C_INIT_BEFORE%% *}"
        case_started=$SECONDS
        "case_$name"
        teardown_case
        if [[ "$(init_checked "$(init_values)")" != "$(init_checked "$C_INIT_BEFORE")" ]]; then
            fail "initial namespace changed: $(init_values), was $C_INIT_BEFORE"
        fi
        if ((${#C_FAIL[@]})) && [[ "$(all_netns)" != "$C_ALL_NETNS_BEFORE" || "$C_INIT_BEFORE" != "$INIT_AT_START" ]]; then
            log "  note: nf_log_all_netns is host-wide and changed outside this case (now $(all_netns), $C_ALL_NETNS_BEFORE when it started, ${INIT_AT_START%% *} when the run started): another process on this machine may be behind a failure"
        fi
        status=passed
        if ((${#C_FAIL[@]})); then status=FAILED; FAILED+=("$name/$mode"); fi
        SUMMARY+=("$(printf '%-14s %-8s %-7s %4s s' "$name" "$mode" "$status" "$((SECONDS - case_started))")")
    done
done
printf '%s\n' "--- upgrade from $FROM to $TO ---" "${SUMMARY[@]}" "total $((SECONDS - started)) s"
[[ ${#FAILED[@]} -eq 0 ]] || { echo "failed: ${FAILED[*]}" >&2; exit 1; }
