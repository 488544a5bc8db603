#!/usr/bin/env bash
# The debug role's full cycle (netfilter.conntrack.enable, collect, revert) under Mitogen's mitogen_linear strategy,
# over ssh to podman containers, checked and timed against the same cycle over plain ssh and the ssh floor.
#   tests/mitogen/run.sh [--write]
# 1. Installs mitogen (NFCT_MITOGEN_VERSION, 0.3.54) with ansible-core (NFCT_MITOGEN_CORE, 2.19.*) into a venv
#    under the project cache (NFCT_CACHE_DIR, ~/.cache/netfilter-conntrack): venv-mitogen.
# 2. Starts NFCT_MITOGEN_HOSTS (3) systemd containers of the sshd image (bench/fleet/build-sshd-image.sh), root
#    login with a key made for the run, non-default starting values (so that a revert differs from a reset).
# 3. NFCT_MITOGEN_ROUNDS (3) rounds, rotating which goes first: the cycle under mitogen_linear, the cycle under
#    the default linear strategy over ssh (pipelining and ControlPersist on, as a user's would be), and the ssh
#    floor, 3 x `ansible all -m ping`, under each. After every enable each host's net.netfilter values must
#    differ from its starting ones and a window must be open; after every collect a report per host must exist;
#    after every revert the values must be the starting ones again and no window open. Each round also runs a play
#    of 1 ping task and one of 31 under each, for the cost of one more task and the start-up of a run.
# --write appends the figures to the "## Mitogen" section at the end of docs/benchmarks.md (creates it when absent).
# Removes every container it created on any exit. Copyright (c) 2026, netfilter.conntrack contributors
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
WRITE=0
[[ "${1:-}" == --write ]] && WRITE=1
HOSTS="${NFCT_MITOGEN_HOSTS:-3}"
ROUNDS="${NFCT_MITOGEN_ROUNDS:-3}"
IMAGE="${NFCT_SSHD_IMAGE:-localhost/netfilter-conntrack-debian-sshd:bookworm}"
RUN_ID="$$"
LABEL="nfct-mitogen=$RUN_ID"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$ROOT/extensions/molecule/containers.conf}"

