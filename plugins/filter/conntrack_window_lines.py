# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: conntrack_window_lines
short_description: One readable line per host of what the debug role's enable or revert did, for a batch of hosts
version_added: 0.3.0
description:
  - The line of P(netfilter.conntrack.conntrack_window_line#filter) for each of the given hosts that has the
    registered result O(variable), starting with the host's name, in the order of the hosts given.
  - A host without that variable (it did not run the task) has no line.
  - The debug role prints these lines once per batch (C(run_once)) instead of one task per host.
author:
  - netfilter.conntrack contributors
positional: hostvars, variable
options:
  _input:
    description: The inventory names of the hosts, for example C(ansible_play_batch).
    type: list
    elements: str
    required: true
  hostvars:
    description: The C(hostvars) magic variable.
    type: dict
    required: true
  variable:
    description: The name under which M(netfilter.conntrack.conntrack_debug_window)'s result was registered.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Say what enable did on each host of the batch, in one task
  ansible.builtin.debug:
    msg: "{{ ansible_play_batch | netfilter.conntrack.conntrack_window_lines(hostvars, 'conntrack_debug_enabled') }}"
  run_once: true
"""

RETURN = r"""
_value:
  description: The lines, one per host that has the result.
  type: list
  elements: str
  sample:
    - "web-01: on until 2026-12-02 05:12:01 UTC by systemd-timer; changed: Log invalid packets"
    - "web-02: FAILED: enable failed at 'Log invalid packets': ..."
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.netfilter.conntrack.plugins.plugin_utils._window_result_line import window_line


def conntrack_window_lines(hosts, hostvars, variable):
    if isinstance(hosts, str) or not isinstance(variable, str):
        raise AnsibleFilterError("conntrack_window_lines wants a list of host names, hostvars and a variable name")
    lines = []
    for host in hosts:
        host_vars = hostvars[host]
        if variable in host_vars:
            lines.append(window_line(host_vars[variable], host))
    return lines


class FilterModule:
    def filters(self):
        return {"conntrack_window_lines": conntrack_window_lines}
