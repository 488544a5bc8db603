#!/usr/bin/env bash
# ansible-playbook is started here (not through tasks/main.yml) because faults 1 and 5 start, and
# SIGKILL, nested ansible-playbook runs, which need the inventory and the ansible-playbook path.
# Pipelining stays off: the fault-injecting module interpreters look at the module file's name.
set -eux
export ANSIBLE_PIPELINING=False
ansible-playbook faults.yml -i "${INVENTORY_PATH}" \
  -e "output_dir=${OUTPUT_DIR}" -e "faults_inventory=${INVENTORY_PATH}" \
  -e "faults_ansible_playbook=$(command -v ansible-playbook)" "$@"
