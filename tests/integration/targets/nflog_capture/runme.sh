#!/usr/bin/env bash
# Run the capture cases with the host's /usr/bin/python3 (the interpreter the host program runs with),
# importing the collection under test from ANSIBLE_COLLECTIONS_PATH.
set -eux
root=
IFS=: read -ra paths <<< "${ANSIBLE_COLLECTIONS_PATH:-}"
for path in "${paths[@]}" "$(pwd)/../../../../../../.."; do
  if [[ -f "$path/ansible_collections/netfilter/conntrack/plugins/module_utils/_capture.py" ]]; then
    root=$(cd "$path" && pwd)
    break
  fi
done
[[ -n "$root" ]] || { echo "netfilter.conntrack not found on ANSIBLE_COLLECTIONS_PATH" >&2; exit 1; }
command -v tshark >/dev/null || { echo "tshark is needed (Debian package tshark)" >&2; exit 1; }
all_netns=$(cat /proc/sys/net/netfilter/nf_log_all_netns)
work=$(mktemp -d /tmp/nfct-nflog-capture.XXXXXX)
# The cases show the capture with nf_log_all_netns at 0, the kernel's default: start from it whatever an earlier
# user of this host left, and put the value found here back at the end (the reasons case sets 1 for two seconds).
restore_all_netns() {
  echo "$all_netns" > /proc/sys/net/netfilter/nf_log_all_netns
}
trap 'restore_all_netns; rm -rf "$work"' EXIT
echo 0 > /proc/sys/net/netfilter/nf_log_all_netns
PYTHONPATH="$root" /usr/bin/python3 files/nflog_capture.py "$work" "$@"
