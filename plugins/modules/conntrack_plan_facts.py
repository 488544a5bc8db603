#!/usr/bin/python
# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: conntrack_plan_facts
short_description: Say which conntrack troubleshooting steps are effective on a host and namespace, and why
version_added: 0.3.0
description:
  - Probes one network namespace and returns, for each step of the conntrack troubleshooting article, whether it
    does anything here and why, as RV(ansible_facts.conntrack_plan). It reads only (C(/proc/sys), C(/proc/net),
    the dynamic-debug control file, the ruleset) and never loads a module or mounts anything.
  - "The steps: C(nf_conntrack_log_invalid) (on, for which protocol); the logger (bound, registered, and whether
    setting log_invalid loads C(nf_log_syslog) by itself, from Linux 6.17, when no logger is registered); C(nf_log_all_netns)
    (needed outside the initial namespace, and set or not); dynamic debug (present, how many conntrack C(pr_debug)
    sites); the unconfirmed list (dumpable) and the dying list (what it means on this kernel); and the settings that
    blind the invalid log: C(nf_conntrack_tcp_be_liberal), C(nf_conntrack_tcp_ignore_invalid_rst),
    C(nf_conntrack_tcp_loose) and C(notrack) / C(ct state untracked) rules, each with what it hides."
  - Every step says what decided it, V(probe) (read from the kernel), V(version) (only the kernel version could
    tell) or V(unknown). Distribution kernels that backport netfilter changes (Enterprise Linux, UEK, Amazon Linux,
    SUSE) get V(unknown) where only the version would decide, since their version number does not.
  - Also returns the namespace's interfaces (name, ifindex, MAC), which M(netfilter.conntrack.conntrack_invalid_log_facts)
    uses to attribute log lines to namespaces.
  - A separate module rather than part of M(netfilter.conntrack.conntrack_lists_facts), because the role's enable runs
    it (also in check mode) and must not dump the conntrack table to do so.
author:
  - netfilter.conntrack maintainers (@netfilter-conntrack)
extends_documentation_fragment:
  - netfilter.conntrack._attributes
  - netfilter.conntrack._attributes.facts
  - netfilter.conntrack._netns
options:
  log_invalid:
    description:
      - Plan as if C(nf_conntrack_log_invalid) had this value (a protocol number as text, V(255) for all), for
        example the value enable is about to set in check mode. The probed value is still returned in
        RV(ansible_facts.conntrack_plan.probe).
    type: str
  bind:
    description:
      - Plan as if the kernel-log loggers of the families were bound (what enable does).
    type: bool
    default: false
  all_netns:
    description:
      - Plan as if C(net.netfilter.nf_log_all_netns) were 1, which is what
        O(netfilter.conntrack.conntrack_debug_window#module:all_netns=true) sets for the length of a window. With
        V(false) the plan uses the host's current value.
      - The same host-wide switch as O(netfilter.conntrack.nf_log_backend#module:all_netns).
    type: bool
    default: false
  ruleset:
    description:
      - Look for C(notrack) and C(ct state untracked) rules with C(nft list ruleset), C(iptables-save -t raw) and
        C(ip6tables-save -t raw) when they are installed.
    type: bool
    default: true
notes:
  - The kernel paths the plan relies on are cited in the collection's C(plugins/module_utils/_plan.py).
"""

EXAMPLES = r"""
- name: Which of the article's steps would do anything in the pod's namespace?
  netfilter.conntrack.conntrack_plan_facts:
    netns: /proc/4242/ns/net

- name: Show the problems
  ansible.builtin.debug:
    msg: "{{ ansible_facts.conntrack_plan.problems | map(attribute='text') | list }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to ansible_facts.
  returned: always
  type: dict
  contains:
    conntrack_plan:
      description: The plan of the namespace.
      returned: always
      type: dict
      contains:
        kernel:
          description: The kernel release, its version, and whether a vendor's backports make the version meaningless.
          type: dict
          returned: always
          sample: {"release": "5.14.0-427.el9.x86_64", "version": "5.14", "backports": true,
                   "vendor": "Enterprise Linux 9 (RHEL, CentOS Stream, Rocky, Alma, Oracle)"}
        netns:
          description: The namespace as given (null for the module's own).
          type: str
          returned: always
        initial_namespace:
          description: Whether this is the host's initial network namespace.
          type: bool
          returned: always
        netns_inum:
          description: The namespace's inode number, which Linux 6.17 and later print in C(table full in netns N).
          type: int
          returned: always
        steps:
          description:
            - One entry per step (C(log_invalid), C(logger), C(all_netns), C(dynamic_debug), C(unconfirmed_list),
              C(dying_list), C(blinders)), each with C(effective) (or C(dumpable), C(meaning), C(found)),
              C(decided_by) (V(probe), V(version) or V(unknown)) and C(why).
          type: dict
          returned: always
          sample: {"all_netns": {"decided_by": "probe", "effective": false, "needed": true, "value": "0",
                   "why": "a child namespace and nf_log_all_netns=0 on the host: nf_log_syslog drops every line it logs"}}
        blinders:
          description: Settings that hide packets from the invalid log, each with C(setting), C(value) and C(hides).
          type: list
          elements: dict
          returned: always
        problems:
          description: What keeps the invalid log from showing anything here, each with a C(code) and a C(text).
          type: list
          elements: dict
          returned: always
          sample: [{"code": "no_logger_bound", "text": "log_invalid on but nothing can be logged: no logger bound"}]
        interfaces:
          description: The namespace's interfaces.
          type: list
          elements: dict
          returned: always
          sample: [{"name": "eth0", "ifindex": 2, "mac": "52:54:00:12:34:56"}]
        probe:
          description: The raw values read.
          type: dict
          returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import exit_with_result
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import ModuleHost
from ansible_collections.netfilter.conntrack.plugins.module_utils._netns import enter_netns
from ansible_collections.netfilter.conntrack.plugins.module_utils._plan import intended_changes, plan_from, probe, read_outside


def run_module(module: AnsibleModule) -> dict:
    params = module.params
    intended = intended_changes(params["log_invalid"], params["bind"], params["all_netns"])
    host = ModuleHost(module)
    outside = read_outside(host.kernel)
    enter_netns(params["netns"])
    probed = probe(host, params["netns"], outside, ruleset=params["ruleset"])
    return {"changed": False, "ansible_facts": {"conntrack_plan": plan_from(probed, intended)}}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "log_invalid": {"type": "str"},
            "bind": {"type": "bool", "default": False},
            "all_netns": {"type": "bool", "default": False},
            "ruleset": {"type": "bool", "default": True},
            "netns": {"type": "str"},
        },
        supports_check_mode=True,
    )
    exit_with_result(module, run_module)


if __name__ == "__main__":
    main()
