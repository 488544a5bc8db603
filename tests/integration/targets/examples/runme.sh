#!/usr/bin/env bash
# Run every module's EXAMPLES and every playbook in a role's README (files/examples.py writes them, and says
# what it changed to make them runnable here), in two throwaway network namespaces of this host.
set -euo pipefail

netns=nfct-ex-$$
pid_netns=nfct-ex-pid-$$
scratch=$(mktemp -d)
sleeper=
cleanup() {
  # A window an example left open (a failure between enable and revert) is reverted with the same private
  # state and program directories before its namespace goes away.
  if [ -x "$scratch/program/conntrack-debug-window.pyz" ] || [ -d "$scratch/state" ]; then
    CONNTRACK_DEBUG_STATE_DIR=$scratch/state ansible all -i "$inventory" -m netfilter.conntrack.conntrack_debug_window \
      -a "state=reverted revert_scope=all program_dir=$scratch/program" >/dev/null 2>&1 || true
  fi
  if [ -n "$sleeper" ]; then kill "$sleeper" 2>/dev/null || true; fi
  ip netns del "$netns" 2>/dev/null || true
  ip netns del "$pid_netns" 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT

inventory=${INVENTORY_PATH:-$scratch/inventory}
if [ -z "${INVENTORY_PATH:-}" ]; then
  echo "testhost ansible_connection=local ansible_python_interpreter=$(command -v python3)" >"$inventory"
fi

ip netns add "$netns"
ip netns add "$pid_netns"
ip netns exec "$pid_netns" sleep 3600 &
sleeper=$!
mkdir -p "$scratch/playbooks/templates" "$scratch/textfile" "$scratch/facts"
cp files/dynamic-debug-control-6.1.txt "$scratch/control"
# ansible-test runs a copy of this directory, so the collection is found where Ansible finds it.
collection=$(ansible-doc --json netfilter.conntrack.nf_log_backend | python3 -c \
  'import json, os, sys; doc = next(iter(json.load(sys.stdin).values()))["doc"]; print(os.path.dirname(os.path.dirname(os.path.dirname(doc["filename"]))))')
# conntrack_fleet_files' second example starts from a copy of the collection's own HTML template.
cp "$collection/roles/debug/templates/fleet-report.html.j2" "$scratch/playbooks/templates/our-fleet-report.html.j2"

python3 files/examples.py "$collection" "$scratch/playbooks" "$netns" "$sleeper" "$scratch" "$scratch/control" \
  "$PWD/files/dmesg-6.1.txt" | tee "$scratch/written"
mapfile -t playbooks < <(tail -n 1 "$scratch/written" | python3 -c 'import json, sys; print("\n".join(json.load(sys.stdin)))')

failed=()
for playbook in "${playbooks[@]}"; do
  echo "=== $(basename "$playbook")"
  if ! ansible-playbook -i "$inventory" "$playbook" "$@"; then
    failed+=("$(basename "$playbook")")
  fi
done
echo "example playbooks run: ${#playbooks[@]}, failed: ${#failed[@]} ${failed[*]}"
[ "${#failed[@]}" -eq 0 ]
