#!/usr/bin/python
# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nf_log_backend
short_description: Choose the netfilter logger of an address family
version_added: 0.1.0
description:
  - Binds the logger that netfilter uses for an address family by setting C(net.netfilter.nf_log.<N>), for example
    C(nf_log_ipv4) for IPv4 so that C(nf_conntrack_log_invalid) lines reach the kernel log, or C(nfnetlink_log) to send
    them to a userspace listener such as ulogd.
  - Reads C(/proc/net/netfilter/nf_log) to learn which loggers are registered. When the wanted logger is not
    registered, loads the kernel module that provides it (C(nf_log_syslog) since Linux 5.13, where C(nf_log_ipv4) and
    friends are aliases; the per-family modules before). A logger that is still not registered is an error, never a
    silent change.
  - Optionally manages C(net.netfilter.nf_log_all_netns), which decides whether log lines from non-initial network
    namespaces (containers) reach the kernel log.
  - Several families are set together; if one of them fails, the ones already set in this run are put back.
author:
  - netfilter.conntrack maintainers (@netfilter-conntrack)
extends_documentation_fragment:
  - netfilter.conntrack._attributes
  - netfilter.conntrack._attributes.actionable
  - netfilter.conntrack._netns
options:
  family:
    description:
      - Address families to configure, by name (V(ipv4) = 2, V(ipv6) = 10, V(arp) = 3, V(netdev) = 5, V(bridge) = 7)
        or C(NFPROTO) number. A single value or a list.
      - Required with O(backend).
    type: list
    elements: raw
  backend:
    description:
      - The logger to bind, by name (V(nf_log_ipv4), V(nf_log_ipv6), V(nf_log_arp), V(nf_log_bridge), V(nf_log_netdev),
        V(nfnetlink_log)); the name is compared ignoring case and reported as the kernel spells it.
      - V(auto) picks the kernel-log (syslog) logger of each family; V(none) unbinds the family's logger.
    type: str
  load_module:
    description:
      - Load the kernel module providing the logger when it is not registered yet.
    type: bool
    default: true
  all_netns:
    description:
      - Set C(net.netfilter.nf_log_all_netns). With V(true), packets logged in any network namespace reach the kernel
        log; with V(false) (the kernel default) only the initial namespace's do. Omitted, the value is left alone.
      - In every module of the collection, C(all_netns) names this one host-wide switch. Here it sets the value both
        ways; M(netfilter.conntrack.conntrack_debug_window) sets it to 1 for the length of a window and restores it
        (V(false) there leaves it alone), and M(netfilter.conntrack.conntrack_plan_facts) plans as if it were 1.
      - This parameter exists only in the initial network namespace, so it cannot be combined with O(netns).
    type: bool
notes:
  - Needs root (write access to C(/proc/sys), C(CAP_SYS_MODULE) to load a logger module, C(CAP_SYS_ADMIN) for O(netns)).
  - Loading a logger module is not undone when a later step fails; a loaded but unbound logger changes nothing.
seealso:
  - module: netfilter.conntrack.conntrack_log_invalid
  - name: netfilter sysctl documentation
    description: The kernel's description of nf_log.<N> and nf_log_all_netns.
    link: https://docs.kernel.org/networking/netfilter-sysctl.html
"""

EXAMPLES = r"""
- name: Send IPv4 and IPv6 invalid-packet logs to the kernel log
  netfilter.conntrack.nf_log_backend:
    family: [ipv4, ipv6]
    backend: auto
  register: backends

- name: Let log lines from container namespaces reach the kernel log
  netfilter.conntrack.nf_log_backend:
    all_netns: true

- name: Send IPv4 logs to userspace (ulogd) in a named namespace
  netfilter.conntrack.nf_log_backend:
    family: ipv4
    backend: nfnetlink_log
    netns: blue

- name: Restore what was bound before
  netfilter.conntrack.nf_log_backend:
    family: "{{ item.key }}"
    backend: "{{ item.value }}"
  loop: "{{ backends.previous | dict2items }}"
"""

RETURN = r"""
previous:
  description: The logger bound to each requested family before the module ran (V(NONE) when none), keyed by family name.
  returned: when O(backend) is set
  type: dict
  sample: {"ipv4": "NONE", "ipv6": "NONE"}
current:
  description: The logger bound to each requested family after the module ran (in check mode, the one it would bind).
  returned: when O(backend) is set
  type: dict
  sample: {"ipv4": "nf_log_ipv4", "ipv6": "nf_log_ipv6"}
all_netns:
  description: The value of C(net.netfilter.nf_log_all_netns) before and after.
  returned: when O(all_netns) is set
  type: dict
  contains:
    previous:
      description: The value before the module ran.
      type: bool
      sample: false
    current:
      description: The value after the module ran.
      type: bool
      sample: true
loaded_modules:
  description: Kernel modules that were loaded (in check mode, that would be loaded) to register a logger.
  returned: success
  type: list
  elements: str
  sample: ["nf_log_ipv4"]
netns:
  description: The path of the network namespace the module acted in, or null for its own.
  returned: success
  type: str
  sample: /run/netns/blue
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import exit_with_result
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import ModuleHost
from ansible_collections.netfilter.conntrack.plugins.module_utils._netns import enter_netns
from ansible_collections.netfilter.conntrack.plugins.module_utils._nf_log import set_loggers


def run(module: AnsibleModule) -> dict:
    params = module.params
    netns = enter_netns(params["netns"])
    result = set_loggers(ModuleHost(module), params["family"], params["backend"], params["all_netns"],
                         params["load_module"], in_netns=params["netns"] is not None)
    result["netns"] = netns
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "family": {"type": "list", "elements": "raw"},
            "backend": {"type": "str"},
            "load_module": {"type": "bool", "default": True},
            "all_netns": {"type": "bool"},
            "netns": {"type": "str"},
        },
        required_one_of=[["backend", "all_netns"]],
        supports_check_mode=True,
    )
    exit_with_result(module, run)


if __name__ == "__main__":
    main()
