#!/usr/bin/env bash
# Kernel matrix: run the collection's integration targets, capability probes and the debug role's
# enable -> collect -> revert cycle, the netlink capture and the verdicts on Debian's 5.10, 6.1, 6.12 and 6.18
# kernels (qemu guests, tests/vm/vm.sh)
# and on this machine's own kernel ("host": locally, in network namespaces, no qemu), then generate
# docs/compatibility.md from the evidence (tests/vm/compatibility.py). See tests/vm/MATRIX.md.
#
# Usage: matrix.sh [KERNEL...]        (default: 5.10 6.1 6.12 6.18 host)
#
# Per guest kernel two jobs run, each in its own guest: the integration targets (tests/vm/run-integration.sh)
# and the probes + role cycle (tests/vm/playbooks/capabilities.yml, role_cycle.yml). At most
# MATRIX_JOBS (default 2) guests run at once; the host column runs alongside them.
# Exit status: 0 when every cell of the table passed, 1 otherwise, 2 for usage errors.
#
# Environment: MATRIX_RESULTS (default tests/output/vm-matrix), MATRIX_JOBS, MATRIX_TARGETS_VM and
# MATRIX_TARGETS_HOST (target lists; empty skips the targets there), MATRIX_DOCS (default docs/compatibility.md; empty: do not write),
# MATRIX_FIXTURES=1 (copy the captured invalid-log lines to the unit-test fixtures, new files only),
# ANSIBLE_BIN (directory of ansible-playbook; default ~/.cache/netfilter-conntrack/venv-2.19/bin when it exists),
# plus everything vm.sh and run-integration.sh read.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
readonly SCRIPT_DIR REPO_ROOT
CACHE="${NFCT_CACHE_DIR:-$HOME/.cache/netfilter-conntrack}"
ANSIBLE_BIN="${ANSIBLE_BIN:-$CACHE/venv-2.19/bin}"
[[ -x "$ANSIBLE_BIN/ansible-playbook" ]] && export PATH="$ANSIBLE_BIN:$PATH"
# Absolute: the playbooks write their evidence from another working directory.
RESULTS="$(realpath -m "${MATRIX_RESULTS:-$REPO_ROOT/tests/output/vm-matrix}")"
JOBS="${MATRIX_JOBS:-2}"
# An empty MATRIX_TARGETS_VM / MATRIX_TARGETS_HOST skips the integration targets there.
TARGETS="conntrack_log_invalid nf_log_backend dynamic_debug_site conntrack_lists_facts conntrack_invalid_log_facts"
TARGETS_VM="${MATRIX_TARGETS_VM-$TARGETS}"
TARGETS_HOST="${MATRIX_TARGETS_HOST-$TARGETS role_debug_netns}"
DOCS="${MATRIX_DOCS-$REPO_ROOT/docs/compatibility.md}"

