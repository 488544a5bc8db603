# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Compare the groups of `ansible-inventory --graph` output with the expected members (test helper).

Usage: check_graph.py GRAPH_FILE EXPECTED_JSON. EXPECTED_JSON maps group names to host lists; each must
match exactly (a group absent from the graph counts as empty). Exits 1 naming every difference.
"""
import json
import re
import sys

LINE = re.compile(r"^(?P<indent>[ |]*)\|--(?P<group>@)?(?P<name>[^:]+):?$")


def parse(text):
    """{group: set of hosts directly or indirectly in it} from the --graph tree."""
    members = {}
    stack = []
    for line in text.splitlines():
        if line.startswith("@"):
            stack = [(0, line.strip("@:"))]
            members.setdefault(line.strip("@:"), set())
            continue
        match = LINE.match(line)
        if not match:
            continue
        depth = len(match.group("indent")) // 3 + 1
        stack = [entry for entry in stack if entry[0] < depth]
        if match.group("group"):
            members.setdefault(match.group("name"), set())
            stack.append((depth, match.group("name")))
        else:
            for dummy, group in stack:
                members[group].add(match.group("name"))
    return members


def main():
    with open(sys.argv[1], encoding="utf-8") as handle:
        members = parse(handle.read())
    with open(sys.argv[2], encoding="utf-8") as handle:
        expected = json.load(handle)
    wrong = []
    for group, hosts in sorted(expected.items()):
        got = sorted(members.get(group, set()))
        status = "ok" if got == sorted(hosts) else "WRONG"
        print(f"{status}: {group}: {got}" + ("" if status == "ok" else f" (expected {sorted(hosts)})"))
        if status != "ok":
            wrong.append(group)
    if wrong:
        sys.exit(1)


if __name__ == "__main__":
    main()
