#!/usr/bin/python
# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: conntrack_facts
short_description: Gather a bounded conntrack summary per host for fact caches, inventories and monitoring
version_added: 0.3.0
description:
  - The fleet-wide, read-only gather of the collection, in one task per host, for nightly runs whose facts land in
    a fact cache and feed C(ansible.builtin.constructed) groups (see the collection's C(docs/inventories.md)).
  - Runs M(netfilter.conntrack.conntrack_invalid_log_facts) and then this module over one connection. The module
    gathers, in the namespace the connection runs in and in each namespace of O(netns) (or every named namespace
    with O(all_named_netns)), the count, max, buckets and usage, the statistics totals (C(conntrack -S) summed over
    the CPUs), the count-versus-list discrepancy check of M(netfilter.conntrack.conntrack_lists_facts), the list
    sizes, C(nf_conntrack_log_invalid) and the IPv4 and IPv6 loggers bound, and whether a debug window of the
    C(netfilter.conntrack.debug) role is open.
  - Returns the fact C(conntrack_summary), of bounded size (about 2 KiB per namespace plus the invalid-log summary,
    whose reasons, peers and samples the log module bounds), stamped with C(gathered_at).
  - Changes nothing on the host, opens no debug window and loads no logger. The only write is the optional
    node_exporter textfile (O(textfile_dir)).
author:
  - netfilter.conntrack maintainers (@netfilter-conntrack)
extends_documentation_fragment:
  - netfilter.conntrack._attributes
  - netfilter.conntrack._attributes.action_plugin
attributes:
  action:
    details: The action plugin runs M(netfilter.conntrack.conntrack_invalid_log_facts), then this module with its summary.
  check_mode:
    support: full
    details: Gathers everything; does not write the textfile (C(written) is false in RV(textfile)).
  diff_mode:
    support: none
  facts:
    support: full
    description: Action returns an C(ansible_facts) dictionary that will update existing host facts.
  idempotent:
    support: full
    details: Reads only. The textfile, when asked for, is rewritten on every run because it holds the gather time.
options:
  netns:
    description:
      - Network namespaces to gather besides the one the connection runs in, by name under C(/run/netns) or as a
        path such as C(/proc/PID/ns/net).
      - A namespace that cannot be entered (it vanished, for example) is reported under its name with C(error) in
        RV(ansible_facts.conntrack_summary.namespaces) and counted in C(worst.errors); the task does not fail.
    type: list
    elements: str
    default: []
  all_named_netns:
    description:
      - Also gather every namespace named under C(/run/netns) (what C(ip netns list) shows), up to O(max_namespaces).
      - A name that is not valid UTF-8 is not gathered; it is reported, with a warning, as a namespace with an
        C(error) under a label that shows its undecodable bytes as C(\\xNN).
    type: bool
    default: false
  max_namespaces:
    description:
      - The most namespaces gathered besides the connection's own; the names left out are listed in
        RV(ansible_facts.conntrack_summary.namespaces_not_gathered). Bounds the bytes per host.
    type: int
    default: 32
  dump_lists:
    description:
      - Dump the table and the dying, unconfirmed and expectation lists over ctnetlink (counting only, constant
        memory) for the discrepancy check and the list sizes, and read the statistics.
      - V(false) reads only count, max and buckets (constant time whatever the table size); the statistics, the list
        sizes and the discrepancy check are then missing.
    type: bool
    default: true
  full_lists:
    description:
      - Also return the complete M(netfilter.conntrack.conntrack_lists_facts) facts of each namespace (breakdowns by
        family, protocol and TCP state, per-CPU statistics, and the first O(max_entries) entries of each list) under
        C(conntrack) in each namespace's summary.
    type: bool
    default: false
  max_entries:
    description:
      - With O(full_lists), how many entries of each list are returned.
    type: int
    default: 20
  log_source:
    description:
      - O(netfilter.conntrack.conntrack_invalid_log_facts#module:source) for the invalid-packet and table-full lines.
      - V(none) skips the kernel log (no invalid-log summary, no table-full events).
      - Only records of the kernel facility count, so that a line a program writes to C(/dev/kmsg) cannot pass for
        kernel evidence. The journal, C(/dev/kmsg) and dmesg say which facility wrote a record. A file says so only
        when it holds C(/dev/kmsg) records or C(journalctl -o json) entries; in a file of plain dmesg or syslog
        text the facility cannot be told, and every line counts.
    type: str
    choices: [auto, journal, kmsg, dmesg, file, none]
    default: auto
  log_path:
    description:
      - The file to read with O(log_source=file).
    type: path
  log_since:
    description:
      - O(netfilter.conntrack.conntrack_invalid_log_facts#module:since), V(boot) by default.
    type: str
    default: boot
  max_samples:
    description:
      - Parsed invalid-packet records kept in the summary (0 keeps none; each costs about 400 bytes).
    type: int
    default: 0
  top_peers:
    description:
      - Source addresses kept in the invalid-log summary (the most frequent).
    type: int
    default: 5
  textfile_dir:
    description:
      - Write the summary as node_exporter textfile-collector metrics to C(netfilter_conntrack.prom) in this directory
        on the host (for example C(/var/lib/prometheus/node-exporter)). Written to a new temporary file in the same
        directory (never following a symlink) and renamed, mode 0644. Whatever was at that name (a symlink, a FIFO)
        is replaced, neither followed nor waited on. The directory must exist.
      - Label values are escaped as the text exposition format requires (backslash, double quote, newline).
      - Metric names start with C(netfilter_conntrack_); see the collection's C(docs/inventories.md) for the list.
    type: path
  plan:
    description:
      - Also run M(netfilter.conntrack.conntrack_plan_facts) in each namespace gathered (one more module run per
        namespace) and keep its C(problems), C(steps), C(blinders) and C(kernel) under C(plan); the problem codes of
        every namespace are collected in C(worst.plan_problems).
      - Skipped when the installed collection has no such module.
    type: bool
    default: true
  plan_ruleset:
    description:
      - O(netfilter.conntrack.conntrack_plan_facts#module:ruleset) for the plan (look for C(notrack) rules).
    type: bool
    default: true
  invalid_log:
    description:
      - Set by the action plugin to the summary M(netfilter.conntrack.conntrack_invalid_log_facts) returned; leave it
        unset.
    type: dict
notes:
  - Needs root (C(CAP_NET_ADMIN) for the ctnetlink dumps, C(CAP_SYS_ADMIN) to enter namespaces), like
    M(netfilter.conntrack.conntrack_lists_facts).
  - The kernel log is global to a kernel. Hosts that share one (containers, namespaces) all see the same invalid-packet
    lines. Table-full lines that name their namespace (Linux 6.17 and later) are counted for that namespace only.
  - C(nf_conntrack_max) is global on Linux 6.x, so the usage of a child namespace is its count against the host's limit.
  - To keep the facts between runs, configure a fact cache (C(fact_caching=jsonfile), C(community.general.redis), ...);
    the facts are returned as C(ansible_facts) and land there.
seealso:
  - module: netfilter.conntrack.conntrack_lists_facts
  - module: netfilter.conntrack.conntrack_invalid_log_facts
  - name: node_exporter textfile collector
    description: How node_exporter reads C(*.prom) files from a directory.
    link: https://github.com/prometheus/node_exporter#textfile-collector
"""

EXAMPLES = r"""
- name: Gather the conntrack summary (fact caches keep it)
  netfilter.conntrack.conntrack_facts:

- name: Also every named namespace, and metrics for node_exporter
  netfilter.conntrack.conntrack_facts:
    all_named_netns: true
    textfile_dir: /var/lib/prometheus/node-exporter

- name: Fail when the table is more than 80 % full anywhere on the host
  ansible.builtin.assert:
    that: (conntrack_summary.worst.usage_percent | default(0, true)) < 80
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to ansible_facts.
  returned: always
  type: dict
  contains:
    conntrack_summary:
      description:
        - The summary. The namespace the connection runs in is described at the top level, every other one under
          RV(ansible_facts.conntrack_summary.namespaces) with the same keys.
      returned: always
      type: dict
      contains:
        format:
          description: Version of this layout (1).
          type: int
          sample: 1
        gathered_at:
          description: When the gather ran (UTC, ISO 8601). Facts read back from a cache are as old as this says.
          type: str
          sample: "2026-11-28T02:00:03Z"
        gathered_at_epoch:
          description: The same, in Unix seconds.
          type: int
          sample: 1795831203
        kernel:
          description: The kernel release.
          type: str
          sample: 6.18.44
        kernel_series:
          description: Its major.minor series, for C(keyed_groups).
          type: str
          sample: "6.18"
        nf_log_all_netns:
          description: C(net.netfilter.nf_log_all_netns), or null outside the initial namespace.
          type: int
          sample: 0
        count:
          description: C(nf_conntrack_count).
          type: int
          sample: 1532
        max:
          description: C(nf_conntrack_max).
          type: int
          sample: 262144
        buckets:
          description: C(nf_conntrack_buckets).
          type: int
          sample: 262144
        usage_percent:
          description: The count as a percentage of the max.
          type: float
          sample: 0.58
        stats:
          description: The statistics summed over the CPUs (C(found), C(invalid), C(insert_failed), C(drop),
            C(early_drop), C(error), C(search_restart), C(clash_resolve), C(chaintoolong)); empty with O(dump_lists=false).
          type: dict
          sample: {"drop": 0, "early_drop": 0, "insert_failed": 0, "invalid": 21}
        drops:
          description: The counters that mean dropped packets or lost entries, C(drop), C(early_drop), C(insert_failed).
          type: dict
          sample: {"drop": 0, "early_drop": 0, "insert_failed": 0}
        lists:
          description: Entries listed per list (C(table), C(dying), C(unconfirmed), null where the kernel cannot dump
            it, C(expect)).
          type: dict
          sample: {"table": 1530, "dying": 0, "unconfirmed": null, "expect": 0}
        discrepancy:
          description: The count-versus-list check, C(value), C(codes) (every finding code, V(table_near_max)
            included), C(found) (a finding other than V(table_near_max)), C(table_changing) and C(diagnosis).
          type: dict
          sample: {"value": 2, "codes": [], "found": false, "table_changing": false, "diagnosis": "No problem found ..."}
        log_invalid:
          description: C(nf_conntrack_log_invalid) (0 off, 255 every protocol, else a protocol number).
          type: int
          sample: 0
        loggers:
          description: The logger bound for C(ipv4) and C(ipv6) (C(net.netfilter.nf_log.2), C(nf_log.10)), null when none.
          type: dict
          sample: {"ipv4": "nf_log_ipv4", "ipv6": null}
        no_logger:
          description: C(nf_conntrack_log_invalid) is on but neither an IPv4 nor an IPv6 logger is bound, so nothing
            is logged.
          type: bool
          sample: false
        table_full_events:
          description: Table-full kernel messages for this namespace in the log window, or null when the
            invalid-log summary has no table-full information.
          type: int
          sample: 0
        window_active:
          description: Whether a debug window of the C(netfilter.conntrack.debug) role is open for this namespace.
          type: bool
          sample: false
        inum:
          description: The namespace's inode number (what C(ip netns identify) and the kernel's messages name).
          type: int
          sample: 4026531840
        namespaces:
          description: The other namespaces gathered, by the name given, each with the keys above, or C(netns) and
            C(error) when it could not be gathered.
          type: dict
          sample: {}
        namespaces_not_gathered:
          description: Names left out because of O(max_namespaces).
          type: list
          elements: str
          returned: when some were left out
        invalid_log:
          description: The M(netfilter.conntrack.conntrack_invalid_log_facts) summary without samples (unless
            O(max_samples)), including whatever that module reports; C(error) when the log could not be read, empty
            with O(log_source=none).
          type: dict
        window:
          description: The debug windows recorded on the host, by snapshot id, with C(active) and C(deadline).
          type: dict
          sample: {}
        worst:
          description:
            - The figures inventories group on, over every namespace gathered.
            - C(usage_percent) (the highest), C(drops) (summed), C(table_full_events), C(dropping) (a drop counter or a
              table-full event), C(discrepancy), C(discrepancy_codes), C(no_logger), C(invalid_logged) (the log
              window holds invalid-packet lines), C(window_active) and C(errors) (namespaces not gathered).
          type: dict
          sample: {"usage_percent": 85.0, "dropping": false, "discrepancy": false, "no_logger": false}
textfile:
  description: The node_exporter textfile, when O(textfile_dir) is set.
  returned: when O(textfile_dir) is set
  type: dict
  sample: {"dest": "/var/lib/prometheus/node-exporter/netfilter_conntrack.prom", "written": true, "bytes": 3120}
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack_facts import gather
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack_summary import (
    FACTS_ARGUMENT_SPEC,
    LOGGER_FAMILIES,
    build_summary,
    failed_namespace,
    namespace_summary,
    render_textfile,
    trim_invalid_log,
    unreadable_name_label,
    write_textfile,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError, exit_with_result
from ansible_collections.netfilter.conntrack.plugins.module_utils._netns import NETNS_RUN_DIR, InNetns, open_netns
from ansible_collections.netfilter.conntrack.plugins.module_utils._nf_log import NONE, read_nf_log
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl import read_key
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl_keys import KEY_ALL_NETNS, KEY_LOG_INVALID
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_store import STATE_DIR, Store, snapshot_id


def build_module() -> AnsibleModule:
    spec = dict(FACTS_ARGUMENT_SPEC)
    spec["invalid_log"] = {"type": "dict"}
    return AnsibleModule(argument_spec=spec, supports_check_mode=True)


def read_optional(key: str) -> str | None:
    try:
        return read_key(key)
    except ConntrackModuleError:
        return None


def read_loggers() -> dict[str, str | None]:
    try:
        table = read_nf_log()
    except ConntrackModuleError:
        return {family: None for family in LOGGER_FAMILIES}
    loggers: dict[str, str | None] = {}
    for family, number in LOGGER_FAMILIES.items():
        bound = table[number].bound if number in table else NONE
        loggers[family] = None if bound == NONE else bound
    return loggers


def read_windows() -> dict[str, dict]:
    """The debug windows recorded on the host: {id: {active, deadline}} or {id: {error}} for one unreadable."""
    store = Store(STATE_DIR)
    windows: dict[str, dict] = {}
    for ident in store.ids():
        try:
            data = store.load(ident)
        except (ConntrackModuleError, OSError) as exc:
            windows[ident] = {"active": False, "error": getattr(exc, "msg", str(exc))}
            continue
        if data is None:
            continue
        windows[ident] = {"active": not data.get("expired"), "deadline": data.get("deadline"),
                          "netns": (data.get("netns") or {}).get("spec")}
    return windows


def selected_namespaces(params: dict) -> tuple[list[str], list[str]]:
    names = list(dict.fromkeys(params["netns"]))
    if params["all_named_netns"]:
        try:
            named = sorted(os.listdir(NETNS_RUN_DIR))
        except OSError:
            named = []
        names += [name for name in named if name not in names]
    left_out = [unreadable_name_label(name) or name for name in names[params["max_namespaces"]:]]
    return names[:params["max_namespaces"]], left_out


def gather_here(params: dict, netns: str | None, inum: int | None, windows: dict, invalid_log: dict) -> dict:
    facts, dummy = gather(
        summary_only=not params["dump_lists"],
        include_entries=params["full_lists"],
        max_entries=params["max_entries"],
        netns=netns,
        load_module=None,
    )
    return namespace_summary(
        facts, netns=netns, inum=inum, log_invalid=read_optional(KEY_LOG_INVALID), loggers=read_loggers(),
        window=windows.get(snapshot_id(netns)), invalid_log=invalid_log, full_lists=params["full_lists"],
    )


def run(module: AnsibleModule) -> dict:
    params = module.params
    for name in ("max_namespaces", "max_entries"):
        if params[name] < 0:
            raise ConntrackModuleError(f"{name} must be 0 or more, not {params[name]}")
    now = time.time()
    invalid_log = trim_invalid_log(params["invalid_log"])
    windows = read_windows()
    own = gather_here(params, None, os.stat("/proc/self/ns/net").st_ino, windows, invalid_log)
    selected, left_out = selected_namespaces(params)
    namespaces = {}
    for name in selected:
        label = unreadable_name_label(name)
        if label is not None:
            msg = f"the namespace name {label!r} is not valid UTF-8 (shown with \\x escapes): not gathered"
            module.warn(msg)
            namespaces[label] = failed_namespace(label, msg)
            continue
        try:
            fd, path = open_netns(name)
        except ConntrackModuleError as exc:
            namespaces[name] = failed_namespace(name, exc.msg)
            continue
        try:
            inum = os.fstat(fd).st_ino
            with InNetns(fd, path):
                namespaces[name] = gather_here(params, name, inum, windows, invalid_log)
        except ConntrackModuleError as exc:
            namespaces[name] = failed_namespace(name, exc.msg)
        finally:
            os.close(fd)
    summary = build_summary(now=now, kernel=os.uname().release, own=own, namespaces=namespaces,
                            invalid_log=invalid_log, window=windows, nf_log_all_netns=read_optional(KEY_ALL_NETNS),
                            truncated=left_out)
    result: dict = {"changed": False, "ansible_facts": {"conntrack_summary": summary}}
    if params["textfile_dir"]:
        written = write_textfile(params["textfile_dir"], render_textfile(summary), check_mode=module.check_mode)
        result["textfile"] = written
        result["changed"] = written["written"]
    return result


def main() -> None:
    module = build_module()
    exit_with_result(module, run)


if __name__ == "__main__":
    main()
