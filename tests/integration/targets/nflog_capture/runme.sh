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
# The reasons case sets nf_log_all_netns to 1 for about two seconds and puts it back itself; should the driver die
# in between, put back the 0 found here (a 1 found here was someone else's and stays).
restore_all_netns() {
  if [[ "$all_netns" == 0 && "$(cat /proc/sys/net/netfilter/nf_log_all_netns)" == 1 ]]; then
    echo 0 > /proc/sys/net/netfilter/nf_log_all_netns
  fi
}
trap 'restore_all_netns; rm -rf "$work"' EXIT
PYTHONPATH="$root" /usr/bin/python3 files/nflog_capture.py "$work" "$@"
