#!/usr/bin/env bash
# Container and pod names resolved to their network namespaces by plugins/module_utils/_containers.py, on real
# podman. The image is the host's sleep binary and the libraries it loads, imported with `podman import` (no
# registry, no debootstrap). Started: a container on podman's default network, a pod (its infra container holds
# the namespace) with one container in it, a container on the host's network, and a created one never started.
#   1. the container, the pod and the pod's container resolve by name (the container also by an id prefix);
#      each returned path is the namespace the process really uses: stat of netns_path gives the inode that
#      `readlink /proc/PID/ns/net` shows for the pid podman reports, and it is not the host's namespace;
#      the pod and its container share one namespace, the container has another; names come back whole.
#   2. the host-network container, the created container and an unknown name are refused with their reason.
#   3. after the container is removed, the identity check of its earlier result refuses it as vanished.
#   4. a container and a pod of the local test image debugged by name (files/window.yml): the role's enable with
#      conntrack_debug_containers, invalid TCP packets inside each, collect and revert by name; an unknown name
#      fails the enable before anything is written.
# A trap removes the containers, the pod and the image on any exit.
set -euo pipefail
root=
IFS=: read -ra paths <<< "${ANSIBLE_COLLECTIONS_PATH:-}"
for path in "${paths[@]}" "$(pwd)/../../../../../../.."; do
  if [[ -f "$path/ansible_collections/netfilter/conntrack/plugins/module_utils/_containers.py" ]]; then
    root=$(cd "$path" && pwd)
    break
  fi
done
[[ -n "$root" ]] || { echo "netfilter.conntrack not found on ANSIBLE_COLLECTIONS_PATH" >&2; exit 1; }
command -v podman >/dev/null || { echo "podman is missing: run .ci/setup (Debian packages podman, runc)" >&2; exit 1; }
export CONTAINERS_CONF="${CONTAINERS_CONF:-$root/ansible_collections/netfilter/conntrack/extensions/molecule/containers.conf}"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
python=${ANSIBLE_TEST_PYTHON_INTERPRETER:-python3}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
run=$$
image=localhost/nfct-containers-test:$run
ctr=nfct-it-ctr-$run
pod=nfct-it-pod-$run
app=nfct-it-pod-app-$run
hostnet=nfct-it-hostnet-$run
created=nfct-it-created-$run
# Debugged by name through the role (4.): a container and a pod of the collection's test image.
debian=localhost/netfilter-conntrack-debian:bookworm
winctr=nfct-it-win-ctr-$run
winpod=nfct-it-win-pod-$run
winapp=nfct-it-win-app-$run
work=$(mktemp -d "${OUTPUT_DIR:-/tmp}/containers.XXXXXX")
t0=$SECONDS

cleanup() {
  local rc=$?
  set +e
  podman pod rm -f -t 0 "$pod" >/dev/null 2>&1 &
  podman rm -f -t 0 "$ctr" "$hostnet" "$created" >/dev/null 2>&1 &
  # Another run of podman rm may hold the lock of a container named here: its own removal would then be skipped.
  podman pod rm -f -i -t 0 "$winpod" >/dev/null 2>&1
  podman rm -f -i -t 0 "$winctr" >/dev/null 2>&1
  wait
  podman rmi -f "$image" >/dev/null 2>&1
  rm -rf "$work"
  left=$(podman ps -a --format '{{.Names}}' | grep -c -- "-$run\$")
  ((left == 0)) || { echo "FAIL: $left containers of this run are left" >&2; rc=1; }
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }

# ---------------------------------------------------------------- image and containers
mkdir "$work/rootfs"
for file in /bin/sleep $(ldd /bin/sleep | grep -o '/[^ ]*'); do cp --parents -L "$file" "$work/rootfs"; done
tar -C "$work/rootfs" -c . | podman import -q --change 'CMD ["/bin/sleep", "infinity"]' - "$image" >/dev/null
podman run -d --name "$ctr" "$image" >/dev/null
podman pod create --name "$pod" --infra-image "$image" --infra-command '/bin/sleep infinity' >/dev/null
podman run -d --pod "$pod" --name "$app" "$image" >/dev/null
podman run -d --network host --name "$hostnet" "$image" >/dev/null
podman create --name "$created" "$image" >/dev/null
echo "image and containers up in $((SECONDS - t0)) s"

