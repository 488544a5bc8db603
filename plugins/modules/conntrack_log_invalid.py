#!/usr/bin/python
# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: conntrack_log_invalid
short_description: Log packets that connection tracking considers invalid
version_added: 0.1.0
description:
  - Sets the kernel parameter C(net.netfilter.nf_conntrack_log_invalid), which makes conntrack log every packet of the
    chosen protocol that it classifies as invalid, with the reason (for example C(invalid tcp flag combination)).
  - The value is per network namespace; use O(netns) to debug a container or pod namespace.
  - The log lines only appear when a logger is bound for the packet's family (C(net.netfilter.nf_log.2) for IPv4,
    C(net.netfilter.nf_log.10) for IPv6); the module warns when it is not. Use M(netfilter.conntrack.nf_log_backend)
    to bind one.
  - Returns the previous value so that a later task can put it back.
author:
  - netfilter.conntrack maintainers (@netfilter-conntrack)
extends_documentation_fragment:
  - netfilter.conntrack._attributes
  - netfilter.conntrack._attributes.actionable
  - netfilter.conntrack._netns
options:
  protocol:
    description:
      - Protocol whose invalid packets are logged.
      - A name (V(tcp), V(udp), V(icmp), V(icmpv6), V(udplite), V(sctp), V(dccp), V(gre)), V(all) (255, every
        protocol), V(none) (0, logging off), another name from C(/etc/protocols), or a protocol number from 0 to 255.
      - Required when O(state=present).
    type: raw
  state:
    description:
      - V(present) sets O(protocol); V(absent) turns logging off (value 0).
    type: str
    choices: [present, absent]
    default: present
  load_module:
    description:
      - Load the C(nf_conntrack) kernel module when the parameter does not exist yet, as on kernels where
        conntrack is modular and nothing has used it so far. With V(false), a missing parameter is an error.
      - Nothing is loaded for O(state=absent), because an unloaded conntrack logs nothing.
    type: bool
    default: true
  persistent:
    description:
      - Also write the value to O(persistent_file) so that it survives a reboot. The default changes the running
        kernel only, because debugging is meant to be temporary.
      - With O(state=absent) and O(persistent=true) the file is removed.
      - Files under C(/etc/sysctl.d) apply to the initial network namespace only, so this cannot be combined with O(netns).
    type: bool
    default: false
  persistent_file:
    description:
      - The sysctl drop-in file used when O(persistent=true).
    type: path
    default: /etc/sysctl.d/90-netfilter-conntrack-log-invalid.conf
notes:
  - Needs root (write access to C(/proc/sys); C(CAP_SYS_ADMIN) to enter O(netns); C(CAP_SYS_MODULE) when the module
    must be loaded). In an unprivileged container C(/proc/sys) is read-only and the module fails without changing anything.
  - Since Linux 6.17 the kernel loads C(nf_log_syslog) by itself when this value is set.
seealso:
  - module: netfilter.conntrack.nf_log_backend
  - name: nf_conntrack sysctl documentation
    description: The kernel's description of nf_conntrack_log_invalid.
    link: https://docs.kernel.org/networking/nf_conntrack-sysctl.html
"""

EXAMPLES = r"""
- name: Log invalid TCP packets in the host namespace
  netfilter.conntrack.conntrack_log_invalid:
    protocol: tcp
  register: log_invalid

- name: Log invalid packets of every protocol inside a container's namespace
  netfilter.conntrack.conntrack_log_invalid:
    protocol: all
    netns: /proc/4242/ns/net

- name: Put the value back afterwards
  netfilter.conntrack.conntrack_log_invalid:
    protocol: "{{ log_invalid.previous.number }}"

- name: Turn logging off
  netfilter.conntrack.conntrack_log_invalid:
    state: absent
"""

RETURN = r"""
previous:
  description: The value before the module ran.
  returned: success
  type: dict
  contains:
    number:
      description: The protocol number (0 is off, 255 is every protocol).
      type: int
      sample: 0
    name:
      description: The protocol's name, or the number as a string when it has none.
      type: str
      sample: none
current:
  description: The value after the module ran (in check mode, the value it would set).
  returned: success
  type: dict
  contains:
    number:
      description: The protocol number.
      type: int
      sample: 6
    name:
      description: The protocol's name.
      type: str
      sample: tcp
key:
  description: The kernel parameter that was managed.
  returned: success
  type: str
  sample: net.netfilter.nf_conntrack_log_invalid
