#!/usr/bin/env bash
# ansible-playbook is started here (not through tasks/main.yml) because faults 1 and 5 start, and
# SIGKILL, nested ansible-playbook runs, which need the inventory and the ansible-playbook path.
# ansible-test copies only this target: the collection under test (its roles/, playbooks/, plugins/
# for the no-shell check, the module_utils the host program conntrack-debug-window.pyz is built from)
# is found on ANSIBLE_COLLECTIONS_PATH.
set -eux
root=
IFS=: read -ra paths <<< "${ANSIBLE_COLLECTIONS_PATH:-}"
for path in "${paths[@]}" "$(pwd)/../../../../../../.."; do
  if [[ -f "$path/ansible_collections/netfilter/conntrack/plugins/module_utils/_window_program.py" ]]; then
    root=$(cd "$path/ansible_collections/netfilter/conntrack" && pwd)
    break
  fi
done
[[ -n "$root" ]] || { echo "netfilter.conntrack not found on ANSIBLE_COLLECTIONS_PATH" >&2; exit 1; }
# Two runs of this target on one host (two checkouts, two users) would share its namespaces, program
# directory and snapshots, and fail each other: the second waits for the first.
exec 9>/run/lock/nfct-role-debug-faults.lock
flock -w 1200 9 || { echo "another run of role_debug_faults holds /run/lock/nfct-role-debug-faults.lock" >&2; exit 1; }
ansible-playbook faults.yml -i "${INVENTORY_PATH}" \
  -e "output_dir=${OUTPUT_DIR}" -e "faults_inventory=${INVENTORY_PATH}" -e "faults_collection_root=${root}" \
  -e "faults_ansible_playbook=$(command -v ansible-playbook)" "$@"