# ---------------------------------------------------------------- 1. resolved, and the namespace is the real one
ctr_id=$(podman inspect -f '{{.Id}}' "$ctr")
"$python" "$here/files/resolve.py" resolve "$ctr" "$pod" "$app" "${ctr_id:0:12}" >"$work/resolved.json"
infra=$(podman pod inspect -f '{{.InfraContainerID}}' "$pod")
host_inode=$(stat -L -c %i /proc/self/ns/net)
declare -A expect_kind=(["$ctr"]=container ["$pod"]=pod ["$app"]=container ["${ctr_id:0:12}"]=container)
declare -A expect_pid=(["$ctr"]="$(podman inspect -f '{{.State.Pid}}' "$ctr")"
  ["$pod"]="$(podman inspect -f '{{.State.Pid}}' "$infra")"
  ["$app"]="$(podman inspect -f '{{.State.Pid}}' "$app")"
  ["${ctr_id:0:12}"]="$(podman inspect -f '{{.State.Pid}}' "$ctr")")
declare -A inode
while IFS=$'\t' read -r name runtime kind pid path display ino; do
  [[ "$runtime" == podman ]] || fail "$name: runtime $runtime"
  [[ "$kind" == "${expect_kind[$name]}" ]] || fail "$name: kind $kind, expected ${expect_kind[$name]}"
  [[ "$pid" == "${expect_pid[$name]}" ]] || fail "$name: pid $pid, podman says ${expect_pid[$name]}"
  [[ "$path" == /run/netns/* ]] || fail "$name: $path is not podman's bind-mounted namespace"
  real=$(readlink "/proc/$pid/ns/net")
  [[ "$real" == "net:[$(stat -L -c %i "$path")]" ]] || fail "$name: $path is not $real of process $pid"
  [[ "$ino" == "$(stat -L -c %i "$path")" ]] || fail "$name: identity $ino is not the inode of $path"
  ((ino != host_inode)) || fail "$name: resolved to the host's own namespace"
  inode[$name]=$ino
  echo "ok: $name -> $path ($real, pid $pid) shown as \"$display\""
done < <("$python" -c '
import json, sys
for r in json.load(open(sys.argv[1])):
    print("\t".join(str(r[k]) for k in ("name", "runtime", "kind", "pid", "netns_path", "display_name", "ino")))
' "$work/resolved.json")
((${#inode[@]} == 4)) || fail "expected 4 results, got ${#inode[@]}"
((inode[$pod] == inode[$app])) || fail "the pod and its container are in different namespaces"
((inode[$ctr] != inode[$pod])) || fail "the container and the pod share a namespace"
((inode[$ctr] == inode[${ctr_id:0:12}])) || fail "the id prefix did not resolve to the container"
grep -q "\"display_name\": \"podman pod $pod\"" "$work/resolved.json" || fail "the pod's display name is not whole"
grep -q "\"display_name\": \"podman container $app\"" "$work/resolved.json" || fail "the container's name is not whole"

# ---------------------------------------------------------------- 2. refusals
refuse() {  # NAME PATTERN
  local msg
  msg=$("$python" "$here/files/resolve.py" refuse "$1") || fail "$1 resolved: $msg"
  [[ "$msg" =~ $2 ]] || fail "$1: message \"$msg\" does not match $2"
  echo "ok: $1 refused: $msg"
}
refuse "$hostnet" "uses the host's network namespace"
refuse "$created" "is not running"
refuse "nfct-it-unknown-$run" "no running container or pod named 'nfct-it-unknown-$run' \(runtimes asked: podman\)"

# ---------------------------------------------------------------- 3. a removed container's earlier result
podman rm -f -t 0 "$ctr" >/dev/null
"$python" "$here/files/resolve.py" identity "$work/resolved.json" >"$work/identity.txt"
grep -q "^refused the network namespace of podman container $ctr is gone .*'reason': 'vanished'" "$work/identity.txt" \
  || fail "the removed container's namespace was not refused: $(cat "$work/identity.txt")"
[[ $(grep -c '^same' "$work/identity.txt") == 2 ]] || fail "the pod's results no longer check: $(cat "$work/identity.txt")"
echo "ok: removed container refused as vanished, the pod still checks"

# ---------------------------------------------------------------- 4. debugged by name: enable, traffic, collect, revert
podman run -d --name "$winctr" "$debian" sleep infinity >/dev/null
podman pod create --name "$winpod" --infra-image "$debian" --infra-command 'sleep infinity' >/dev/null
podman run -d --pod "$winpod" --name "$winapp" "$debian" sleep infinity >/dev/null
ansible-playbook "$here/files/window.yml" -i localhost, -e "$("$python" -c '
import json, sys
print(json.dumps(dict(zip(("work", "ctr", "pod", "unknown", "send_invalid"), sys.argv[1:]))))
' "$work" "$winctr" "$winpod" "nfct-it-unknown-$run" "$here/../nflog_capture/files/send_invalid.py")" \
  -e ansible_python_interpreter=/usr/bin/python3
[[ ! -e "$work/state" ]] || [[ -z "$(ls -A "$work/state")" ]] || fail "windows left in $work/state: $(ls "$work/state")"
echo "ok: a container and a pod debugged by name through the role, collected and reverted by name"
echo "containers target passed in $((SECONDS - t0)) s"