log() { printf '[matrix %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

kernels=("$@")
((${#kernels[@]})) || kernels=(5.10 6.1 6.12 6.18 host)
for k in "${kernels[@]}"; do
    [[ "$k" =~ ^[A-Za-z0-9_.+-]+$ ]] || { log "bad kernel name '$k'"; exit 2; }
done
command -v ansible-playbook >/dev/null || { log "ansible-playbook not found (set ANSIBLE_BIN)"; exit 2; }
((EUID == 0)) || { log "run as root (namespaces, qemu images, sysctls)"; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/nfct-matrix.XXXXXX")"
pids=()
VM=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local rc=$? pid
    for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    # Guests of the probe jobs (run-integration.sh stops its own).
    for k in "${kernels[@]}"; do
        [[ "$k" == host || -z "$VM" ]] || NFCT_VM_INSTANCE=mx "$VM" stop "$k" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A snapshot of this checkout as the netfilter.conntrack collection (works from a clean clone, and
# edits made while the matrix runs do not mix into it).
collection="$work/tree/ansible_collections/netfilter/conntrack"
mkdir -p "$collection"
tar -C "$REPO_ROOT" --exclude=./.git --exclude=./tests/output -cf - . | tar -C "$collection" -xf -
VM="$collection/tests/vm/vm.sh"
export ANSIBLE_COLLECTIONS_PATH="$work/tree"
export ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_RETRY_FILES_ENABLED=False ANSIBLE_NOCOLOR=1
export ANSIBLE_PIPELINING=True ANSIBLE_DEPRECATION_WARNINGS=False
# Under TCG on a busy 2-core host a guest can take minutes to answer ssh (vm.sh waits 180 s by default).
export NFCT_VM_TIMEOUT="${NFCT_VM_TIMEOUT:-420}"
# Two vCPUs per guest: enable waits for the capture collector it starts (at most 15 s, _window_capture.py), polling
# beside it; with one TCG vCPU on a loaded 2-core machine the collector's start took longer than that (6.1 guest,
# load 11: enable failed twice; with two vCPUs both windows started).
export NFCT_VM_SMP="${NFCT_VM_SMP:-2}"

rm -rf "$RESULTS"
mkdir -p "$RESULTS"
run_start=$SECONDS
started="$(date -u '+%Y-%m-%d %H:%M:%S')"
commit="$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || true)"
dirty="$(git -C "$REPO_ROOT" status --porcelain --untracked-files=no 2>/dev/null | wc -l || true)"

# meta-<job>.json: {"package", "release", "phases": {...}, "targets": {...}}
write_meta() { # label job package release phase seconds targets_json
    python3 - "$RESULTS/$1/meta-$2.json" "$3" "$4" "$5" "$6" "$7" <<'PY'
import json, sys
path, package, release, phase, seconds, targets = sys.argv[1:]
json.dump({"package": package or None, "release": release or None, "phases": {phase: int(seconds)},
           "targets": json.loads(targets or "{}")}, open(path, "w"), indent=1)
PY
}

targets_json() { # stderr-log of run-integration.sh / the host loop
    python3 - "$1" <<'PY'
import json, re, sys
out = {}
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r"\b(PASS|FAIL) (\S+) \((\d+) s\)", line)
    if m:
        out[m.group(2)] = {"status": m.group(1).lower(), "seconds": int(m.group(3))}
print(json.dumps(out))
PY
}

# Integration targets in a guest, through run-integration.sh (it starts and stops its own guest).
job_targets_vm() {
    local k="$1" dir="$RESULTS/$1" t0=$SECONDS pkg
    mkdir -p "$dir"
    # shellcheck disable=SC2086 # a list of target names
    "$collection/tests/vm/run-integration.sh" "$k" $TARGETS_VM >"$dir/targets.log" 2>"$dir/targets.err" || true
    pkg="$(sed -n 's/.*prepared \(\S*\) (kernel \(\S*\)).*/\1/p' "$dir/targets.err" | head -n1)"
    write_meta "$k" targets "$pkg" "" "targets" "$((SECONDS - t0))" "$(targets_json "$dir/targets.err")"
    log "$k: integration targets done in $((SECONDS - t0)) s: $(grep -Eo '(PASS|FAIL) \S+' "$dir/targets.err" | tr '\n' ' ')"
}

# Probes and the role cycle in a guest of its own (instance "mx", so it may run beside the targets' guest).
job_probes_vm() {
    local k="$1" dir="$RESULTS/$1" t0=$SECONDS inventory pkg release rc=0
    mkdir -p "$dir"
    # A loaded host can take minutes to answer ssh under TCG: a longer timeout, and one more try.
    if ! inventory="$(NFCT_VM_TIMEOUT="${NFCT_VM_TIMEOUT:-420}" NFCT_VM_INSTANCE=mx "$VM" start "$k" 2>"$dir/probes-vm.err" | tail -n 1)" \
        || [[ ! -f "$inventory" ]]; then
        log "$k: guest did not answer, trying once more"
        NFCT_VM_INSTANCE=mx "$VM" stop "$k" >/dev/null 2>&1 || true
        inventory="$(NFCT_VM_TIMEOUT="${NFCT_VM_TIMEOUT:-420}" NFCT_VM_INSTANCE=mx "$VM" start "$k" 2>>"$dir/probes-vm.err" | tail -n 1)" || true
    fi
    if [[ ! -f "$inventory" ]]; then
        log "$k: guest did not start (see $dir/probes-vm.err)"
        write_meta "$k" probes "" "" "probes+role" "$((SECONDS - t0))" "{}"
        return 0
    fi
    local boot=$((SECONDS - t0))
    # ansible-playbook gets a stdin of its own: qemu, started from the same shell, may have made the shared one
    # non-blocking, which ansible-core 2.19 refuses.
    # The auto-load check first (it needs a kernel on which no logger is registered yet, and unloads what it
    # loaded), then the role: on a fresh modular kernel its enable is what loads nf_conntrack. The table-full
    # and ring-buffer plays change global state (nf_conntrack_max, the whole kernel log): guests only; so does the
    # table-full case of the verdicts.
    local p="$collection/tests/vm/playbooks"
    ansible-playbook -i "$inventory" "$p/autoload.yml" "$p/role_cycle.yml" "$p/capabilities.yml" "$p/table_full.yml" \
        "$p/ring_wrap.yml" "$p/capture.yml" "$p/verdicts.yml" -e "mx_results_dir=$RESULTS" -e "mx_label=$k" -e mx_guest=true \
        </dev/null >"$dir/probes.log" 2>&1 || rc=$?
    NFCT_VM_INSTANCE=mx "$VM" stop "$k" >>"$dir/probes-vm.err" 2>&1 || true
    pkg="$(sed -n 's/.*prepared \(\S*\) (kernel \(\S*\)).*/\1/p' "$dir/probes-vm.err" | head -n1)"
    release="$(sed -n 's/.*prepared \(\S*\) (kernel \(\S*\)).*/\2/p' "$dir/probes-vm.err" | head -n1)"
    write_meta "$k" probes "$pkg" "$release" "probes+role (boot ${boot} s)" "$((SECONDS - t0))" "{}"
    log "$k: probes and role cycle done in $((SECONDS - t0)) s (ansible-playbook rc=$rc)"
}

# The host column: this machine's kernel, locally, in namespaces the targets and playbooks create.
job_host() {
    local dir="$RESULTS/host" t0 target rc=0 inv="$work/host.ini"
    mkdir -p "$dir"
    printf '[nfct_vms]\nhost-%s ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n' \
        "$(uname -r | cut -d. -f1,2)" >"$inv"
    t0=$SECONDS
    : >"$dir/targets.err"
    for target in $TARGETS_HOST; do  # may be empty
        local t1=$SECONDS play="$work/host-$target.yml"
        printf -- '---\n- name: Integration target %s\n  hosts: nfct_vms\n  gather_facts: false\n  tasks:\n    - name: Run %s\n      ansible.builtin.include_role:\n        name: %s\n' \
            "$target" "$target" "$target" >"$play"
        if ANSIBLE_ROLES_PATH="$collection/tests/integration/targets" ansible-playbook -i "$inv" "$play" </dev/null >>"$dir/targets.log" 2>&1; then
            echo "PASS $target ($((SECONDS - t1)) s)" >>"$dir/targets.err"
        else
            echo "FAIL $target ($((SECONDS - t1)) s)" >>"$dir/targets.err"
        fi
    done
    write_meta host targets "" "" "targets" "$((SECONDS - t0))" "$(targets_json "$dir/targets.err")"
    log "host: integration targets done in $((SECONDS - t0)) s: $(grep -Eo '(PASS|FAIL) \S+' "$dir/targets.err" | tr '\n' ' ')"
    t0=$SECONDS
    # Without mx_guest, table_full.yml, ring_wrap.yml and verdicts.yml change nothing here and record why.
    local p="$collection/tests/vm/playbooks"
    ansible-playbook -i "$inv" "$p/autoload.yml" "$p/capabilities.yml" "$p/role_cycle.yml" "$p/table_full.yml" \
        "$p/ring_wrap.yml" "$p/capture.yml" "$p/verdicts.yml" -e "mx_results_dir=$RESULTS" -e "mx_label=host" \
        </dev/null >"$dir/probes.log" 2>&1 || rc=$?
    write_meta host probes "" "$(uname -r)" "probes+role" "$((SECONDS - t0))" "{}"
    log "host: probes and role cycle done in $((SECONDS - t0)) s (ansible-playbook rc=$rc)"
}

# Build the guests' images first (cached after the first run), one at a time.
for k in "${kernels[@]}"; do
    [[ "$k" == host ]] && continue
    t0=$SECONDS
    "$VM" prepare "$k" >/dev/null 2>"$work/prepare-$k.err" || { log "prepare $k failed:"; tail -n 20 "$work/prepare-$k.err" >&2; exit 1; }
    ((SECONDS - t0 > 2)) && log "$k: prepared in $((SECONDS - t0)) s"
done

# The queue: the probes (the table's core) first, then the targets; at most $JOBS guests at a time;
# the host job does not take a slot.
queue=()
for k in "${kernels[@]}"; do [[ "$k" == host ]] || queue+=("probes:$k"); done
if [[ -n "${TARGETS_VM// /}" ]]; then
    for k in "${kernels[@]}"; do [[ "$k" == host ]] || queue+=("targets:$k"); done
fi
host_pid=""
if [[ " ${kernels[*]} " == *" host "* ]]; then
    set -m; job_host & host_pid=$!; set +m
    pids+=("$host_pid")
fi
running=()
for job in "${queue[@]}"; do
    while ((${#running[@]} >= JOBS)); do
        wait -n "${running[@]}" 2>/dev/null || true
        alive=()
        for pid in "${running[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
        running=("${alive[@]}")
    done
    log "start ${job%%:*} ${job#*:}"
    set -m
    case "$job" in
        targets:*) job_targets_vm "${job#*:}" & ;;
        probes:*) job_probes_vm "${job#*:}" & ;;
    esac
    set +m
    running+=("$!")
    pids+=("$!")
done
wait || true
pids=()

total=$((SECONDS - run_start))
python3 - "$RESULTS/run.json" "$total" "$commit" "$dirty" "$started" "${kernels[@]}" <<'PY'
import datetime, json, sys
path, total, commit, dirty, started, *kernels = sys.argv[1:]
json.dump({"kernels": kernels, "seconds": int(total), "commit": commit or None, "started": started,
           "tree_note": f"{dirty} uncommitted tracked change(s) included" if dirty not in ("", "0") else "",
           "finished": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")},
          open(path, "w"), indent=1)
PY
log "all jobs done in $total s; results in $RESULTS"

if [[ "${MATRIX_FIXTURES:-0}" == 1 ]]; then
    fixtures="$REPO_ROOT/tests/unit/plugins/module_utils/fixtures/invalid_log"
    for k in "${kernels[@]}"; do
        release="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["probe_before"]["release"])' "$RESULTS/$k/capabilities.json" 2>/dev/null || true)"
        [[ -n "$release" && -s "$RESULTS/$k/invalid_log.txt" ]] || continue
        dest="$fixtures/dmesg-$release.txt"
        if [[ -e "$dest" ]]; then log "fixture $dest exists: left alone"; else cp "$RESULTS/$k/invalid_log.txt" "$dest"; log "wrote $dest"; fi
    done
    # The table-full lines, with a header saying where they come from (the unit tests skip # lines).
    for k in "${kernels[@]}"; do
        python3 - "$RESULTS/$k" "$fixtures" <<'PY' || true
import json, os, sys
results, fixtures = sys.argv[1:]
try:
    caps = json.load(open(os.path.join(results, "capabilities.json")))
    full = json.load(open(os.path.join(results, "table_full.json")))
    meta = json.load(open(os.path.join(results, "meta-probes.json")))
except (OSError, ValueError):
    sys.exit(0)
release = caps["probe_before"]["release"]
lines = [line for line in full.get("lines") or [] if "table full" in line]
dest = os.path.join(fixtures, f"table-full-{release}.txt")
if full.get("skipped") or not lines:
    sys.exit(0)
if os.path.exists(dest):
    print(f"[matrix] fixture {dest} exists: left alone", file=sys.stderr)
    sys.exit(0)
inum = next((l.split("=", 1)[1] for l in full.get("setup", "").splitlines() if l.startswith("inum=")), "?")
with open(dest, "w", encoding="utf-8") as handle:
    handle.write(f"# Real dmesg lines of a qemu guest running Debian {meta.get('package') or release} (tests/vm/matrix.sh,"
                 f" playbooks/table_full.yml):\n# nf_conntrack_max lowered to {full.get('max')}, {full.get('connections')} TCP"
                 f" connections opened in a child namespace (inode {inum}).\n")
    handle.write("\n".join(lines) + "\n")
print(f"[matrix] wrote {dest}", file=sys.stderr)
PY
    done
fi

rc=0
if [[ -n "$DOCS" ]]; then
    python3 "$SCRIPT_DIR/compatibility.py" "$RESULTS" --output "$DOCS" || rc=$?
else
    python3 "$SCRIPT_DIR/compatibility.py" "$RESULTS" --output "$RESULTS/compatibility.md" || rc=$?
fi
log "total $((SECONDS - run_start)) s"
exit "$rc"
