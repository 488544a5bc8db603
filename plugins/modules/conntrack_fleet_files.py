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
  template_markdown:
    description:
      - A Jinja2 template of your own for C(fleet-summary.md), instead of the collection's
        (C(roles/debug/templates/fleet-summary.md.j2) in the collection, a good start for a copy).
      - "It gets the variables the collection's template uses: C(hosts), C(total), C(version), C(window_text),
        C(redacted), C(verdicts) (hosts grouped by verdict id), C(verdict_groups), C(verdict_items) (each verdict
        with its C(host)), C(quiet) (hosts where nothing was found, with what was C(checked)), C(unreadable),
        C(attention), C(host_headers), C(host_rows), C(reasons), C(peers), C(plan_problems), C(findings),
        C(table_full), C(samples), C(notes), and the evidence part: C(evidence_headers), C(evidence_rows),
        C(evidence_captured) and C(evidence_kernel_log) (whether any host captured through netlink, or read the
        kernel log), C(events_meaning), C(kernel_log_meaning), C(fetch_note), C(budget_lines) and
        C(collector_lines). Values are not escaped by themselves: pass each through the filter C(md), as the
        collection's template does."
      - Read on the controller; the environment has C(StrictUndefined), C(trim_blocks) and C(lstrip_blocks).
    type: path
  template_html:
    description:
      - A Jinja2 template of your own for C(fleet-report.html), instead of the collection's
        (C(roles/debug/templates/fleet-report.html.j2) in the collection). Every value is HTML-escaped
        (autoescape).
      - It gets the Markdown template's variables plus C(title), C(style), C(script) and C(csp) (the page's
        Content-Security-Policy, which allows only that style and script; change it if your page loads anything),
        C(html_rows), C(chart), C(counters), C(delta_rows), C(samples_by_reason), C(unparsed), C(red_meaning) and
        C(amber_meaning).
    type: path
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

- name: The same with our own HTML page (a runbook link, a logo), from a copy of the collection's template
  netfilter.conntrack.conntrack_fleet_files:
    reports: "{{ ansible_play_hosts | map('extract', hostvars, 'conntrack_debug_report') | select('defined') | list }}"
    dest: "{{ playbook_dir }}/conntrack-debug-reports"
    template_html: "{{ playbook_dir }}/templates/our-fleet-report.html.j2"
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
