#!/usr/bin/env bash
# Build the host program from the collection under test, then run the capture cases through real windows with the
# host's /usr/bin/python3 (the interpreter the program runs with on a host).
set -eux
root=
IFS=: read -ra paths <<< "${ANSIBLE_COLLECTIONS_PATH:-}"
for path in "${paths[@]}" "$(pwd)/../../../../../../.."; do
  if [[ -f "$path/ansible_collections/netfilter/conntrack/plugins/module_utils/_window_capture.py" ]]; then
    root=$(cd "$path" && pwd)
    break
  fi
done
[[ -n "$root" ]] || { echo "netfilter.conntrack not found on ANSIBLE_COLLECTIONS_PATH" >&2; exit 1; }
work=$(mktemp -d /tmp/nfct-window-capture.XXXXXX)
# The child-namespace case shows the capture with nf_log_all_netns at 0, the kernel's default: start from it
# whatever an earlier user of this host left, and put the value found here back at the end.
all_netns=$(cat /proc/sys/net/netfilter/nf_log_all_netns)
trap 'echo "$all_netns" > /proc/sys/net/netfilter/nf_log_all_netns; rm -rf "$work"' EXIT
echo 0 > /proc/sys/net/netfilter/nf_log_all_netns
python -c "import sys; sys.path.insert(0, sys.argv[1])
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._window_app import build_app
open(sys.argv[2], 'wb').write(build_app())" "$root" "$work/conntrack-debug-window.pyz"
PYTHONPATH="$root" /usr/bin/python3 files/window_capture.py "$work" "$@"
