#!/usr/bin/env bash
# Render one task per case from cases.yml (module names cannot be templated), then run it.
set -eux
ansible-playbook render.yml -i "${INVENTORY_PATH}" -e "output_dir=${OUTPUT_DIR}" "$@"
ansible-playbook "${OUTPUT_DIR}/matrix.yml" -i "${INVENTORY_PATH}" "$@"
