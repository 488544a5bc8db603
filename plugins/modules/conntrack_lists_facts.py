#!/usr/bin/python
# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: conntrack_lists_facts
short_description: Gather conntrack counts, lists and statistics, and explain a count-vs-list gap
version_added: 0.1.0
description:
  - Compares the number of tracked connections (C(nf_conntrack_count), what C(conntrack -C) prints) with what the
    kernel lists in the conntrack table, on the dying list and on the unconfirmed list, reads the per-CPU statistics
    (what C(conntrack -S) prints), and explains a gap in plain language, as the conntrack troubleshooting guides do
    by hand.
  - The lists are read straight from the kernel over a ctnetlink socket (C(NETLINK_NETFILTER)) with the Python
    standard library, so neither C(conntrack-tools) nor C(/proc/net/nf_conntrack) (often compiled out) is needed.
    Entries are counted while they stream in, by address family, protocol and TCP state, and never held in memory,
    so a table of a million entries is gathered in less time than C(conntrack -L > /dev/null) takes, in well under
    64 MiB.
  - O(summary_only=true) reads only C(nf_conntrack_count), C(nf_conntrack_max) and C(nf_conntrack_buckets), in
    constant time whatever the table size.
  - Since Linux 5.19 the kernel has no unconfirmed list any more (the dump always answers with an empty list), so
    the module reports it as not dumpable instead of claiming 0; unconfirmed entries are still counted. Since the same
    release the dying list only holds entries whose destroy event waits for redelivery to an event listener, so any
    entry there points at a listener that does not read its socket.
  - The facts land in C(ansible_facts.conntrack).
author:
  - netfilter.conntrack maintainers (@netfilter-conntrack)
extends_documentation_fragment:
  - netfilter.conntrack._attributes
  - netfilter.conntrack._attributes.facts
  - netfilter.conntrack._netns
options:
  lists:
    description:
      - Which lists to dump. V(table) is the conntrack table (C(conntrack -L)), V(dying) and V(unconfirmed) the
        kernel's dying and unconfirmed lists (C(conntrack -L dying), C(conntrack -L unconfirmed)), V(expect) the
        expectation table (C(conntrack -L expect)).
      - The discrepancy is only computed when V(table) is dumped.
      - Ignored with O(summary_only=true).
    type: list
    elements: str
    choices: [table, unconfirmed, dying, expect]
    default: [table, unconfirmed, dying, expect]
  family:
    description:
      - Only list entries of this address family. The count covers every family, so with a filter the discrepancy
        is not computed.
      - V(all) lists every family.
    type: str
    choices: [all, ipv4, ipv6]
    default: all
  include_entries:
    description:
      - Also return the first O(max_entries) entries of each dumped list (addresses, ports, state, timeout, status
        flags, mark, id), for example to see which flows are pinned on the dying list.
    type: bool
    default: false
  max_entries:
    description:
      - How many entries per list O(include_entries=true) returns. Counting always covers every entry.
    type: int
    default: 20
  summary_only:
    description:
      - Read only the three sysctls (count, max, buckets) and skip every dump; the discrepancy then only checks how
        full the table is.
    type: bool
    default: false
  load_module:
    description:
      - Load the C(nf_conntrack_netlink) kernel module when the kernel answers that ctnetlink is missing, as on
        kernels where it is modular and nothing has used it yet. The kernel usually loads it by itself.
      - Not done in check mode; there a missing ctnetlink is an error.
    type: bool
    default: true
  thresholds:
    description:
      - When the gathered numbers are reported as a problem in RV(ansible_facts.conntrack.discrepancy).
    type: dict
    default: {}
    suboptions:
      unlisted:
        description:
          - Entries counted but not listed before it is reported. The larger of this and O(thresholds.unlisted_percent)
            applies, because entries created or freed during the dump make the two numbers differ a little on a busy
            host.
        type: int
        default: 100
      unlisted_percent:
        description:
          - Entries counted but not listed, as a percentage of the count, before it is reported.
        type: float
        default: 1.0
      dying:
        description:
          - Entries on the dying list before it is reported.
        type: int
        default: 100
      usage_percent:
        description:
          - Count as a percentage of C(nf_conntrack_max) from which the table is reported as close to full.
        type: float
        default: 90.0
