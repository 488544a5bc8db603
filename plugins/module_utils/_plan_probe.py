# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Read on the host what the plan needs, inside the network namespace the caller has entered.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

:func:`probe` returns plain data; :func:`_plan.build_plan` turns it into the plan, so recorded probes of
any kernel can be tested without this module.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import struct
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._dynamic_debug import read_control
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import Kernel
from ansible_collections.netfilter.conntrack.plugins.module_utils._plan_steps import BLINDERS
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl_keys import KEY_ALL_NETNS, KEY_LOG_INVALID

SIOCGIFHWADDR = 0x8927
# The directory of the netfilter keys: absent where netfilter's sysctls are not registered at all.
NETFILTER_KEYS = "net.netfilter"
_NFT_NOTRACK_RE = re.compile(r"\bnotrack\b|\bct state\b[^;\n]*\buntracked\b")
_XT_NOTRACK_RE = re.compile(r"-j NOTRACK\b|-j CT --notrack\b")


def _hardware_address(sock: socket.socket, name: str) -> str | None:
    """The MAC address of an interface of the socket's namespace (SIOCGIFHWADDR); None when it has none."""
    try:
        raw = fcntl.ioctl(sock.fileno(), SIOCGIFHWADDR, struct.pack("256s", name.encode()[:15]))
    except OSError:
        return None
    return ":".join(f"{byte:02x}" for byte in raw[18:24])


def interfaces() -> list[dict[str, t.Any]]:
    """Name, ifindex and MAC address of every interface of the current network namespace.

    Read through a socket of this namespace, not /sys/class/net, which shows the namespace sysfs was mounted in.
    """
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for index, name in socket.if_nameindex():
            found.append({"name": name, "ifindex": index, "mac": _hardware_address(sock, name)})
    return found


def notrack_rules(run: t.Callable[[list[str]], tuple[int, str]], which: t.Callable[[str], str | None]) -> list[str] | None:
    """Rules that exempt packets from tracking (nft notrack / ct state untracked, iptables -j NOTRACK / CT --notrack).

    ``which`` finds a program, ``run`` runs an argv list and returns ``(rc, stdout)``. None when no tool answered.
    """
    rules: list[str] = []
    seen_tool = False
    for program, args, pattern in (("nft", ["list", "ruleset"], _NFT_NOTRACK_RE), ("iptables-save", ["-t", "raw"], _XT_NOTRACK_RE),
                                   ("ip6tables-save", ["-t", "raw"], _XT_NOTRACK_RE)):
        path = which(program)
        if not path:
            continue
        rc, out = run([path] + args)
        if rc != 0:
            continue
        seen_tool = True
        rules += [line.strip() for line in out.splitlines() if pattern.search(line)]
    return rules if seen_tool else None


def _sysctl(kernel: Kernel, key: str) -> str | None:
    """The value of a key, None where it does not exist or cannot be read: a probe reports what it finds."""
    try:
        return kernel.sysctl_value(key)
    except ConntrackModuleError:
        return None


def dynamic_debug(kernel: Kernel) -> dict:
    """Whether the kernel has dynamic debug and how many conntrack sites it has; debugfs is never mounted here."""
    try:
        path, dummy = kernel.find_control()
    except ConntrackModuleError as exc:
        if exc.details.get("reason") == "no-dynamic-debug":
            return {"present": False, "reason": "this kernel has no dynamic debug (no control file)"}
        return {"present": None, "reason": "debugfs is not mounted, so the control file cannot be read (not mounted by a probe)"}
    try:
        sites = read_control(path)
    except ConntrackModuleError as exc:
        return {"present": True, "reason": exc.msg, "conntrack_sites": None}
    conntrack = [site for site in sites if site.module.startswith("nf_conntrack") or "nf_conntrack" in site.filename]
    return {"present": True, "control": path, "conntrack_sites": len(conntrack),
            "tcp_sites": sum(1 for site in conntrack if site.filename.endswith("nf_conntrack_proto_tcp.c"))}


def _namespace_inode(kernel: Kernel) -> int:
    dummy, identity = kernel.open_namespace(None)
    return identity["ino"]


def read_outside(kernel: Kernel | None = None) -> tuple:
    """What probe needs from the caller's own namespace, read before it enters the one to plan for:
    nf_log_all_netns (it exists only in the initial namespace) and the caller's namespace inode."""
    kernel = kernel or Kernel()
    return _sysctl(kernel, KEY_ALL_NETNS), _namespace_inode(kernel)


def probe(host, netns: str | None, outside: tuple, ruleset: bool = True) -> dict:
    """What build_plan needs, read through ``host.kernel`` inside the namespace the caller has entered;
    ``outside`` is read_outside()'s."""
    kernel = host.kernel
    all_netns, host_inum = outside
    inum = _namespace_inode(kernel)
    initial = kernel.sysctl_exists(KEY_ALL_NETNS) if kernel.sysctl_exists(NETFILTER_KEYS) else None
    if initial is None:
        initial = inum == host_inum and all_netns is not None
    try:
        nf_log = {family: {"bound": one.bound, "registered": list(one.registered)} for family, one in kernel.read_nf_log().items()}
    except ConntrackModuleError:
        nf_log = None

    def run(argv: list) -> tuple:
        rc, out, dummy = host.run(argv)
        return rc, out

    return {
        "release": os.uname().release,
        "netns": netns,
        "inum": inum,
        "initial": initial,
        "all_netns": all_netns,
        "log_invalid": _sysctl(kernel, KEY_LOG_INVALID),
        "nf_log": None if nf_log is None else {family: nf_log[family] for family in (2, 10) if family in nf_log},
        "families": [2, 10],
        "sysctls": {key: _sysctl(kernel, NETFILTER_KEYS + "." + key) for key in BLINDERS},
        "dynamic_debug": dynamic_debug(kernel),
        "notrack_rules": notrack_rules(run, lambda name: host.which(name, ["/usr/sbin", "/sbin"])) if ruleset else None,
        "interfaces": interfaces(),
    }


__all__ = (
    "NETFILTER_KEYS",
    "dynamic_debug",
    "interfaces",
    "notrack_rules",
    "probe",
    "read_outside",
)
