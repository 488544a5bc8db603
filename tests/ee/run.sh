#!/usr/bin/env bash
# Run the collection's enable, collect and revert in its execution environment through ansible-runner, the way
# AWX runs job templates (issue 18), against podman containers reached over ssh, then build the fleet summary
# from the fact cache alone.
#   tests/ee/run.sh     (as root; make ee-test builds the EE first)
# What AWX does for a job, done here for each job:
#   - a private data directory per job: project/ (the one-line playbooks of docs/awx.md), inventory/ (the job's
#     hosts: with slicing, the slice's), env/extravars (the template's extra variables), env/envvars (the fact
#     cache: jsonfile in the private data directory), env/ssh_key (the machine credential; runner loads it into
#     an ssh-agent inside the EE);
#   - before the run, each host's stored facts written into the jsonfile cache ("the fact cache passed in");
#     after it, the cache entries the run changed saved back to the store ("read back"), $WORK/facts-db here
#     (tests/ee/factcache.py: ansible-core 2.19 names its entries s1_<host> and wraps them);
#   - `ansible-runner run --process-isolation --container-image EE`: ansible-playbook inside the EE container,
#     which is removed afterwards, with the report files the role wrote on its controller side.
# Job slicing: each of enable, collect and revert runs as NFCT_EE_SLICES jobs in parallel, each its own runner
# instance; slice k of n gets hosts k, k+n, k+2n... (AWX's rule). Then one job, fleet_summary.yml
# (netfilter.conntrack.fleet_summary) over every host, with the whole store passed in: it must name every host.
# Checks: every job successful; the marker fact written to the store before the run survives; every host's
# conntrack_debug_report is in the store after collect, and each collect slice's reports are in its job's artifact
# directory; the summary (job output, and its file in the job's artifact directory) names every host;
# after revert every net.netfilter value of every container equals the value before enable and no snapshot is
# left. Prints a summary line with the duration. Removes its containers and restores fs.inotify on any exit.
# Environment: NFCT_EE_IMAGE, NFCT_EE_HOSTS (6), NFCT_EE_SLICES (3), ANSIBLE_RUNNER, NFCT_EE_KEEP=1 (keep $WORK).
# Copyright (c) 2026, netfilter.conntrack contributors
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${NFCT_CACHE_DIR:-$HOME/.cache/netfilter-conntrack}"
VERSION="$(sed -n 's/^version: *//p' "$ROOT/galaxy.yml")"
IMAGE="${NFCT_EE_IMAGE:-localhost/netfilter-conntrack-ee:$VERSION}"
TARGET_IMAGE="${NFCT_SSHD_IMAGE:-localhost/netfilter-conntrack-debian-sshd:bookworm}"
HOSTS="${NFCT_EE_HOSTS:-6}"
SLICES="${NFCT_EE_SLICES:-3}"
RUNNER="${ANSIBLE_RUNNER:-$CACHE/venv-ee/bin/ansible-runner}"
RUN_ID="$$"
LABEL="nfct-ee-test=$RUN_ID"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$ROOT/extensions/molecule/containers.conf}"

