#!/usr/bin/env bash
# 1. Every case gathers its evidence with the collection's module_utils (the functions the host program's collect
#    command calls) and builds the report with build_report; the case fails unless the expected verdict is named.
# 2. The reports, as collect leaves them in a jsonfile fact cache, group the hosts with
#    docs/inventory.conntrack-groups.yml: one conntrack_verdict_<id> group per verdict, from the cache alone.
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
work=$(mktemp -d /tmp/nfct-verdicts.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/reports"
VERDICT_REPORTS="$work/reports" PYTHONPATH="$root" /usr/bin/python3 files/reproduce.py "$(pwd)/../diagnosis/files/send.py"

# The fact cache as collect leaves it (the report is the fact conntrack_debug_report), written by the cache plugin.
export ANSIBLE_CACHE_PLUGIN=jsonfile ANSIBLE_CACHE_PLUGIN_CONNECTION="$work/cache" ANSIBLE_CACHE_PLUGIN_TIMEOUT=3600
python - "$work/reports" <<'PY'
import json, os, sys
from ansible import constants as C
from ansible.plugins.loader import cache_loader
cache = cache_loader.get(C.CACHE_PLUGIN)
for host in os.listdir(sys.argv[1]):
    with open(os.path.join(sys.argv[1], host), encoding="utf-8") as handle:
        cache.set(host, {"conntrack_debug_report": json.load(handle)})
PY
printf 'all:\n  hosts:\n' >"$work/hosts.yml"
for host in "$work"/reports/*; do
  printf '    %s:\n' "$(basename "$host")" >>"$work/hosts.yml"
done
cp "$root/ansible_collections/netfilter/conntrack/docs/inventory.conntrack-groups.yml" "$work/"
ansible-inventory -i "$work/hosts.yml" -i "$work/inventory.conntrack-groups.yml" --list >"$work/list.json"
python - "$work/list.json" <<'PY'
import json, sys
groups = json.load(open(sys.argv[1]))
members = {name: sorted(value.get("hosts", [])) for name, value in groups.items() if name.startswith("conntrack_verdict_")}
print(json.dumps(members, indent=1))
expected = {"conntrack_verdict_udp_insert_race": ["vd-race"], "conntrack_verdict_table_full": ["vd-full"],
            "conntrack_verdict_tcp_out_of_window": ["vd-oow"], "conntrack_verdict_blinded_window": ["vd-blind"]}
for group, hosts in expected.items():
    assert members.get(group) == hosts, f"{group}: expected {hosts}, got {members.get(group)}"
assert "vd-stale" in members.get("conntrack_verdict_stale_udp_entries", []), members
assert not any("vd-quiet" in hosts for hosts in members.values()), "nothing_wrong makes no group"
assert "conntrack_verdict_nothing_wrong" not in members
PY

# 3. The fleet_summary entry point reads the same cache, connecting to no host: the role's fleet input is each
#    host's report by inventory name, so a cached report that is not a mapping is named by its host, not fatal.
python - <<'PY'
from ansible import constants as C
from ansible.plugins.loader import cache_loader
cache_loader.get(C.CACHE_PLUGIN).set("vd-truncated", {"conntrack_debug_report": "{\"host\": \"vd-trunc"})
PY
printf '    vd-truncated:\n' >>"$work/hosts.yml"
(cd "$work" && ansible-playbook -i hosts.yml netfilter.conntrack.fleet_summary -e conntrack_debug_report_dir="$work/fleet" \
  -e '{"conntrack_debug_report_formats": ["json", "markdown"]}')
python - "$work/fleet" "$work/reports" <<'PY'
import json, os, sys
summary = json.load(open(os.path.join(sys.argv[1], "fleet-summary.json")))
cached = sorted(os.listdir(sys.argv[2]))
assert sorted(summary["hosts"]) == cached, (summary["hosts"], cached)
assert summary["unreadable"] == ["vd-truncated"], summary["unreadable"]
assert [where.split()[0] for where in summary["hosts_by_verdict"]["table_full"]] == ["vd-full"], summary["hosts_by_verdict"]
assert sorted(summary["evidence"]) == cached and summary["evidence"]["vd-full"], summary["evidence"]
markdown = open(os.path.join(sys.argv[1], "fleet-summary.md"), encoding="utf-8").read()
assert "report unreadable (not a mapping): vd-truncated" in markdown and "## Evidence" in markdown
PY
