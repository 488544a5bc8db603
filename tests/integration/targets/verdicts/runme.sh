#!/usr/bin/env bash
# Every case gathers its evidence with the collection's module_utils (the functions the host program's collect
# command calls) and builds the report with build_report; the case fails unless the expected verdict is named.
set -eux
root=
IFS=: read -ra paths <<< "${ANSIBLE_COLLECTIONS_PATH:-}"
for path in "${paths[@]}" "$(pwd)/../../../../../../.."; do
  if [[ -f "$path/ansible_collections/netfilter/conntrack/plugins/module_utils/_verdicts.py" ]]; then
    root=$(cd "$path" && pwd)
    break
  fi
done
[[ -n "$root" ]] || { echo "netfilter.conntrack not found on ANSIBLE_COLLECTIONS_PATH" >&2; exit 1; }
for tool in nft ip; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (Debian packages nftables, iproute2)" >&2; exit 1; }
done
PYTHONPATH="$root" /usr/bin/python3 files/reproduce.py "$(pwd)/../diagnosis/files/send.py"
