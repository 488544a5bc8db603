# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Note that this doc fragment is **PRIVATE** to the collection. It can have breaking changes at any time.
    DOCUMENTATION = r"""
options:
  netns:
    description:
      - Network namespace to act in. Every C(net.netfilter.*) value and every conntrack table is per network namespace.
      - A name under C(/run/netns) (as created by C(ip netns add)) or an absolute path to a namespace file such as C(/proc/1234/ns/net).
      - When omitted, the module acts in the namespace it runs in, usually the host's.
      - One namespace, as a string. The modules that work on several namespaces in one task
        (M(netfilter.conntrack.conntrack_debug_window), M(netfilter.conntrack.conntrack_debug_report) and
        M(netfilter.conntrack.conntrack_facts)) take a list of the same values under the same name.
      - Entering a namespace needs C(CAP_SYS_ADMIN).
    type: str
"""
