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
        log; with V(false) (the kernel default) only the initial namespace's do.
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

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError, exit_with_result
from ansible_collections.netfilter.conntrack.plugins.module_utils._kmod import modprobe
from ansible_collections.netfilter.conntrack.plugins.module_utils._names import family_name, resolve_family
from ansible_collections.netfilter.conntrack.plugins.module_utils._netns import enter_netns
from ansible_collections.netfilter.conntrack.plugins.module_utils._nf_log import NONE, find_registered, read_nf_log, wanted_logger
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl import key_exists, read_key, write_key

ALL_NETNS_KEY = "net.netfilter.nf_log_all_netns"


def family_key(number: int) -> str:
    return f"net.netfilter.nf_log.{number}"


def resolve_registered(module: AnsibleModule, family: int, wanted: str, loaded: list[str]) -> str:
    """Return ``wanted`` spelled as the kernel registered it, loading its module when allowed."""
    if wanted == NONE:
        return NONE
    table = read_nf_log()
    registered = table.get(family)
    name = find_registered(wanted, registered.registered if registered else ())
    if name is not None:
        return name
    elsewhere = [family_name(other) for other, loggers in sorted(table.items()) if find_registered(wanted, loggers.registered)]
    if elsewhere:
        raise ConntrackModuleError(
            f"logger {wanted} serves family {', '.join(elsewhere)}, not {family_name(family)} "
            f"(registered for {family_name(family)}: {', '.join(registered.registered) if registered else 'none'})"
        )
    if not module.params["load_module"]:
        raise ConntrackModuleError(
            f"logger {wanted} is not registered for family {family_name(family)} "
            f"(registered: {', '.join(registered.registered) if registered and registered.registered else 'none'});"
            " set load_module=true to load its kernel module"
        )
    modprobe(module, wanted.lower(), dry_run=module.check_mode)
    if wanted.lower() not in loaded:
        loaded.append(wanted.lower())
    if module.check_mode:
        return wanted.lower()
    registered = read_nf_log().get(family)
    name = find_registered(wanted, registered.registered if registered else ())
    if name is None:
        raise ConntrackModuleError(
            f"loaded kernel module {wanted.lower()} but logger {wanted} is still not registered for family "
            f"{family_name(family)} (registered: {', '.join(registered.registered) if registered else 'none'})"
        )
    return name


def set_backends(module: AnsibleModule, families: list[int], backend: str, result: dict) -> None:
    plan = []
    for family in families:
        key = family_key(family)
        if not key_exists(key):
            raise ConntrackModuleError(f"{key} does not exist: this kernel has no netfilter logging for family {family}")
        wanted = wanted_logger(backend, family)
        plan.append((family, key, read_key(key), resolve_registered(module, family, wanted, result["loaded_modules"])))

    result["previous"] = {family_name(family): before for family, _key, before, _after in plan}
    result["current"] = {family_name(family): after for family, _key, _before, after in plan}
    pending = [(key, before, after) for _family, key, before, after in plan if before.lower() != after.lower()]
    if not pending:
        return
    result["changed"] = True
    if module.check_mode:
        return
    applied = []
    try:
        for key, before, after in pending:
            write_key(key, after)
            applied.append((key, before))
            if read_key(key).lower() != after.lower():
                raise ConntrackModuleError(f"wrote {after} to {key} but the kernel reads back {read_key(key)}")
    except ConntrackModuleError as exc:
        for key, before in reversed(applied):
            write_key(key, before)
        raise ConntrackModuleError(f"{exc.msg}; restored {len(applied)} family setting(s) changed before the failure") from exc


def set_all_netns(module: AnsibleModule, wanted: bool, result: dict) -> None:
    if not key_exists(ALL_NETNS_KEY):
        if module.params["netns"] is not None:
            raise ConntrackModuleError(
                f"{ALL_NETNS_KEY} exists only in the initial network namespace: set all_netns without netns"
            )
        raise ConntrackModuleError(f"{ALL_NETNS_KEY} does not exist: this is not the initial network namespace")
    before = read_key(ALL_NETNS_KEY) != "0"
    result["all_netns"] = {"previous": before, "current": wanted}
    if before != wanted:
        result["changed"] = True
        if not module.check_mode:
            write_key(ALL_NETNS_KEY, "1" if wanted else "0")


def diff_text(result: dict, state: str) -> str:
    lines = [f"{family_key(resolve_family(name))} = {logger}" for name, logger in result.get(state, {}).items()]
    if "all_netns" in result:
        lines.append(f"{ALL_NETNS_KEY} = {int(result['all_netns'][state])}")
    return "".join(line + "\n" for line in lines)


def run(module: AnsibleModule) -> dict:
    params = module.params
    families = []
    for value in params["family"] or []:
        number = resolve_family(value)
        if number not in families:
            families.append(number)
    if params["backend"] is not None:
        if not families:
            raise ConntrackModuleError("family is required with backend (for example family: [ipv4, ipv6])")
        for family in families:
            wanted_logger(params["backend"], family)
    elif families:
        raise ConntrackModuleError("family was given without backend: say which logger to bind (auto, none or a name)")

    result: dict = {"changed": False, "loaded_modules": [], "netns": enter_netns(params["netns"])}
    if params["backend"] is not None:
        set_backends(module, families, params["backend"], result)
    if params["all_netns"] is not None:
        set_all_netns(module, params["all_netns"], result)
    if module._diff:
        result["diff"] = {"before": diff_text(result, "previous"), "after": diff_text(result, "current")}
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
