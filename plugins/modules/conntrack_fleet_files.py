#!/usr/bin/python
# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: conntrack_fleet_files
short_description: Write the fleet report of a debug window's collect on the controller
version_added: 0.3.0
description:
  - Writes C(fleet-summary.json) and, as O(formats) asks, C(fleet-summary.md) and C(fleet-report.html) into O(dest)
    on the controller, from the C(conntrack_debug_report) facts of several hosts (what
    M(netfilter.conntrack.conntrack_debug_report) returns). The texts are those of the
    P(netfilter.conntrack.conntrack_fleet_report#filter) filter (V(summary), V(markdown) and V(html)).
  - The C(collect) and C(fleet_summary) entry points of the C(netfilter.conntrack.debug) role run it once per play.
    Writing the three files in the action's own process costs no module run, where a C(ansible.builtin.copy) task
    delegated to the controller starts module processes for each file.
  - A file is only rewritten when its text differs; the directory is created with mode 0750, the files with 0640.
author:
  - netfilter.conntrack maintainers (@netfilter-conntrack)
extends_documentation_fragment:
  - netfilter.conntrack._attributes
  - netfilter.conntrack._attributes.action_plugin
attributes:
  action:
    details: Runs on the controller only and contacts no host.
  check_mode:
    support: full
    details: Says which files would be written and writes none.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A file whose text is the same is not written again.
options:
  reports:
    description:
      - The C(conntrack_debug_report) facts, one per host, as a list, or as a dictionary of host name to report.
      - "A report that is not a dictionary (a truncated or hand-edited fact-cache entry) does not stop the files: it is
        left out and named under C(unreadable) in C(fleet-summary.json) and in the reports (by its host name when
        O(reports) is a dictionary, by its position otherwise)."
    type: raw
    required: true
  failed:
    description:
      - Hosts whose collect failed (no report); they are listed and need attention first.
    type: list
    elements: str
    default: []
  dest:
    description:
      - The directory on the controller.
    type: path
    required: true
  formats:
    description:
      - The files written. V(json) is C(fleet-summary.json), which is written whether it is listed or not (as with
        the role's C(conntrack_debug_report_formats)); V(markdown) is C(fleet-summary.md), V(html) is
        C(fleet-report.html).
    type: list
    elements: str
    choices: [json, markdown, html]
    default: [json, markdown, html]
  redact_addresses:
    description:
      - Replace the IP addresses of the Markdown and HTML files by C(addr-1), C(addr-2), ..., as the filter's
        O(netfilter.conntrack.conntrack_fleet_report#filter:redact_addresses) does. C(fleet-summary.json) keeps them,
        like the per-host reports.
    type: bool
    default: false
seealso:
  - module: netfilter.conntrack.conntrack_debug_report
  - plugin: netfilter.conntrack.conntrack_fleet_report
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Write the fleet report of the play's hosts, without addresses in the Markdown and HTML files
  netfilter.conntrack.conntrack_fleet_files:
    reports: "{{ ansible_play_hosts | map('extract', hostvars, 'conntrack_debug_report') | select('defined') | list }}"
    failed: "{{ ansible_play_hosts_all | difference(ansible_play_hosts) }}"
    dest: "{{ playbook_dir }}/conntrack-debug-reports"
    redact_addresses: true
  run_once: true
"""

RETURN = r"""
files:
  description: The files, by format (V(json), V(markdown), V(html)), and whether this run wrote each.
  returned: always
  type: dict
  sample: {"json": {"path": "/srv/reports/fleet-summary.json", "written": true},
           "html": {"path": "/srv/reports/fleet-report.html", "written": false}}
"""