log() { printf '[mitogen %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
T_START=$(date +%s)

# ---------------------------------------------------------------- controller
# shellcheck source=tests/mitogen/venv.sh
source "$HERE/venv.sh"
VENV="$MITOGEN_VENV"
STRATEGY_DIR="$MITOGEN_STRATEGY_DIR"
export PATH="$VENV/bin:$PATH"
"$ROOT/bench/fleet/build-sshd-image.sh"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/nfct-mitogen.XXXXXX")"
cleanup() {
    local rc=$?
    set +e
    for sock in "$WORK"/cp/*/*; do [[ -S "$sock" ]] && ssh -o ControlPath="$sock" -O exit dummy >/dev/null 2>&1; done
    podman ps -aq --filter "label=$LABEL" | xargs -r podman rm -f -t 0 >/dev/null 2>&1
    if [[ "${NFCT_MITOGEN_KEEP:-0}" == 1 ]]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The collection as netfilter.conntrack, as committed (NFCT_MITOGEN_REF, HEAD): what a clone would run, whatever
# is being edited in this checkout; or the directory NFCT_MITOGEN_TREE.
COLL="$WORK/collections/ansible_collections/netfilter/conntrack"
mkdir -p "$COLL" "$WORK/ssh" "$WORK/cp" "$WORK/logs" "$WORK/values" "$WORK/reports"
if [[ -n "${NFCT_MITOGEN_TREE:-}" ]]; then  # a collection directory instead, such as `make tree`'s copy
    cp -a "$NFCT_MITOGEN_TREE/." "$COLL/"
    log "collection from $NFCT_MITOGEN_TREE"
else
    git -C "$ROOT" archive --format=tar "${NFCT_MITOGEN_REF:-HEAD}" | tar -C "$COLL" -xf -
    log "collection at $(git -C "$ROOT" rev-parse --short "${NFCT_MITOGEN_REF:-HEAD}")"
fi
cat >"$WORK/ansible.cfg" <<EOF
[defaults]
collections_path = $WORK/collections
interpreter_python = /usr/bin/python3
gathering = explicit
retry_files_enabled = false
host_key_checking = false
nocolor = true
deprecation_warnings = false
forks = $HOSTS
[ssh_connection]
pipelining = true
EOF
export ANSIBLE_CONFIG="$WORK/ansible.cfg"
ssh-keygen -q -t ed25519 -N '' -C "nfct-mitogen-$RUN_ID" -f "$WORK/ssh/id"

# ---------------------------------------------------------------- containers
name() { printf 'nfct-mitogen-%s-%d' "$RUN_ID" "$1"; }
log "starting $HOSTS containers of $IMAGE"
for ((i = 1; i <= HOSTS; i++)); do
    podman run -d --name "$(name "$i")" --hostname "$(name "$i")" --label "$LABEL" --privileged --systemd=always \
        "$IMAGE" /sbin/init >/dev/null
done
for ((i = 1; i <= HOSTS; i++)); do
    podman exec -i "$(name "$i")" sh -c \
        'mkdir -p -m 0700 /root/.ssh && cat >/root/.ssh/authorized_keys && chmod 0600 /root/.ssh/authorized_keys' \
        <"$WORK/ssh/id.pub"
    # The minimal image has no modprobe (and the kernel here has no loadable modules): a stub, as in bench/fleet.
    podman exec "$(name "$i")" sh -c '
        systemctl is-system-running --wait >/dev/null 2>&1
        sysctl -q -w net.netfilter.nf_conntrack_log_invalid=17 net.netfilter.nf_log.2=NONE net.netfilter.nf_log.10=NONE
        printf "#!/bin/sh\nexit 0\n" >/usr/local/sbin/modprobe; chmod 0755 /usr/local/sbin/modprobe'
done
{
    echo "all:"
    echo "  vars:"
    # The short name: Mitogen 0.3.54 takes over "ssh" but leaves "ansible.builtin.ssh" to Ansible, silently.
    echo "    ansible_connection: ssh"
    echo "    ansible_user: root"
    echo "    ansible_become: false  # root already; the image has no sudo"
    echo "    ansible_ssh_private_key_file: $WORK/ssh/id"
    echo "    ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
    echo "    conntrack_debug_report_dir: $WORK/reports"
    echo "    conntrack_debug_duration: 1800"
    echo "  hosts:"
    for ((i = 1; i <= HOSTS; i++)); do
        echo "    $(name "$i"):"
        echo "      ansible_host: $(podman inspect -f '{{.NetworkSettings.IPAddress}}' "$(name "$i")")"
    done
} >"$WORK/inventory.yml"

# ---------------------------------------------------------------- checks
values() {  # TAG: every net.netfilter value but the live entry count, per host
    local i
    mkdir -p "$WORK/values/$1"
    for ((i = 1; i <= HOSTS; i++)); do
        podman exec "$(name "$i")" sysctl -a -r '^net\.netfilter\.' 2>/dev/null |
            grep -v '^net.netfilter.nf_conntrack_count ' | sort >"$WORK/values/$1/$i"
    done
}
windows_open() {  # the number of hosts with an open window (the program's state file)
    local i n=0
    for ((i = 1; i <= HOSTS; i++)); do
        podman exec "$(name "$i")" sh -c 'ls /run/netfilter-conntrack/*.json' >/dev/null 2>&1 && n=$((n + 1))
    done
    echo "$n"
}
check_enabled() {  # LABEL
    local i
    values "$1-enabled"
    for ((i = 1; i <= HOSTS; i++)); do
        ! cmp -s "$WORK/values/initial/$i" "$WORK/values/$1-enabled/$i" || fail "$1: host $i values unchanged by enable"
    done
    [[ "$(windows_open)" == "$HOSTS" ]] || fail "$1: a window is not open on every host after enable"
    grep -q '^net.netfilter.nf_conntrack_log_invalid = 255$' "$WORK/values/$1-enabled/1" ||
        fail "$1: nf_conntrack_log_invalid is not 255 after enable"
}
check_collected() {  # LABEL
    local i
    for ((i = 1; i <= HOSTS; i++)); do
        python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$WORK/reports/$(name "$i").json" ||
            fail "$1: no JSON report for $(name "$i")"
    done
    rm -f "$WORK"/reports/*
}
check_reverted() {  # LABEL
    local i
    values "$1-reverted"
    for ((i = 1; i <= HOSTS; i++)); do
        diff -u "$WORK/values/initial/$i" "$WORK/values/$1-reverted/$i" >&2 || fail "$1: host $i values not restored"
    done
    [[ "$(windows_open)" == 0 ]] || fail "$1: a window is still open after revert"
}

# ---------------------------------------------------------------- runs
timed() {  # LABEL STRATEGY COMMAND...: one timed run, its log in logs/LABEL.log, its seconds in times.tsv
    local label="$1" strategy="$2" t0 t1
    shift 2
    # One ControlPath directory per cycle (or floor): its three runs reuse the master connections, as a user's would.
    mkdir -p "$WORK/cp/${label%-*}"
    t0=$(date +%s.%N)
    if [[ "$strategy" == mitogen ]]; then
        ANSIBLE_STRATEGY_PLUGINS="$STRATEGY_DIR" ANSIBLE_STRATEGY=mitogen_linear "$@" >"$WORK/logs/$label.log" 2>&1 ||
            { tail -n 40 "$WORK/logs/$label.log" >&2; fail "$label failed under mitogen_linear"; }
    else
        ANSIBLE_SSH_CONTROL_PATH_DIR="$WORK/cp/${label%-*}" "$@" >"$WORK/logs/$label.log" 2>&1 ||
            { tail -n 40 "$WORK/logs/$label.log" >&2; fail "$label failed over ssh"; }
    fi
    t1=$(date +%s.%N)
    printf '%s\t%s\n' "$label" "$(awk "BEGIN{print $t1 - $t0}")" >>"$WORK/times.tsv"
    log "$label: $(awk "BEGIN{printf \"%.2f\", $t1 - $t0}") s"
}
cycle() {  # STRATEGY ROUND: enable, collect, revert, each checked
    local label="$1-cycle-$2"
    timed "$label-enable" "$1" ansible-playbook -i "$WORK/inventory.yml" netfilter.conntrack.enable
    check_enabled "$label"
    timed "$label-collect" "$1" ansible-playbook -i "$WORK/inventory.yml" netfilter.conntrack.collect
    check_collected "$label"
    timed "$label-revert" "$1" ansible-playbook -i "$WORK/inventory.yml" netfilter.conntrack.revert
    check_reverted "$label"
}
floor() {  # STRATEGY ROUND: 3 x ansible -m ping, one per phase of a cycle
    local n
    for n in 1 2 3; do
        timed "$1-floor-$2-ping$n" "$1" ansible all -i "$WORK/inventory.yml" -m ansible.builtin.ping
    done
}

# Mitogen really carries the tasks (a strategy Ansible ignored would make every check above pass vacuously): the
# parent of a shell task is Mitogen's interpreter on the host, "python3(mitogen:USER@CONTROLLER:PID)".
# shellcheck disable=SC2016  # $PPID is the host shell's, not this script's
parents="$(ANSIBLE_STRATEGY_PLUGINS="$STRATEGY_DIR" ANSIBLE_STRATEGY=mitogen_linear ansible all -i "$WORK/inventory.yml" \
    -m ansible.builtin.shell -a 'tr "\0" " " </proc/$PPID/cmdline' 2>/dev/null)"
[[ "$(grep -c '(mitogen:' <<<"$parents")" == "$HOSTS" ]] || fail "tasks do not run under Mitogen: $parents"
log "Mitogen carries the tasks on all $HOSTS hosts"

# Per task and per run: a play of 1 ping task and one of 31, so that the cost of one more task and the start-up of a
# run (what the cycle's three short runs mostly pay) are told apart.
for n in 1 31; do
    {
        printf -- '- name: %d ping tasks\n  hosts: all\n  gather_facts: false\n  tasks:\n' "$n"
        for ((t = 1; t <= n; t++)); do printf '    - name: Ping %d\n      ansible.builtin.ping:\n' "$t"; done
    } >"$WORK/pings$n.yml"
done
tasks() {  # STRATEGY ROUND
    local n
    for n in 1 31; do timed "$1-tasks-$2-n$n" "$1" ansible-playbook -i "$WORK/inventory.yml" "$WORK/pings$n.yml"; done
}

values initial
for ((round = 1; round <= ROUNDS; round++)); do
    sides=("cycle mitogen" "cycle ssh" "floor mitogen" "floor ssh" "tasks mitogen" "tasks ssh")
    for ((k = 0; k < ${#sides[@]}; k++)); do
        read -r kind strategy <<<"${sides[$(((k + round - 1) % ${#sides[@]}))]}"
        "$kind" "$strategy" "$round"
    done
done

# ---------------------------------------------------------------- figures
SUMMARY="$("$VENV/bin/python" "$HERE/summary.py" "$WORK/times.tsv" "$HOSTS" "$ROUNDS")"
echo "$SUMMARY"
if ((WRITE)); then
    heading=""
    grep -q '^## Mitogen$' "$ROOT/docs/benchmarks.md" || heading=$'\n## Mitogen\n'
    {
        [[ -z "$heading" ]] || echo "$heading"
        echo "### $(date -u '+%Y-%m-%d %H:%M UTC'): $HOSTS hosts over ssh, $ROUNDS rounds"
        echo
        echo "$SUMMARY"
        echo
        echo "Machine: $(nproc) CPUs, kernel $(uname -r); controller $("$VENV/bin/ansible" --version | head -1)," \
            "mitogen $MITOGEN_VERSION, $("$VENV/bin/python" --version); podman $(podman --version | awk '{print $3}')" \
            "containers of $IMAGE; load $(cut -d' ' -f1-3 /proc/loadavg) at the end. Reproduce: \`make mitogen-test\`" \
            "(tests/mitogen/run.sh --write appends a section like this one)."
    } >"$WORK/section.md"
    cat "$WORK/section.md" >>"$ROOT/docs/benchmarks.md"
    log "appended to docs/benchmarks.md"
fi
log "done in $(($(date +%s) - T_START)) s: every cycle enabled, collected and reverted on $HOSTS hosts under both strategies"