notes:
  - Needs C(CAP_NET_ADMIN) for the dumps (the kernel refuses ctnetlink requests without it) and C(CAP_SYS_ADMIN) to
    enter O(netns); run it as root. O(summary_only=true) only reads C(/proc/sys).
  - The count and the lists are read one after the other, not atomically. The module reads the count before the dumps,
    after the table dump and after the other dumps, and compares the smallest reading with what was listed; only a gap
    above O(thresholds) is a finding.
  - When the readings of the count spread by at least the O(thresholds.unlisted) threshold, when the dumps list more
    entries than any reading counted by that much, or when the kernel flags a dump as interrupted (C(NLM_F_DUMP_INTR)),
    the table was changing too fast for the comparison to mean anything (a table flushed and refilled many times a
    second, for example). The diagnosis then says so, RV(ansible_facts.conntrack.discrepancy.table_changing) is true
    and no unlisted-entries finding is made. Before reporting unlisted entries the module reads the count five more
    times, 20 ms apart, to make sure the table stands still.
  - C(nf_conntrack_max) is global on Linux 6.x; in a network namespace the value shown is the host's limit.
  - The C(N flow entries have been shown.) line of C(conntrack -L) goes to stderr; the module does not run
    C(conntrack) at all.
seealso:
  - name: conntrack(8)
    description: The conntrack-tools command whose C(-C), C(-L), C(-L dying), C(-L unconfirmed) and C(-S) this module reproduces.
    link: https://manpages.debian.org/conntrack.8
  - name: nf_conntrack sysctl documentation
    description: The kernel's description of nf_conntrack_count, nf_conntrack_max and nf_conntrack_buckets.
    link: https://docs.kernel.org/networking/nf_conntrack-sysctl.html
"""

EXAMPLES = r"""
- name: Gather conntrack facts in the host namespace
  netfilter.conntrack.conntrack_lists_facts:

- name: Show the diagnosis
  ansible.builtin.debug:
    msg: "{{ ansible_facts.conntrack.discrepancy.diagnosis }}"

- name: Only count and limits, cheap enough for every play
  netfilter.conntrack.conntrack_lists_facts:
    summary_only: true

- name: Look inside a container's namespace and show the entries pinned on the dying list
  netfilter.conntrack.conntrack_lists_facts:
    netns: /proc/4242/ns/net
    lists: [table, dying]
    include_entries: true
    max_entries: 10

- name: Report gaps of 10 entries or more, and a table 80 % full
  netfilter.conntrack.conntrack_lists_facts:
    thresholds:
      unlisted: 10
      usage_percent: 80

