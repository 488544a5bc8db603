#!/usr/bin/python
# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: conntrack_debug_report
short_description: Gather what a conntrack debug window showed on a host, as one small report
version_added: 0.2.0
description:
  - The host side of the C(netfilter.conntrack.debug) role's C(collect), in one task per host.
  - One run of the host program that enable installed (C(conntrack-debug-window), with the host's Ansible
    interpreter) reads the debug window (enable time, deadline, recorded and current values, the conntrack
    statistics delta since enable), gathers in every namespace of O(netns) what
    M(netfilter.conntrack.conntrack_lists_facts) and M(netfilter.conntrack.conntrack_plan_facts) gather, and reads
    the log lines written since the window opened (since boot without a window) as
    M(netfilter.conntrack.conntrack_invalid_log_facts) does, with the same code as those modules. It returns the
    summary as the fact C(conntrack_debug_report).
  - With O(local_facts), the same run writes the report to O(facts_path) on the host so that later fact gathering
    shows it as C(ansible_local.netfilter_conntrack); with O(report_dir), the action writes
    C(<inventory_hostname>.json) there on the controller.
  - Where the program is not installed (collect without enable, or another version), a temporary copy runs instead;
    nothing is installed.
author:
  - netfilter.conntrack maintainers (@netfilter-conntrack)
extends_documentation_fragment:
  - netfilter.conntrack._attributes
  - netfilter.conntrack._attributes.action_plugin
attributes:
  action:
    details: Runs on the controller and runs the host program once; the report file is written on the controller.
  check_mode:
    support: full
    details: Gathers the report; writes neither the local facts file nor the controller report.
  diff_mode:
    support: none
  facts:
    support: full
    description: Action returns an C(ansible_facts) dictionary that will update existing host facts.
  idempotent:
    support: full
    details: The local facts file is only rewritten when the report differs.
