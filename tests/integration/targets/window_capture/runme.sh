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
trap 'rm -rf "$work"' EXIT
python -c "import sys; sys.path.insert(0, sys.argv[1])
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._window_app import build_app
open(sys.argv[2], 'wb').write(build_app())" "$root" "$work/conntrack-debug-window.pyz"
PYTHONPATH="$root" /usr/bin/python3 files/window_capture.py "$work" "$@"
