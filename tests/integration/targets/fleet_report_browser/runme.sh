#!/usr/bin/env bash
# The fleet report page in a real browser: render it with the collection's filter (render.yml), open it from a
# file URL in headless Chromium with a fresh profile, then check (files/check_page.py) the DOM Chromium built
# (the host table, sorted by the page's own script under its CSP; the SVG chart; no markup from hostile strings),
# Chromium's network log (no URL but the page's own), and the screenshot, which is kept under tests/output/browser/.
set -euo pipefail
root=
IFS=: read -ra paths <<< "${ANSIBLE_COLLECTIONS_PATH:-}"
for path in "${paths[@]}" "$(pwd)/../../../../../../.."; do
  if [[ -f "$path/ansible_collections/netfilter/conntrack/galaxy.yml" ]]; then
    root=$(cd "$path/ansible_collections/netfilter/conntrack" && pwd)
    break
  fi
done
[[ -n "$root" ]] || { echo "netfilter.conntrack not found on ANSIBLE_COLLECTIONS_PATH" >&2; exit 1; }
chromium=$(command -v chromium || true)
[[ -n "$chromium" ]] || { echo "chromium is missing: run .ci/setup (Debian package chromium)" >&2; exit 1; }

work=$(mktemp -d "${OUTPUT_DIR:-/tmp}/fleet-report.XXXXXX")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
ansible-playbook render.yml -e "out=$work"
page="$work/fleet-report.html"
url="file://$page"
flags=(--headless --no-sandbox --disable-gpu --disable-quic --disable-background-networking --disable-component-update
       --disable-sync --no-first-run --disable-extensions --user-data-dir="$profile" "--window-size=1280,1800"
       --hide-scrollbars --virtual-time-budget=3000 --log-net-log="$work/netlog.json")
# Screenshot first, then the DOM after the script ran; the network log of each run is checked.
timeout 180 "$chromium" "${flags[@]}" --screenshot="$work/fleet-report.png" "$url" >"$work/chromium-shot.log" 2>&1 || {
  cat "$work/chromium-shot.log" >&2; exit 1; }
cp "$work/netlog.json" "$work/netlog-shot.json"
timeout 180 "$chromium" "${flags[@]}" --dump-dom "$url" >"$work/dom.html" 2>"$work/chromium-dom.log" || {
  cat "$work/chromium-dom.log" >&2; exit 1; }
python3 files/check_page.py "$work/dom.html" "$work/netlog-shot.json" "$work/fleet-report.png"
python3 files/check_page.py "$work/dom.html" "$work/netlog.json" "$work/fleet-report.png"
# Control: the same check sees a page that fetches (an image from a closed port on loopback).
printf '<!DOCTYPE html><title>control</title><img src="http://127.0.0.1:9/fetched.png" alt="">\n' >"$work/control.html"
timeout 180 "$chromium" "${flags[@]/--log-net-log=*/--log-net-log=$work/netlog-control.json}" --dump-dom \
  "file://$work/control.html" >/dev/null 2>"$work/chromium-control.log" || { cat "$work/chromium-control.log" >&2; exit 1; }
python3 files/check_page.py --control "$work/netlog-control.json"
mkdir -p "$root/tests/output/browser"
cp "$work/fleet-report.png" "$work/fleet-report.html" "$work/fleet-summary.md" "$root/tests/output/browser/"
echo "screenshot: $root/tests/output/browser/fleet-report.png"