- name: Fail when the table is in trouble
  ansible.builtin.assert:
    that: ansible_facts.conntrack.discrepancy.findings | length == 0
    fail_msg: "{{ ansible_facts.conntrack.discrepancy.diagnosis }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to C(ansible_facts).
  returned: always
  type: dict
  contains:
    conntrack:
      description: What the kernel's connection tracking holds in the namespace.
      returned: always
      type: dict
      contains:
        gathered_at:
          description: When the gather started (UTC, ISO 8601).
          type: str
          sample: "2026-05-02T10:11:12.345Z"
        kernel:
          description: The kernel release (C(uname -r)); it decides whether the unconfirmed list can be dumped.
          type: str
          sample: 6.18.44
        netns:
          description: The path of the network namespace the facts come from, or null for the module's own.
          type: str
          sample: /run/netns/blue
        summary_only:
          description: Whether only the sysctls were read (O(summary_only)).
          type: bool
          sample: false
        family:
          description: The address family the lists were filtered on, or null for all.
          type: str
          sample: null
        loaded:
          description: Whether connection tracking is active in the namespace; when false every other number is empty.
          type: bool
          sample: true
        count:
          description: Entries the kernel counts (C(nf_conntrack_count), as C(conntrack -C)), read before the dumps.
            Includes unconfirmed and dying entries.
          type: int
          sample: 10
        count_after:
          description: The count read again after the dumps.
          returned: unless O(summary_only=true)
          type: int
          sample: 10
        count_samples:
          description:
            - Every reading of the count during the gather, in order. The first is RV(ansible_facts.conntrack.count),
              then one after the table dump, then RV(ansible_facts.conntrack.count_after), then five more when unlisted
              entries had to be confirmed.
            - A wide spread means the table was changing while it was read
              (RV(ansible_facts.conntrack.discrepancy.table_changing)).
          returned: unless O(summary_only=true)
          type: list
          elements: int
          sample: [10, 10, 10]
        max:
          description: C(nf_conntrack_max), the limit on the count.
          type: int
          sample: 262144
        buckets:
          description: C(nf_conntrack_buckets), the size of the hash table.
          type: int
          sample: 262144
        usage_percent:
          description: The count as a percentage of RV(ansible_facts.conntrack.max).
          type: float
          sample: 0.0
        table:
          description: The conntrack table (C(conntrack -L)), counted while streaming.
          returned: when V(table) is in O(lists) and not O(summary_only)
          type: dict
          contains:
            dumpable:
              description: Always true for the table.
              type: bool
            listed:
              description: Number of entries the dump returned.
              type: int
              sample: 6
            by_family:
              description: Entries per address family (V(ipv4), V(ipv6)).
              type: dict
              sample: {"ipv4": 6}
            by_protocol:
              description: Entries per protocol name (numbers without a name stay numeric).
              type: dict
              sample: {"icmp": 1, "tcp": 4, "udp": 1}
            by_tcp_state:
              description: TCP entries per state, named as the kernel names them (V(ESTABLISHED), V(TIME_WAIT), ...).
              type: dict
              sample: {"CLOSE_WAIT": 1, "ESTABLISHED": 3}
            interrupted:
              description:
                - Present and true when the kernel flagged the dump as interrupted (C(NLM_F_DUMP_INTR) on an entry or on
                  the final message); entries were added or removed during the dump, so the listing is not a
                  consistent snapshot. The dying and unconfirmed lists carry the same key.
              type: bool
              returned: when the dump was interrupted
            entries:
              description: The first O(max_entries) entries.
              type: list
              elements: dict
              returned: when O(include_entries=true)
              sample:
                - family: ipv4
                  protocol: tcp
                  tcp_state: ESTABLISHED
                  original: {"src": "10.0.0.1", "dst": "10.0.0.2", "protonum": 6, "sport": 1000, "dport": 80}
                  reply: {"src": "10.0.0.2", "dst": "10.0.0.1", "protonum": 6, "sport": 80, "dport": 1000}
                  status: [SEEN_REPLY, ASSURED, CONFIRMED]
                  timeout: 3599
                  mark: 0
                  use: 1
                  id: 3362382169
            truncated:
              description: Whether more entries were listed than returned in RV(ansible_facts.conntrack.table.entries).
              type: bool
              returned: when O(include_entries=true)
        dying:
          description:
            - The dying list (C(conntrack -L dying)), with the same keys as RV(ansible_facts.conntrack.table) plus
              C(note), or C(dumpable=false) and C(reason) when the kernel cannot dump it.
            - Since Linux 5.19 it only holds entries whose destroy event waits for redelivery to an event listener.
          returned: when V(dying) is in O(lists) and not O(summary_only)
          type: dict
          sample: {"dumpable": true, "listed": 0, "by_family": {}, "by_protocol": {}, "by_tcp_state": {},
                   "note": "since Linux 5.19 the dying list only holds entries whose destroy event waits for redelivery to a ctnetlink event listener"}
        unconfirmed:
          description:
            - The unconfirmed list (C(conntrack -L unconfirmed)). On Linux 5.19 and later C(dumpable) is false,
              C(listed) is null and C(reason) says why; before, the same keys as RV(ansible_facts.conntrack.table).
          returned: when V(unconfirmed) is in O(lists) and not O(summary_only)
          type: dict
          sample: {"dumpable": false, "listed": null, "reason": "since Linux 5.19 the kernel no longer keeps a list of unconfirmed entries ..."}
        expect:
          description: The expectation table (C(conntrack -L expect)), with C(dumpable), C(listed) and C(by_family).
          returned: when V(expect) is in O(lists) and not O(summary_only)
          type: dict
          sample: {"dumpable": true, "listed": 0, "by_family": {}}
        stats:
          description: The per-CPU counters of C(conntrack -S), and their sums.
          returned: unless O(summary_only=true)
          type: dict
          contains:
            per_cpu:
              description:
                - One dict per CPU with C(cpu) and the counters the kernel sends (V(found), V(invalid), V(insert),
                  V(insert_failed), V(drop), V(early_drop), V(error), V(search_restart), V(clash_resolve),
                  V(chaintoolong)).
                - A counter this module does not know yet is named C(attr_<N>) after its attribute number.
              type: list
              elements: dict
              sample: [{"cpu": 0, "found": 0, "invalid": 13, "insert": 0, "insert_failed": 0, "drop": 0, "early_drop": 0,
                        "error": 4, "search_restart": 0, "clash_resolve": 0, "chaintoolong": 0}]
            total:
              description: Each counter summed over the CPUs.
              type: dict
              sample: {"found": 0, "invalid": 21, "insert": 0, "insert_failed": 0, "drop": 0, "early_drop": 0, "error": 6,
                       "search_restart": 0, "clash_resolve": 0, "chaintoolong": 0}
        nfqueue:
          description: The NFQUEUE queues bound in the namespace (C(/proc/net/netfilter/nfnetlink_queue)), with the
            packets C(waiting) for a verdict, C(dropped) and C(user_dropped) counters and the listener's C(portid).
          returned: when nfnetlink_queue is loaded and not O(summary_only)
          type: list
          elements: dict
          sample: [{"queue": 3, "portid": 31275, "waiting": 4, "copy_mode": 2, "copy_range": 65531, "dropped": 0, "user_dropped": 0}]
        discrepancy:
          description: The count compared with everything listed, and what the numbers mean.
          type: dict
          contains:
            value:
              description:
                - The smallest reading of the count (RV(ansible_facts.conntrack.count_samples)) minus the entries listed
                  in the table, dying and unconfirmed lists; null when the table was not listed or O(family) filters.
                - Meaningless when RV(ansible_facts.conntrack.discrepancy.table_changing) is true.
              type: int
              sample: 4
            counted:
              description: The count used for RV(ansible_facts.conntrack.discrepancy.value).
              type: int
              sample: 10
            listed:
              description: Entries listed in the table, dying and unconfirmed lists together.
              type: int
              sample: 6
            table_changing:
              description:
                - Whether the table changed too much while it was read for the count and the lists to be compared. The
                  readings of the count spread by at least the unlisted threshold, the dumps listed more than any
                  reading counted by at least that much, or a dump was interrupted.
                - When true, no V(unconfirmed_held_by_nfqueue) or V(unlisted_entries) finding is made and the diagnosis
                  says that the table was changing.
              type: bool
              sample: false
            interrupted:
              description: The lists (V(table), V(dying), V(unconfirmed)) whose dump the kernel flagged as interrupted
                (C(NLM_F_DUMP_INTR)); empty when none was.
              type: list
              elements: str
              sample: []
            findings:
              description: One dict per problem found, with a stable C(code) (V(unconfirmed_held_by_nfqueue),
                V(unlisted_entries), V(dying_entries_pinned), V(table_near_max)) and its C(message).
              type: list
              elements: dict
              sample: [{"code": "dying_entries_pinned", "message": "9999 entries are on the dying list. ..."}]
            diagnosis:
              description: The findings in plain language, then whether the table was changing while it was read, or a
                sentence saying that nothing was found.
              type: str
              sample: "No problem found: 6 of 6 counted entries are listed (difference 0, within the threshold)."
        sources:
          description: Where each number came from (C(sysctl net.netfilter.nf_conntrack_count), C(ctnetlink dump
            (IPCTNL_MSG_CT_GET_DYING)), ...), keyed like the facts.
          type: dict
          sample: {"count": "sysctl net.netfilter.nf_conntrack_count", "table": "ctnetlink dump (IPCTNL_MSG_CT_GET)"}
