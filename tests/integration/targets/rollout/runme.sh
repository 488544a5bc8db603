#!/usr/bin/env bash
# The enable playbook rolled out like a change: a canary, batches (serial) and max_fail_percentage. Five inventory
# hosts are local connections, each debugging its own network namespace; one names a namespace that does not
# exist, so its enable fails. Which namespaces got a window shows which hosts the rollout reached.
set -euo pipefail

run=$$
scratch=$(mktemp -d)
export CONNTRACK_DEBUG_STATE_DIR=$scratch/state
program_dir=$scratch/program
python=$(command -v python3)
hosts=(h1 h2 h3 h4 h5)
netns_of() { echo "nfct-ro-$1-$run"; }

# Every window of this test (they share the private state directory), whichever host opened it.
revert_all() {
  if [ -x "$program_dir/conntrack-debug-window.pyz" ]; then
    ansible localhost -c local -e "ansible_python_interpreter=$python" -m netfilter.conntrack.conntrack_debug_window \
      -a "state=reverted revert_scope=all program_dir=$program_dir" >/dev/null 2>&1 || true
  fi
}

cleanup() {
  revert_all
  for host in "${hosts[@]}"; do ip netns del "$(netns_of "$host")" 2>/dev/null || true; done
  rm -rf "$scratch"
}
trap cleanup EXIT

# inventory BAD_HOST: every host debugs its own namespace; BAD_HOST's namespace is never created.
inventory() {
  {
    echo "[fleet]"
    for host in "${hosts[@]}"; do
      echo "$host conntrack_debug_netns='[\"$(netns_of "$host")\"]'"
    done
    echo "[fleet:vars]"
    echo "ansible_connection=local"
    echo "ansible_python_interpreter=$python"
    echo "conntrack_debug_program_dir=$program_dir"
    echo "conntrack_debug_duration=300"
    echo "conntrack_debug_protocol=tcp"
  } >"$scratch/inventory"
}

# Fresh namespaces (nothing enabled) for every host but the failing one.
reset() {
  revert_all
  for host in "${hosts[@]}"; do
    ip netns del "$(netns_of "$host")" 2>/dev/null || true
    if [ "$host" != "$1" ]; then ip netns add "$(netns_of "$host")"; fi
  done
}

# The hosts whose namespace logs invalid TCP packets (nf_conntrack_log_invalid=6), i.e. that enable reached.
enabled_hosts() {
  local host value out=()
  for host in "${hosts[@]}"; do
    value=$(ip netns exec "$(netns_of "$host")" cat /proc/sys/net/netfilter/nf_conntrack_log_invalid 2>/dev/null || echo -)
    if [ "$value" = 6 ]; then out+=("$host"); fi
  done
  echo "${out[*]}"
}

# scenario NAME BAD_HOST EXPECTED_RC EXPECTED_ENABLED [ansible-playbook args...]
scenario() {
  local name=$1 bad=$2 expected_rc=$3 expected=$4 rc=0 got
  shift 4
  inventory
  reset "$bad"
  ansible-playbook netfilter.conntrack.enable -i "$scratch/inventory" "$@" >"$scratch/$name.log" 2>&1 || rc=$?
  got=$(enabled_hosts)
  echo "$name: rc=$rc (expected $expected_rc), enabled: '$got' (expected '$expected')"
  if [ "$rc" != "$expected_rc" ] || [ "$got" != "$expected" ]; then
    cat "$scratch/$name.log"
    return 1
  fi
}

# one_line_each NAME HOST...: the enable report printed exactly one line for each HOST in the log of scenario NAME
# (once per batch, a line per host that ran enable: a canary is not repeated in the rollout's first batch).
one_line_each() {
  local name=$1 host count
  shift
  for host in "$@"; do
    count=$(grep -cE "^ +\"$host: (on until|check mode)" "$scratch/$name.log" || true)
    if [ "$count" != 1 ]; then
      echo "$name: $count report lines for $host (expected 1)"
      cat "$scratch/$name.log"
      return 1
    fi
  done
}

# Defaults (canary 1, serial 10%, max_fail_percentage 0): all healthy hosts are reached.
scenario defaults none 0 "h1 h2 h3 h4 h5"
one_line_each defaults h1 h2 h3 h4 h5
# The canary (h1) fails: nothing else is touched.
scenario canary-fails h1 2 ""
# h3 fails in the batches of one: the rollout stops there (h1 the canary, h2 before it).
scenario batch-fails-stop h3 2 "h1 h2" -e conntrack_debug_serial=1
# The same failure under max_fail_percentage 50 with batches of two (h2+h3: 50 %, not more): the rollout goes on,
# and the playbook still reports the failed host.
scenario batch-fails-threshold h3 2 "h1 h2 h4 h5" -e conntrack_debug_serial=2 -e conntrack_debug_max_fail_percentage=50
# With --limit the canary is the first host of the limited play (h2), and its failure stops the rollout there.
scenario limit-canary-fails h2 2 "" --limit h2,h3,h4,h5
# Two canaries, then the rest at once.
scenario two-canaries none 0 "h1 h2 h3 h4 h5" -e conntrack_debug_canary=2 -e conntrack_debug_serial=100%
one_line_each two-canaries h1 h2 h3 h4 h5
# No canary: everything in one batch, and the canary play matches no host.
scenario no-canary none 0 "h1 h2 h3 h4 h5" -e conntrack_debug_canary=0 -e conntrack_debug_serial=100%
one_line_each no-canary h1 h2 h3 h4 h5
if ! grep -q "skipping: no hosts matched" "$scratch/no-canary.log"; then
  echo "no-canary: the canary play ran on some host"; cat "$scratch/no-canary.log"; exit 1
fi
# Bad variables are refused before anything is touched, naming the variable, by the window task's validation of the
# role's variables (the playbook skips the role's own validation task): a value of the action's options, and one the
# action never receives (conntrack_debug_install_tools, used by a task after the window).
refused_naming() {
  local name=$1 variable=$2
  if ! grep -q "Validation of arguments failed" "$scratch/$name.log" || ! grep -q "$variable" "$scratch/$name.log"; then
    echo "$name: not refused by the role's validation naming $variable"; cat "$scratch/$name.log"; exit 1
  fi
}
scenario bad-duration none 2 "" -e conntrack_debug_duration=soon
refused_naming bad-duration conntrack_debug_duration
scenario bad-install-tools none 2 "" -e conntrack_debug_install_tools=maybe
refused_naming bad-install-tools conntrack_debug_install_tools
# --check --diff: the dry run the README recommends changes nothing anywhere.
scenario dry-run none 0 "" --check --diff
one_line_each dry-run h1 h2 h3 h4 h5
echo "rollout: every scenario behaved as expected"
