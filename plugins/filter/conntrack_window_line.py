# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: conntrack_window_line
short_description: One readable line of what the debug role's enable or revert did on a host
version_added: 0.3.0
description:
  - From the result of M(netfilter.conntrack.conntrack_debug_window).
  - For C(state=enabled), the deadline and the automatic revert's scheduler, the steps that changed something,
    the steps that found the host as wanted and left it alone, and how many original values were recorded.
  - For C(state=reverted), the values restored (from and to), the values left alone because someone else
    changed them during the window, and windows whose namespace is gone.
author:
  - netfilter.conntrack contributors
positional: host
options:
  _input:
    description: The registered result of M(netfilter.conntrack.conntrack_debug_window).
    type: dict
    required: true
  host:
    description: A name to start the line with.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Say what enable did
  ansible.builtin.debug:
    msg: "{{ conntrack_debug_enabled | netfilter.conntrack.conntrack_window_line }}"
"""

RETURN = r"""
_value:
  description: The line.
  type: str
  sample: "on until 2026-12-02 05:12:01 UTC by detached-process; changed: Log invalid packets [nfct-demo-rcv]"
"""

from ansible_collections.netfilter.conntrack.plugins.plugin_utils._window_result_line import window_line


def conntrack_window_line(result, host=""):
    return window_line(result, host)


class FilterModule:
    def filters(self):
        return {"conntrack_window_line": conntrack_window_line}