loaded_module:
  description: The kernel module that was loaded because ctnetlink was missing.
  returned: when a module was loaded
  type: str
  sample: nf_conntrack_netlink
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack_facts import DEFAULT_THRESHOLDS, LISTS, gather
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError, exit_with_result
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import ModuleHost
from ansible_collections.netfilter.conntrack.plugins.module_utils._kmod import modprobe
from ansible_collections.netfilter.conntrack.plugins.module_utils._names import FAMILIES
from ansible_collections.netfilter.conntrack.plugins.module_utils._netns import enter_netns


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec={
            "lists": {"type": "list", "elements": "str", "choices": list(LISTS), "default": list(LISTS)},
            "family": {"type": "str", "choices": ["all", "ipv4", "ipv6"], "default": "all"},
            "include_entries": {"type": "bool", "default": False},
            "max_entries": {"type": "int", "default": 20},
            "summary_only": {"type": "bool", "default": False},
            "load_module": {"type": "bool", "default": True},
            "thresholds": {
                "type": "dict",
                "default": {},
                "options": {
                    "unlisted": {"type": "int", "default": DEFAULT_THRESHOLDS["unlisted"]},
                    "unlisted_percent": {"type": "float", "default": DEFAULT_THRESHOLDS["unlisted_percent"]},
                    "dying": {"type": "int", "default": DEFAULT_THRESHOLDS["dying"]},
                    "usage_percent": {"type": "float", "default": DEFAULT_THRESHOLDS["usage_percent"]},
                },
            },
            "netns": {"type": "str"},
        },
        supports_check_mode=True,
    )


def run(module: AnsibleModule) -> dict:
    params = module.params
    if params["max_entries"] < 0:
        raise ConntrackModuleError(f"max_entries must be 0 or more, not {params['max_entries']}")
    for name, value in params["thresholds"].items():
        if value is not None and value < 0:
            raise ConntrackModuleError(f"thresholds.{name} must be 0 or more, not {value}")
    netns = enter_netns(params["netns"])

    def load(name: str) -> bool:
        if module.check_mode or not params["load_module"]:
            return False
        modprobe(ModuleHost(module), name, dry_run=False)
        return True

    facts, loaded = gather(
        lists=params["lists"],
        family=None if params["family"] == "all" else FAMILIES[params["family"]],
        include_entries=params["include_entries"],
        max_entries=params["max_entries"],
        summary_only=params["summary_only"],
        thresholds=params["thresholds"],
        netns=netns,
        load_module=load,
    )
    result: dict = {"changed": False, "ansible_facts": {"conntrack": facts}}
    if loaded:
        result["changed"] = True
        result["loaded_module"] = loaded
    return result


def main() -> None:
    module = build_module()
    exit_with_result(module, run)


if __name__ == "__main__":
    main()