options:
  netns:
    description:
      - Network namespaces to report on, by name under C(/run/netns) or as a path. Empty means the connection's one.
    type: list
    elements: str
    default: []
  containers:
    description:
      - Containers or pods to report on, by name or id, resolved on the host by their runtime as
        M(netfilter.conntrack.conntrack_debug_window) resolves its O(netfilter.conntrack.conntrack_debug_window#module:containers),
        beside those of O(netns). The report names each by the runtime's whole name.
    type: list
    elements: str
    default: []
  max_samples:
    description:
      - How many parsed invalid-packet records are returned as samples (0 or more).
    type: int
    default: 10
  verdict_thresholds:
    description:
      - The thresholds of the verdicts (C(verdicts) in the report), by name; the ones not given keep their default.
      - V(rising_min_delta) (5) and V(rising_min_per_minute) (1.0) say when a counter rises (a delta over the window
        and its average rate); V(table_usage_percent) (90.0, every count sample against C(nf_conntrack_max));
        V(out_of_window_min_lines) (3); V(stale_udp_min_entries) (5, unreplied UDP entries towards one destination);
        V(chain_entries_per_bucket) (8.0).
      - An unknown name or a negative value is refused before the host is contacted.
    type: dict
  local_facts:
    description:
      - Write the report to O(facts_path) on the host.
    type: bool
    default: true
  facts_path:
    description:
      - The local facts file on the host.
    type: path
    default: /etc/ansible/facts.d/netfilter_conntrack.fact
  report_dir:
    description:
      - Directory on the controller for C(<inventory_hostname>.json) (created with mode 0750). Not written when
        omitted.
    type: path
  fetch_captures:
    description:
      - Also bring each pcapng file of the netlink capture (C(capture.namespaces.<window id>.pcapng) in the report)
        to C(<report_dir>/captures/<inventory_hostname>/<window id>.pcapng) on the controller, with ansible-core's
        M(ansible.builtin.fetch) action over the same connection. The host and window names are made safe as file
        names as for the report file. Returned as RV(capture_files). Nothing is fetched in check mode.
      - Needs O(report_dir).
    type: bool
    default: false
    version_added: 0.4.0
  log_source:
    description:
      - Where the kernel log is read, as O(netfilter.conntrack.conntrack_invalid_log_facts#module:source) of
        M(netfilter.conntrack.conntrack_invalid_log_facts).
      - V(file) reads O(log_path), for example a kernel log file that rsyslog writes.
    type: str
    choices: [auto, journal, kmsg, dmesg, file]
    default: auto
  log_path:
    description:
      - The file read with O(log_source=file).
    type: path
  program_dir:
    description:
      - Directory of the revert program on the host. Without it there (no enable yet), a temporary copy answers.
    type: path
    default: /usr/local/libexec/netfilter-conntrack
  validate_role_variables:
    description:
      - First validate the variables of the P(netfilter.conntrack.debug#role) role's entry point V(collect) against
        the role's own argument spec, with ansible-core's C(validate_argument_spec) action, with the same rules and
        messages as the role's validation task. The role's tasks set it, so that the collection's playbooks can
        include the role with C(rolespec_validate=false) and validate in this task instead of in one more task per
        host.
    type: bool
    default: false
notes:
  - Needs root on the host, like the fact modules whose code the host program runs.
  - The fact modules do not run as modules in this task, so C(module_defaults) set for them do not apply; set this
    module's options.
seealso:
  - module: netfilter.conntrack.conntrack_debug_window
  - module: netfilter.conntrack.conntrack_lists_facts
  - module: netfilter.conntrack.conntrack_invalid_log_facts
"""

EXAMPLES = r"""
- name: Collect the report of the open window and keep a copy on the controller
  netfilter.conntrack.conntrack_debug_report:
    report_dir: "{{ playbook_dir }}/conntrack-reports"

- name: Show the invalid packets by reason
  ansible.builtin.debug:
    var: conntrack_debug_report.invalid_log.by_reason
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to ansible_facts.
  returned: always
  type: dict
  contains:
    conntrack_debug_report:
      description:
        - C(host), C(collected_at) (UTC), C(window_active), C(windows) (the host program's status per snapshot,
          with C(stats_delta) in the counter names of M(netfilter.conntrack.conntrack_lists_facts), and
          C(scheduler.alive), false when the automatic revert is no longer armed), C(conntrack) (the
          M(netfilter.conntrack.conntrack_lists_facts) facts per namespace),
          C(invalid_log) (the M(netfilter.conntrack.conntrack_invalid_log_facts) summary), C(discrepancy) (finding
          codes of the count-versus-list check) and C(notes) (which also name a window whose automatic revert died or
          whose namespace vanished; those are task warnings too).
        - C(plan) is the M(netfilter.conntrack.conntrack_plan_facts) plan per namespace id (without its raw
          probe).
        - "C(diagnosis) (from 0.3.0): C(plan_problems) (each plan problem with its namespace), C(reconciliation) per
          namespace (C(counters), each non-zero statistics delta explained in plain language, and C(findings), for
          example C(invalid_not_logged) with its C(causes) when the invalid counter rose more than lines were
          attributed to the namespace), C(findings) (all of them with their namespace), C(table_full) (count, first
          and last time, C(by_netns), C(expect_full), C(ratelimit_suppressed) and C(usage_percent) per namespace at
          collect) and C(attribution) (log lines per namespace, by the C(IN=)/C(OUT=) interface's name and ifindex,
          and the lines no selected namespace owns, with the reason)."
        - "C(verdicts): per namespace id, the known conntrack problems its evidence shows, most important first: each
          with a stable C(id) (V(udp_insert_race), V(table_full), V(tcp_out_of_window), V(stale_udp_entries),
          V(count_list_drift), V(long_hash_chains), V(blinded_window)), a one-line C(name), the C(evidence) with its
          C(numbers), a C(confidence) (V(high), V(medium), V(low)), what to do (C(action)) and the C(guide) section
          of the troubleshooting guide. A namespace where none fires gets V(nothing_wrong), whose C(evidence) lists
          what was checked. A counter counts as rising only when it grew by at least 5 over the window at 1 per minute
          or more; without a window no counter-based verdict fires."
      type: dict
      returned: always
program:
  description: The host program that ran (its path, version, whether this run installed it, and the interpreter), as in
    the results of M(netfilter.conntrack.conntrack_debug_window).
  returned: always
  type: dict
  version_added: 0.3.0
  sample: {path: /usr/local/libexec/netfilter-conntrack/conntrack-debug-window.pyz, installed: false,
           version: 0d6c1b0ab3c54d5e2d4d1f4a2fba0c4bfa0e7f5e6b9a1c3d2e4f5a6b7c8d9e0f, interpreter: /usr/bin/python3}
facts_file:
  description: The local facts file and whether this run wrote it.
  returned: when O(local_facts=true)
  type: dict
  sample: {dest: /etc/ansible/facts.d/netfilter_conntrack.fact, written: true}
report_file:
  description: The report written on the controller.
  returned: when O(report_dir) is set, not in check mode
  type: str
capture_files:
  description: With O(fetch_captures), the pcapng file brought to the controller for each window id.
  returned: when O(fetch_captures=true), not in check mode
  type: dict
  version_added: 0.4.0
  sample: {init: /srv/reports/captures/web-1/init.pcapng}
"""