log() { printf '[ee-test %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }
T_START=$(date +%s)

podman image exists "$IMAGE" || fail "$IMAGE is missing: tests/ee/build.sh (make ee-test) builds it"
"$ROOT/bench/fleet/build-sshd-image.sh"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/nfct-ee-run.XXXXXX")"
INOTIFY_ORIG="$(sysctl -n fs.inotify.max_user_instances)"
cleanup() {
    local rc=$?
    set +e
    podman ps -aq --filter "label=$LABEL" | xargs -r podman rm -f -t 0 >/dev/null 2>&1
    podman ps -aq --filter "name=^ansible_runner_nfct-ee-$RUN_ID-" | xargs -r podman rm -f -t 0 >/dev/null 2>&1
    sysctl -q -w fs.inotify.max_user_instances="$INOTIFY_ORIG"
    if [[ "${NFCT_EE_KEEP:-0}" == 1 ]]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- targets: systemd containers running sshd
NEED=$((HOSTS * 8 + 256))
((INOTIFY_ORIG >= NEED)) || sysctl -q -w fs.inotify.max_user_instances="$NEED"
mkdir -p "$WORK/ssh" "$WORK/facts-db" "$WORK/values" "$WORK/jobs" "$WORK/project"
ssh-keygen -q -t ed25519 -N '' -C "nfct-ee-test-$RUN_ID" -f "$WORK/ssh/id"
name() { printf 'nfct-ee-%02d' "$1"; }
ALL=()
for ((i = 1; i <= HOSTS; i++)); do ALL+=("$(name "$i")"); done
log "starting ${#ALL[@]} target containers"
for host in "${ALL[@]}"; do
    podman run -d --name "$host" --hostname "$host" --label "$LABEL" --privileged --systemd=always \
        "$TARGET_IMAGE" /sbin/init >/dev/null
done
for host in "${ALL[@]}"; do
    podman exec -i "$host" sh -c 'mkdir -p -m 0700 /root/.ssh && cat >/root/.ssh/authorized_keys' <"$WORK/ssh/id.pub"
    podman exec "$host" sh -c 'systemctl is-system-running --wait >/dev/null 2>&1
        sysctl -q -w net.netfilter.nf_conntrack_log_invalid=17 net.netfilter.nf_log.2=NONE net.netfilter.nf_log.10=NONE'
done
values() {  # TAG: every net.netfilter value (but the live count) of every target, and its snapshot files
    local host
    mkdir -p "$WORK/values/$1"
    for host in "${ALL[@]}"; do
        podman exec "$host" sh -c "sysctl -a -r '^net\.netfilter\.' 2>/dev/null | grep -v '^net.netfilter.nf_conntrack_count ' | sort
            ls /run/netfilter-conntrack 2>/dev/null | sed 's/^/snapshot /'" >"$WORK/values/$1/$host"
    done
}
values before

# ---------------------------------------------------------------- the AWX project and the fact store
for playbook in enable collect revert fleet_summary; do
    printf -- '---\n- name: conntrack %s\n  ansible.builtin.import_playbook: netfilter.conntrack.%s\n' \
        "$playbook" "$playbook" >"$WORK/project/$playbook.yml"
done
# Facts AWX already holds for each host from earlier jobs: a marker that must survive every job.
for host in "${ALL[@]}"; do
    printf '{"awx_marker": "stored before the workflow (%s)"}\n' "$host" >"$WORK/facts-db/$host"
done

# job NAME PLAYBOOK HOST...: one AWX job as one ansible-runner instance in the EE; returns runner's status.
job() {
    local job_name="$1" playbook="$2" pdd host t0
    shift 2
    pdd="$WORK/jobs/$job_name"
    mkdir -p "$pdd/project" "$pdd/inventory" "$pdd/env" "$pdd/fact_cache"
    cp "$WORK/project/"*.yml "$pdd/project/"
    {
        echo "all:"
        echo "  vars:"
        echo "    ansible_user: root"
        echo "    ansible_become: false  # root already; the targets have no sudo (an AWX credential would become)"
        echo "    ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
        echo "  hosts:"
        for host in "$@"; do
            echo "    $host:"
            echo "      ansible_host: $(podman inspect -f '{{.NetworkSettings.IPAddress}}' "$host")"
        done
    } >"$pdd/inventory/hosts.yml"
    # The template's extra variables. The report directory is left at its relative default: under ansible-runner the
    # role puts it in the job's artifact directory (AWX_ISOLATED_DATA_DIR, /runner/artifacts/<ident> in the EE),
    # which runner keeps in the private data directory when the container is gone.
    printf 'conntrack_debug_duration: 900\n' >"$pdd/env/extravars"
    printf 'ANSIBLE_CACHE_PLUGIN: jsonfile\nANSIBLE_CACHE_PLUGIN_CONNECTION: /runner/fact_cache\nANSIBLE_CACHE_PLUGIN_TIMEOUT: 0\nANSIBLE_FORCE_COLOR: "false"\n' \
        >"$pdd/env/envvars"
    cp "$WORK/ssh/id" "$pdd/env/ssh_key"
    # The fact cache passed in: the store's facts of this job's hosts (AWX: start_fact_cache).
    python3 "$HERE/factcache.py" pass-in "$WORK/facts-db" "$pdd/fact_cache" "$@"
    sleep 1  # mtime granularity: what the run writes is newer than the stamp
    chmod -R a+rwX "$pdd"
    t0=$(date +%s.%N)
    # The EE's user is uid 1000; runner (as root here) makes the ssh_key_data fifo root-only, so the job runs as
    # root in the container (AWX runs podman as its own user, with the files that user's).
    "$RUNNER" run "$pdd" -p "$playbook" --ident "$job_name" --process-isolation \
        --process-isolation-executable podman --container-image "$IMAGE" --container-option=--user=0 \
        >"$pdd/runner.log" 2>&1 || true
    printf '%s\t%.1f\n' "$job_name" "$(awk "BEGIN{print $(date +%s.%N) - $t0}")" >>"$WORK/times.tsv"
    # Read back (AWX: finish_fact_cache): the cache entries this run wrote.
    python3 "$HERE/factcache.py" read-back "$WORK/facts-db" "$pdd/fact_cache" "$@" >"$pdd/read-back.log"
    cat "$pdd/artifacts/$job_name/status" 2>/dev/null || echo missing
}
# sliced PHASE: the phase's job template with job slicing, its slices in parallel; fails unless all succeeded.
sliced() {
    local phase="$1" k i slice_hosts pids=() status
    local t0
    t0=$(date +%s.%N)
    for ((k = 1; k <= SLICES; k++)); do
        slice_hosts=()
        for ((i = k - 1; i < HOSTS; i += SLICES)); do slice_hosts+=("${ALL[$i]}"); done
        job "nfct-ee-$RUN_ID-$phase-slice$k" "$phase.yml" "${slice_hosts[@]}" >"$WORK/jobs/$phase-slice$k.status" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i"; done
    log "$phase: $SLICES slices in $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}") s:" \
        "$(for ((k = 1; k <= SLICES; k++)); do printf 'slice %d %s; ' "$k" "$(cat "$WORK/jobs/$phase-slice$k.status")"; done)"
    for ((k = 1; k <= SLICES; k++)); do
        status="$(cat "$WORK/jobs/$phase-slice$k.status")"
        if [[ "$status" != successful ]]; then
            tail -n 40 "$WORK/jobs/nfct-ee-$RUN_ID-$phase-slice$k/runner.log" >&2
            fail "$phase slice $k: $status"
        fi
    done
}

# ---------------------------------------------------------------- the workflow
sliced enable
values enabled
sliced collect
for host in "${ALL[@]}"; do
    python3 - "$WORK/facts-db/$host" "$host" <<'PY' || fail "the store has no collect report for $host"
import json, sys
facts = json.load(open(sys.argv[1]))
assert facts.get("awx_marker"), "the fact stored before the workflow is gone"
assert facts["conntrack_debug_report"]["host"] == sys.argv[2], facts.get("conntrack_debug_report", {}).get("host")
PY
done
log "collect: every host's conntrack_debug_report is in the fact store, next to the marker stored before"
# Where the reports landed: each collect slice's in its own job's artifact directory, one JSON per host of the
# slice and the slice's fleet summary naming exactly those hosts.
for ((k = 1; k <= SLICES; k++)); do
    slice_job="nfct-ee-$RUN_ID-collect-slice$k"
    slice_hosts=()
    for ((i = k - 1; i < HOSTS; i += SLICES)); do slice_hosts+=("${ALL[$i]}"); done
    python3 - "$WORK/jobs/$slice_job/artifacts/$slice_job/conntrack-debug-reports" "${slice_hosts[@]}" <<'PY' ||
import json, os, sys
reports, hosts = sys.argv[1], sys.argv[2:]
summary = json.load(open(os.path.join(reports, "fleet-summary.json")))
assert sorted(summary["hosts"]) == sorted(hosts), (summary["hosts"], hosts)
for host in hosts:
    assert json.load(open(os.path.join(reports, host + ".json")))["host"] == host, host
PY
        fail "collect slice $k: the reports are not in the job's artifact directory ($slice_job/conntrack-debug-reports)"
done
log "collect: each slice's reports and fleet summary are in its job's artifact directory"
sliced revert
values after

# The last node: the fleet summary from the store alone, one job over every host.
summary_job="nfct-ee-$RUN_ID-fleet_summary"
status="$(job "$summary_job" fleet_summary.yml "${ALL[@]}")"
[[ "$status" == successful ]] || { tail -n 40 "$WORK/jobs/$summary_job/runner.log" >&2; fail "fleet summary: $status"; }
python3 - "$WORK/jobs/$summary_job" "${ALL[@]}" <<'PY' || fail "the fleet summary does not name every host"
import glob, json, os, sys
pdd, hosts = sys.argv[1], sys.argv[2:]
summary = json.load(open(os.path.join(pdd, "artifacts", os.path.basename(pdd), "conntrack-debug-reports", "fleet-summary.json")))
assert sorted(summary["hosts"]) == sorted(hosts), (summary["hosts"], hosts)
# The job's output, which AWX keeps when the container is gone: the debug task's event carries the summary.
shown = None
for path in glob.glob(os.path.join(pdd, "artifacts", "*", "job_events", "*.json")):
    event = json.load(open(path))
    res = event.get("event_data", {}).get("res", {})
    if event.get("event") == "runner_on_ok" and isinstance(res.get("msg"), dict) and "hosts" in res["msg"]:
        shown = res["msg"]
assert shown is not None and sorted(shown["hosts"]) == sorted(hosts), shown
print("fleet summary names %d hosts: %s" % (len(hosts), ", ".join(sorted(shown["hosts"]))))
PY
cp "$WORK/jobs/$summary_job/artifacts/$summary_job/conntrack-debug-reports/fleet-summary.json" "$WORK/fleet-summary.json"

# ---------------------------------------------------------------- every host back as it was
for host in "${ALL[@]}"; do
    diff -u "$WORK/values/before/$host" "$WORK/values/after/$host" >&2 || fail "$host differs after revert"
    cmp -s "$WORK/values/before/$host" "$WORK/values/enabled/$host" && fail "$host: enable changed nothing"
done
log "revert: every net.netfilter value of the ${#ALL[@]} targets is back, no snapshot left"
log "passed: $HOSTS hosts, $SLICES slices, $(($(date +%s) - T_START)) s in all; EE $IMAGE"
sort "$WORK/times.tsv" >&2
