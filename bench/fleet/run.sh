#!/usr/bin/env bash
# Fleet benchmark of the debug role against the plain way (bench/fleet/baseline.yml), in podman containers.
#   bench/fleet/run.sh [--no-write]
# Starts as many systemd containers of the Molecule image as the largest size, runs the enable/collect/revert
# cycle of the role and of the baseline at 10, 25 and 50 hosts (forks 25) and at 10 hosts with forks 5, a second
# enable on all (changed=0, no value written), pipelining on at 10 hosts (role), and the collect payload at 0,
# 1,000 and 100,000 logged invalid packets; writes the "## Fleet" section of docs/benchmarks.md (between its
# markers) unless --no-write. Raises fs.inotify.max_user_instances for the containers and restores it, and
# removes every container it created, on any exit.
# Environment: NFCT_FLEET_SIZES ("10 25 50"), NFCT_FLEET_FORKS (25), NFCT_FLEET_LOW_FORKS (5),
# NFCT_FLEET_LOW_FORKS_SIZE (the first size; NFCT_FLEET_LOW_FORKS=0 skips that pair), NFCT_FLEET_PHASES
# ("scale floor idem pipe payload", or a subset; "fresh" adds enable on hosts without the program against enable on
# hosts with it, at the first size over each transport, NFCT_FLEET_FRESH_ROUNDS rounds, default 2),
# NFCT_FLEET_SIDES (what the scale phase runs at each size: "role base", or "role" to leave the plain-way
# baseline out of a large run; "batch" adds the role's cycle with enable in one batch instead of the enable
# playbook's canary and 10 % batches; the floor comes with the phase floor),
# NFCT_VENV (controller venv, created with ansible-core 2.19 + ansible when missing), NFCT_FLEET_KEEP=1 keeps
# the work directory (ansible logs, per-run JSON, value dumps).
# Transports (issue 18): NFCT_FLEET_TRANSPORTS ("podman", or "podman ssh"). With ssh, the containers run sshd
# (Debian's openssh-server, bench/fleet/build-sshd-image.sh) and the scale phase runs again on the same containers
# over the ssh connection (ControlPersist and pipelining on, a key made for the run, root login). The phase
# "floor" adds the transport floor of issue 14 at each size and transport: 3 x `ansible all -m ping`, same hosts,
# connection and forks, in the same rotation as the role and baseline cycles. "mitogen" runs the same over ssh under
# Mitogen's mitogen_linear strategy (tests/mitogen/venv.sh: mitogen 0.3.54 with ansible-core 2.19), its floor being
# 3 x ping under Mitogen too.
# Copyright (c) 2026, netfilter.conntrack contributors
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
WRITE=1
[[ "${1:-}" == --no-write ]] && WRITE=0
VENV="${NFCT_VENV:-${NFCT_CACHE_DIR:-$HOME/.cache/netfilter-conntrack}/venv-2.19}"
read -r -a SIZES <<<"${NFCT_FLEET_SIZES:-10 25 50}"
FORKS="${NFCT_FLEET_FORKS:-25}"
LOW_FORKS="${NFCT_FLEET_LOW_FORKS:-5}"
MAX="${SIZES[-1]}"
PHASES=" ${NFCT_FLEET_PHASES:-scale floor idem pipe payload} "
read -r -a TRANSPORTS <<<"${NFCT_FLEET_TRANSPORTS:-podman}"
read -r -a SIDES <<<"${NFCT_FLEET_SIDES:-role base}"
FRESH_ROUNDS="${NFCT_FLEET_FRESH_ROUNDS:-2}"
transport() { [[ " ${TRANSPORTS[*]} " == *" $1 "* ]]; }
phase() { [[ "$PHASES" == *" $1 "* ]]; }
IMAGE="${NFCT_MOLECULE_IMAGE:-localhost/netfilter-conntrack-debian:bookworm}"
RUN_ID="$$"
LABEL="nfct-fleet-bench=$RUN_ID"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$ROOT/extensions/molecule/containers.conf}"

log() { printf '[fleet %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
elapsed() { awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $1}"; }
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
MEM_USED_START="$(free -m | awk '/^Mem:/{print $3}')"
BENCH_T0=$(date +%s)

# ---------------------------------------------------------------- controller
if [[ ! -x "$VENV/bin/ansible-playbook" ]]; then
    log "creating the controller venv $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q 'ansible-core==2.19.*' 'ansible==12.*'
fi
export PATH="$VENV/bin:$PATH"
"$ROOT/extensions/molecule/build-image.sh"
over_ssh() { transport ssh || transport mitogen; }
if over_ssh; then
    "$HERE/build-sshd-image.sh"
    IMAGE="${NFCT_SSHD_IMAGE:-localhost/netfilter-conntrack-debian-sshd:bookworm}"
fi
if transport mitogen; then
    # shellcheck source=tests/mitogen/venv.sh
    source "$ROOT/tests/mitogen/venv.sh"
    # The baseline's community.general under Mitogen: the controller venv's ansible package (the Mitogen venv has
    # ansible-core alone).
    CONTROLLER_PACKAGES="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/nfct-fleet.XXXXXX")"
