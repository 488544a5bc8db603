# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: conntrack_fleet_report
short_description: The debug role's collect results as a terminal table, Markdown, an HTML page or AWX stats
version_added: 0.3.0
description:
  - Renders the C(conntrack_debug_report) facts of several hosts (as the collect entry point of the
    C(netfilter.conntrack.debug) role gathers them with M(netfilter.conntrack.conntrack_debug_report)) for people.
  - V(table) gives a list of lines of at most 108 printable ASCII characters (119 columns in the default
    callback's output of C(ansible.builtin.debug)), one row per host and namespace (invalid lines and the top
    reason, the C(invalid), C(drop), C(insert_failed) and C(early_drop) counter deltas since enable, table usage,
    table-full events, discrepancy codes, plan problems), then the fleet roll-up (reasons by number of hosts, top
    peers, plan problems, the hosts that need attention first). Beyond O(max_hosts) hosts, the hosts that need
    attention most are shown, most first, and the others are counted.
  - V(summary) gives the dictionary of C(fleet-summary.json) (hosts by reason, by plan problem, with a discrepancy,
    with table-full events, reconciliation findings, notes); V(markdown) gives the text of C(fleet-summary.md),
    V(html) one self-contained page (inline style, script and
    SVG; its Content-Security-Policy forbids loading anything), V(stats) a small dictionary for
    C(ansible.builtin.set_stats).
  - The same reports always give the same text; the filter reads no clock and nothing from the network.
author:
  - netfilter.conntrack contributors
positional: format
options:
  _input:
    description:
      - The C(conntrack_debug_report) facts, one per host (a list, or a dictionary of host name to report).
      - Items that are not dictionaries are left out and named as unreadable (by host name with a dictionary).
    type: raw
    required: true
  format:
    description: What to render.
    type: str
    choices: [table, markdown, html, stats, summary]
    default: table
  failed:
    description: Hosts whose collect failed (no report); they are listed and need attention first.
    type: list
    elements: str
    default: []
  redact_addresses:
    description:
      - Replace the IP addresses of sample lines and peers (and MAC addresses of lines that did not parse) by
        C(addr-1), C(addr-2), ..., the same name for the same address throughout, for reports that leave the team.
      - Host names are kept.
    type: bool
    default: false
  max_hosts:
    description: The most hosts of the V(table) format (a host has one row per namespace).
    type: int
    default: 50
  version:
    description: The collection version to show; by default the version of this collection.
    type: str
  template:
    description:
      - With V(markdown) or V(html), a Jinja2 template of your own (a path on the controller) instead of the
        collection's; see the options C(template_markdown) and C(template_html) of
        M(netfilter.conntrack.conntrack_fleet_files) for its variables.
    type: path
"""

EXAMPLES = r"""
- name: Show the fleet table
  ansible.builtin.debug:
    msg: "{{ ansible_play_hosts | map('extract', hostvars, 'conntrack_debug_report') | select('defined')
             | netfilter.conntrack.conntrack_fleet_report('table', failed=ansible_play_hosts_all | difference(ansible_play_hosts)) }}"
  run_once: true

- name: Write the HTML page without addresses
  ansible.builtin.copy:
    content: "{{ reports | netfilter.conntrack.conntrack_fleet_report('html', redact_addresses=true) }}"
    dest: conntrack-debug-reports/fleet-report.html
    mode: "0640"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
_value:
  description:
    - V(table) a list of lines; V(markdown) and V(html) a string; V(summary) the dictionary of
      C(fleet-summary.json); V(stats) a dictionary with C(hosts),
      C(collect_failed), C(invalid_lines), C(reasons), C(top_peers), C(plan_problems), C(hosts_with_table_full),
      C(attention), C(window) and C(version).
  type: raw
"""

import json
import os

from ansible.errors import AnsibleFilterError
from jinja2 import TemplateError

from ansible_collections.netfilter.conntrack.plugins.plugin_utils._fleet_pages import render_html, render_markdown
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._fleet_report import (
    MAX_HOSTS, build_model, render_stats, render_summary, render_table)

RENDERERS = {"table": render_table, "markdown": render_markdown, "html": render_html, "stats": render_stats,
             "summary": render_summary}


def collection_version() -> str | None:
    """This collection's version: MANIFEST.json of an installed collection, else galaxy.yml of a source tree."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        with open(os.path.join(root, "MANIFEST.json"), encoding="utf-8") as handle:
            return str(json.load(handle)["collection_info"]["version"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        with open(os.path.join(root, "galaxy.yml"), encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("version:"):
                    return line.split(":", 1)[1].strip().strip("'\"")
    except OSError:
        pass
    return None


def conntrack_fleet_report(reports, format="table", failed=None, redact_addresses=False, max_hosts=MAX_HOSTS,
                           version=None, template=None):
    # pylint: disable=redefined-builtin
    if format not in RENDERERS:
        raise AnsibleFilterError(f"conntrack_fleet_report: format must be one of {', '.join(RENDERERS)} (got {format!r})")
    if not isinstance(reports, (list, tuple, dict)):
        raise AnsibleFilterError("conntrack_fleet_report: the input must be a list of conntrack_debug_report facts"
                                 " or a dictionary of host name to report")
    model = build_model(reports, failed=failed or [], redact_addresses=bool(redact_addresses),
                        version=version or collection_version())
    if format == "table":
        return render_table(model, max_hosts=int(max_hosts))
    if format in ("markdown", "html"):
        try:
            return RENDERERS[format](model, template=template)
        except (OSError, TemplateError) as exc:
            raise AnsibleFilterError(f"conntrack_fleet_report: cannot render {format} from {template or 'the collection'}'s"
                                     f" template: {exc}") from exc
    return RENDERERS[format](model)


class FilterModule:
    def filters(self):
        return {"conntrack_fleet_report": conntrack_fleet_report}