netns:
  description: The path of the network namespace the module acted in, or null for its own.
  returned: success
  type: str
  sample: /run/netns/blue
loaded_module:
  description: The kernel module that was loaded (or would be in check mode) because the parameter was missing.
  returned: when a module was loaded
  type: str
  sample: nf_conntrack
persistent_file:
  description: The sysctl drop-in that was written or removed.
  returned: when O(persistent=true)
  type: str
  sample: /etc/sysctl.d/90-netfilter-conntrack-log-invalid.conf
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack_log_invalid import KEY, set_log_invalid
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError, exit_with_result
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import ModuleHost
from ansible_collections.netfilter.conntrack.plugins.module_utils._names import (
    PROTOCOL_NONE,
    load_etc_protocols,
    protocol_name,
    resolve_protocol,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._netns import enter_netns
from ansible_collections.netfilter.conntrack.plugins.module_utils._nf_log import NONE
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl_keys import logger_key

# Families whose logger decides whether an invalid IPv4/IPv6 packet produces a log line.
LOGGED_FAMILIES = {2: f"{logger_key(2)} (ipv4)", 10: f"{logger_key(10)} (ipv6)"}


def persistent_content(number: int, name: str) -> str:
    return (
        "# Managed by Ansible (netfilter.conntrack.conntrack_log_invalid).\n"
        "# Logs packets that conntrack classifies as invalid; remove this file to stop at the next boot.\n"
        f"# {number} = {name}\n"
        f"{KEY} = {number}\n"
    )


def read_file(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConntrackModuleError(f"cannot read {path}: {exc.strerror}") from exc


def write_persistent_file(module: AnsibleModule, path: str, content: str | None) -> None:
    if content is None:
        try:
            os.unlink(path)
        except OSError as exc:
            raise ConntrackModuleError(f"cannot remove {path}: {exc.strerror}") from exc
        return
    tmp_path = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
    except OSError as exc:
        raise ConntrackModuleError(f"cannot write {path}: {exc.strerror}") from exc
    module.atomic_move(tmp_path, path)


def unbound_loggers(host: ModuleHost) -> list[str]:
    """Name the families whose invalid packets would be dropped from the log for lack of a logger."""
    try:
        loggers = host.kernel.read_nf_log()
    except ConntrackModuleError:
        return list(LOGGED_FAMILIES.values())
    return [label for family, label in LOGGED_FAMILIES.items() if family not in loggers or loggers[family].bound == NONE]


def run(module: AnsibleModule) -> dict:
    params = module.params
    etc_protocols = load_etc_protocols()
    if params["state"] == "absent":
        target = PROTOCOL_NONE
    elif params["protocol"] is None:
        raise ConntrackModuleError("protocol is required when state=present (use state=absent to turn logging off)")
    else:
        target = resolve_protocol(params["protocol"], etc_protocols)
    if params["persistent"] and params["netns"] is not None:
        raise ConntrackModuleError(
            "persistent=true cannot be combined with netns: /etc/sysctl.d applies to the initial namespace only"
        )

    netns = enter_netns(params["netns"])
    host = ModuleHost(module)
    result = set_log_invalid(host, target, params["load_module"], etc_protocols)
    result["netns"] = netns

    if params["persistent"]:
        path = params["persistent_file"]
        result["persistent_file"] = path
        wanted = None if target == PROTOCOL_NONE else persistent_content(target, protocol_name(target, etc_protocols))
        existing = read_file(path)
        if module._diff:
            result["diff"]["before"] += f"# {path}\n{existing or ''}"
            result["diff"]["after"] += f"# {path}\n{wanted or ''}"
        if existing != wanted:
            result["changed"] = True
            if not module.check_mode:
                write_persistent_file(module, path, wanted)

    # Here, not in set_log_invalid: the debug window binds the loggers in its next step.
    if target != PROTOCOL_NONE:
        missing = unbound_loggers(host)
        if missing:
            module.warn(
                f"{KEY} is {target} but no logger is bound for {', '.join(missing)}: the kernel will not log those"
                " invalid packets. Bind one with netfilter.conntrack.nf_log_backend (backend: auto)."
            )
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "protocol": {"type": "raw"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "load_module": {"type": "bool", "default": True},
            "persistent": {"type": "bool", "default": False},
            "persistent_file": {"type": "path", "default": "/etc/sysctl.d/90-netfilter-conntrack-log-invalid.conf"},
            "netns": {"type": "str"},
        },
        supports_check_mode=True,
    )
    exit_with_result(module, run)


if __name__ == "__main__":
    main()