INOTIFY_ORIG="$(sysctl -n fs.inotify.max_user_instances)"
cleanup() {
    local rc=$?
    set +e
    log "removing the containers of run $RUN_ID"
    for sock in "$WORK"/cp/*/*; do [[ -S "$sock" ]] && ssh -o ControlPath="$sock" -O exit dummy >/dev/null 2>&1; done
    podman ps -aq --filter "label=$LABEL" | xargs -r podman rm -f -t 0 >/dev/null 2>&1
    sysctl -q -w fs.inotify.max_user_instances="$INOTIFY_ORIG"
    log "fs.inotify.max_user_instances restored to $(sysctl -n fs.inotify.max_user_instances)"
    if [[ "${NFCT_FLEET_KEEP:-0}" == 1 ]]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The collection as netfilter.conntrack, from the files git tracks in this checkout (works in a clean clone).
COLL="$WORK/collections/ansible_collections/netfilter/conntrack"
mkdir -p "$COLL" "$WORK/stats" "$WORK/logs" "$WORK/values" "$WORK/reports" "$WORK/baseline-reports"
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
EOF
export ANSIBLE_CONFIG="$WORK/ansible.cfg" ANSIBLE_PIPELINING=false FLEET_BASELINE_REPORTS="$WORK/baseline-reports"

# Inventory: groups n<SIZE> hold the first SIZE containers.
name() { printf 'nfct-bench-%02d' "$1"; }
{
    echo "all:"
    echo "  vars:"
    echo "    ansible_connection: containers.podman.podman"
    echo "    ansible_become: false  # root in the container already; the images have no sudo"
    echo "    conntrack_debug_report_dir: $WORK/reports"
    echo "    conntrack_debug_duration: 1800"
    echo "  children:"
    for size in "${SIZES[@]}"; do
        echo "    n$size:"
        echo "      hosts:"
        for ((i = 1; i <= size; i++)); do echo "        $(name "$i"):"; done
    done
} >"$WORK/inventory.yml"

# ---------------------------------------------------------------- containers
NEED=$((MAX * 8 + 256))
if ((INOTIFY_ORIG < NEED)); then
    log "fs.inotify.max_user_instances $INOTIFY_ORIG -> $NEED (restored on exit)"
    sysctl -q -w fs.inotify.max_user_instances="$NEED"
fi
log "starting $MAX containers"
start_one() {
    podman run -d --name "$1" --hostname "$1" --label "$LABEL" --privileged --systemd=always \
        "$IMAGE" /sbin/init >/dev/null
}
export -f start_one
export IMAGE LABEL
T0=$(date +%s.%N)
for ((i = 1; i <= MAX; i++)); do name "$i"; echo; done | xargs -P 4 -I{} bash -c 'start_one {}'
# Boot, and non-default starting values (so that a restore differs from a reset). community.general.modprobe
# needs a modprobe binary, which the minimal image lacks: a stub (the kernel here has no loadable modules).
prepare_one() {
    [[ -f "$WORK/ssh/id.pub" ]] && podman exec -i "$1" sh -c \
        'mkdir -p -m 0700 /root/.ssh && cat >/root/.ssh/authorized_keys && chmod 0600 /root/.ssh/authorized_keys' \
        <"$WORK/ssh/id.pub"
    podman exec "$1" sh -c '
        systemctl is-system-running --wait >/dev/null 2>&1
        sysctl -q -w net.netfilter.nf_conntrack_log_invalid=17 net.netfilter.nf_log.2=NONE net.netfilter.nf_log.10=NONE
        printf "#!/bin/sh\nexit 0\n" >/usr/local/sbin/modprobe; chmod 0755 /usr/local/sbin/modprobe'
}
export -f prepare_one
export WORK
if over_ssh; then
    mkdir -p "$WORK/ssh" "$WORK/cp"
    ssh-keygen -q -t ed25519 -N '' -C "nfct-fleet-bench-$RUN_ID" -f "$WORK/ssh/id"
fi
for ((i = 1; i <= MAX; i++)); do name "$i"; echo; done | xargs -P 4 -I{} bash -c 'prepare_one {}'
log "$MAX containers up in $(elapsed "$T0") s"
# What the containers hold once booted: the memory that bounds the fleet size on this machine.
echo "memory_containers_mib $(($(free -m | awk '/^Mem:/{print $3}') - MEM_USED_START)) for $MAX containers, $(free -m | awk '/^Mem:/{print $2}') MiB in all" >>"$WORK/meta.txt"
# The same hosts over ssh: the containers' addresses on podman's network, root with the run's key.
if over_ssh; then
    {
        echo "all:"
        echo "  vars:"
        echo "    ansible_connection: ansible.builtin.ssh"
        echo "    ansible_user: root"
        echo "    ansible_become: false"
        echo "    ansible_ssh_private_key_file: $WORK/ssh/id"
        echo "    ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
        echo "    conntrack_debug_report_dir: $WORK/reports"
        echo "    conntrack_debug_duration: 1800"
        echo "  children:"
        for size in "${SIZES[@]}"; do
            echo "    n$size:"
            echo "      hosts:"
            for ((i = 1; i <= size; i++)); do
                echo "        $(name "$i"):"
                echo "          ansible_host: $(podman inspect -f '{{.NetworkSettings.IPAddress}}' "$(name "$i")")"
            done
        done
    } >"$WORK/inventory-ssh.yml"
fi
echo "containers_up_seconds $(elapsed "$T0")" >>"$WORK/meta.txt"

# ---------------------------------------------------------------- helpers
cd "$WORK"
# run LABEL FORKS LIMIT ansible-playbook-arguments...: one timed ansible-playbook run, its stats in stats/LABEL.json.
run() {
    local label="$1" forks="$2" limit="$3"
    shift 3
    local t0 t1
    t0=$(date +%s.%N)
    if ! FLEET_STATS_OUT="$WORK/stats/$label.json" "${PLAYBOOK_CMD:-ansible-playbook}" -i "${INVENTORY:-inventory.yml}" \
        -f "$forks" -l "$limit" "$@" \
        >"$WORK/logs/$label.log" 2>&1; then
        log "FAILED: $label (tail of its log follows)"
        tail -n 40 "$WORK/logs/$label.log" >&2
        return 1
    fi
    t1=$(date +%s.%N)
    printf '%s\t%s\n' "$label" "$(awk "BEGIN{print $t1 - $t0}")" >>"$WORK/times.tsv"
    log "$label: $(awk "BEGIN{printf \"%.1f\", $t1 - $t0}") s"
}
role_cycle() {  # PREFIX FORKS LIMIT [ENABLE-ARGUMENTS...]
    local prefix="$1" forks="$2" limit="$3"
    shift 3
    run "$prefix-enable" "$forks" "$limit" netfilter.conntrack.enable "$@"
    run "$prefix-collect" "$forks" "$limit" netfilter.conntrack.collect
    run "$prefix-revert" "$forks" "$limit" netfilter.conntrack.revert
}
# The role's cycle with enable in one batch, as the floor's ping: no canary, no serial batches (the side "batch").
batch_cycle() {  # PREFIX FORKS LIMIT
    role_cycle "$@" -e conntrack_debug_canary=0 -e conntrack_debug_serial=100%
}
base_cycle() {  # PREFIX FORKS LIMIT
    local phase
    for phase in enable collect revert; do run "$1-$phase" "$2" "$3" "$HERE/baseline.yml" --tags "$phase"; done
}
floor_cycle() {  # PREFIX FORKS LIMIT: the transport floor, 3 x `ansible -m ping` (one per phase of a cycle)
    local n
    for n in 1 2 3; do PLAYBOOK_CMD=ansible run "$1-ping$n" "$2" "$3" all -m ansible.builtin.ping; done
}
# Over ssh: the ssh inventory, pipelining on, and a fresh ControlPath directory per cycle, so that each cycle
# opens its own master connections and reuses them across its three runs (ControlPersist), as a user's would.
ssh_env() {  # LABEL COMMAND...
    local label="$1"
    shift
    mkdir -p "$WORK/cp/$label"
    INVENTORY=inventory-ssh.yml ANSIBLE_PIPELINING=true ANSIBLE_SSH_CONTROL_PATH_DIR="$WORK/cp/$label" "$@"
}
# Under Mitogen: the same, with the Mitogen venv's ansible and the mitogen_linear strategy.
mitogen_env() {  # LABEL COMMAND...
    PATH="$MITOGEN_VENV/bin:$PATH" ANSIBLE_STRATEGY_PLUGINS="$MITOGEN_STRATEGY_DIR" ANSIBLE_STRATEGY=mitogen_linear \
        ANSIBLE_COLLECTIONS_PATH="$WORK/collections:$CONTROLLER_PACKAGES" ssh_env "$@"
}
# on TRANSPORT LABEL COMMAND...: COMMAND over the transport (podman: as it is).
on() {
    local t="$1"
    shift
    case "$t" in
        ssh) ssh_env "$t-$1" "${@:2}" ;;
        mitogen) mitogen_env "$t-$1" "${@:2}" ;;
        *) "${@:2}" ;;
    esac
}
# values TAG SIZE: every net.netfilter value (but the live entry count) of the first SIZE containers.
values_one() {
    podman exec "$1" sysctl -a -r '^net\.netfilter\.' 2>/dev/null | grep -v '^net.netfilter.nf_conntrack_count ' | sort
}
export -f values_one
values() {
    local i
    mkdir -p "$WORK/values/$1"
    for ((i = 1; i <= $2; i++)); do name "$i"; echo; done |
        xargs -P 4 -I{} bash -c "values_one {} >'$WORK/values/$1/{}'"
}
snapshots() {  # TAG SIZE: the role's snapshot files
    local i
    mkdir -p "$WORK/values/$1"
    for ((i = 1; i <= $2; i++)); do
        podman exec "$(name "$i")" cat /run/netfilter-conntrack/init.json >"$WORK/values/$1/$(name "$i")" 2>/dev/null || true
    done
}

values initial "$MAX"

# ---------------------------------------------------------------- 1. cost growth and role vs baseline
# Pairs run back to back, alternating which goes first, so that load from other jobs hits both alike.
LOW_SIZE="${NFCT_FLEET_LOW_FORKS_SIZE:-${SIZES[0]}}"
order=0
prefix() { [[ "$1" == podman ]] || echo "$1-"; }  # TRANSPORT: the prefix of its run labels
# Per size and transport, the role, the baseline and (phase floor) the transport floor, rotating which goes first
# (issue 18 added the floor and the ssh transport to the role/baseline pairs).
rotate() {  # SIZE TRANSPORT
    local size="$1" t="$2" sides=("${SIDES[@]}") k i side
    phase floor && sides+=(floor)
    k=$((order++ % ${#sides[@]}))
    for ((i = 0; i < ${#sides[@]}; i++)); do
        side="${sides[$(((i + k) % ${#sides[@]}))]}"
        on "$t" "$side-n$size" "${side}_cycle" "$(prefix "$t")$side-n$size-f$FORKS" "$FORKS" "n$size"
    done
}
phase scale && for size in "${SIZES[@]}"; do
    for t in "${TRANSPORTS[@]}"; do rotate "$size" "$t"; done
done
if phase scale; then
    values after-cycles "$MAX"
fi
if phase scale && ((LOW_FORKS > 0)); then  # NFCT_FLEET_LOW_FORKS=0 leaves the low-forks pair out
    role_cycle "role-n$LOW_SIZE-f$LOW_FORKS" "$LOW_FORKS" "n$LOW_SIZE"
    base_cycle "base-n$LOW_SIZE-f$LOW_FORKS" "$LOW_FORKS" "n$LOW_SIZE"
fi

# ---------------------------------------------------------------- 1b. enable on fresh hosts against installed ones
# The program removed from the first size's hosts before the "fresh" enable; the "installed" enable finds the copy
# the previous enable installed. Each is followed by a revert; which goes first alternates from round to round.
remove_program() {  # SIZE
    local i
    for ((i = 1; i <= $1; i++)); do
        podman exec "$(name "$i")" rm -f /usr/local/libexec/netfilter-conntrack/conntrack-debug-window.pyz
    done
}
fresh_pair() {  # LABEL-PREFIX SIZE ROUND
    local prefix="$1" size="$2" round="$3" kind
    for kind in $( ((round % 2)) && echo "fresh installed" || echo "installed fresh"); do
        [[ "$kind" == fresh ]] && remove_program "$size"
        run "$prefix-r$round-enable-$kind" "$FORKS" "n$size" netfilter.conntrack.enable
        run "$prefix-r$round-revert-$kind" "$FORKS" "n$size" netfilter.conntrack.revert
    done
}
if phase fresh; then
    for t in "${TRANSPORTS[@]}"; do
        for ((round = 1; round <= FRESH_ROUNDS; round++)); do
            on "$t" "fresh-r$round" fresh_pair "$(prefix "$t")fresh-n${SIZES[0]}" "${SIZES[0]}" "$round"
        done
    done
fi

# ---------------------------------------------------------------- 2. idempotent second enable
if phase idem; then
values before-enable "$MAX"
run "idem-n$MAX-enable1" "$FORKS" "n$MAX" netfilter.conntrack.enable
values after-enable1 "$MAX"
snapshots snap1 "$MAX"
sleep 2  # so that a refreshed deadline is visible
run "idem-n$MAX-enable2" "$FORKS" "n$MAX" netfilter.conntrack.enable
values after-enable2 "$MAX"
snapshots snap2 "$MAX"
run "idem-n$MAX-revert" "$FORKS" "n$MAX" netfilter.conntrack.revert
values after-revert "$MAX"
fi

# ---------------------------------------------------------------- 3. pipelining off/on (10 hosts)
PIPE_SIZE="${SIZES[0]}"
# The role only: containers.podman.podman declares no pipelining support, so the setting cannot change anything
# for either side; this run shows it (ssh connections are where pipelining counts, see the notes).
phase pipe && ANSIBLE_PIPELINING=true role_cycle "pipe-on-role-n$PIPE_SIZE-f$FORKS" "$FORKS" "n$PIPE_SIZE"

# ---------------------------------------------------------------- 4. collect payload at 0, 1,000, 100,000 lines
PAY_HOSTS=1  # the payload per host does not depend on the fleet size
if phase payload; then
run "payload-enable" "$FORKS" "n${SIZES[0]}[0:$((PAY_HOSTS - 1))]" netfilter.conntrack.enable
for lines in 0 1000 100000; do
    for ((i = 1; i <= PAY_HOSTS; i++)); do
        podman exec -i "$(name "$i")" python3 - "$lines" /run/fleet-bench-kern.log <"$HERE/make_log.py" \
            >"$WORK/values/logsize-$lines"
    done
    run "payload-role-$lines" "$FORKS" "n${SIZES[0]}[0:$((PAY_HOSTS - 1))]" "$HERE/collect_file.yml"
    cp "$WORK/reports/$(name 1).json" "$WORK/values/report-$lines.json"
    run "payload-base-$lines" "$FORKS" "n${SIZES[0]}[0:$((PAY_HOSTS - 1))]" "$HERE/baseline.yml" --tags collect \
        -e '{"baseline_kernel_log_cmd": "cat /run/fleet-bench-kern.log"}'
done
run "payload-revert" "$FORKS" "n${SIZES[0]}[0:$((PAY_HOSTS - 1))]" netfilter.conntrack.revert
fi

# ---------------------------------------------------------------- report
{
    echo "machine $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'))," \
        "$(free -g | awk '/^Mem:/{print $2}') GiB, kernel $(uname -r)"
    echo "controller $("$VENV/bin/ansible" --version | head -1), $("$VENV/bin/python" --version)," \
        "ansible $("$VENV/bin/pip" show ansible 2>/dev/null | awk '/^Version/{print $2}')"
    echo "podman $(podman --version | awk '{print $3}'), runtime runc; image $IMAGE"
    transport mitogen && echo "mitogen mitogen $MITOGEN_VERSION, $("$MITOGEN_VENV/bin/ansible" --version | head -1)"
    over_ssh && echo "ssh $(ssh -V 2>&1 | cut -d, -f1) on the controller, $(podman exec "$(name 1)" sh -c 'sshd -V 2>&1 | head -1; dpkg-query -W -f "openssh-server \${Version}" openssh-server' | tail -1) in the containers"
    read -r -a phase_words <<<"$PHASES"
    echo "reproduce NFCT_FLEET_SIZES=\"${SIZES[*]}\" NFCT_FLEET_TRANSPORTS=\"${TRANSPORTS[*]}\" NFCT_FLEET_PHASES=\"${phase_words[*]}\" NFCT_FLEET_SIDES=\"${SIDES[*]}\" NFCT_FLEET_FORKS=$FORKS NFCT_FLEET_LOW_FORKS=$LOW_FORKS bench/fleet/run.sh"
    echo "date $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "load_start $LOAD_START"
    echo "load_end $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "bench_seconds $(($(date +%s) - BENCH_T0))"
} >>"$WORK/meta.txt"
ARGS=("$WORK" --forks "$FORKS" --low-forks "$LOW_FORKS" --low-forks-size "$LOW_SIZE" --sizes "${SIZES[@]}"
    --transports "${TRANSPORTS[@]}")
((WRITE)) && ARGS+=(--write "$ROOT/docs/benchmarks.md")
ARGS+=(--notes "$HERE/NOTES.md")
"$VENV/bin/python" "$HERE/report.py" "${ARGS[@]}"
log "done in $(($(date +%s) - BENCH_T0)) s"
