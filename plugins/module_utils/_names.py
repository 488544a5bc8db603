# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Name tables for IP protocols and netfilter address families.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!
"""

from __future__ import annotations

import re

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError

# nf_conntrack_log_invalid takes an IPPROTO number; 0 disables and 255 means every protocol.
PROTOCOL_NONE = 0
PROTOCOL_ALL = 255
BUILTIN_PROTOCOLS = {
    "none": PROTOCOL_NONE,
    "icmp": 1,
    "tcp": 6,
    "udp": 17,
    "dccp": 33,
    "gre": 47,
    "icmpv6": 58,
    "sctp": 132,
    "udplite": 136,
    "all": PROTOCOL_ALL,
}

# NFPROTO_* numbers, which name the net.netfilter.nf_log.<N> keys.
FAMILIES = {
    "ipv4": 2,
    "arp": 3,
    "netdev": 5,
    "bridge": 7,
    "ipv6": 10,
}
NFPROTO_NUMPROTO = 13

# The kernel's syslog logger for each family: the per-family modules before 5.13,
# aliases of nf_log_syslog since then; `modprobe` resolves the name on both.
SYSLOG_LOGGERS = {
    2: "nf_log_ipv4",
    3: "nf_log_arp",
    5: "nf_log_netdev",
    7: "nf_log_bridge",
    10: "nf_log_ipv6",
}
ETC_PROTOCOLS = "/etc/protocols"
_INT_RE = re.compile(r"^[0-9]+$")


def parse_etc_protocols(text: str) -> dict[str, int]:
    """Map every name and alias in an /etc/protocols text to its number."""
    table: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2 or not _INT_RE.match(fields[1]):
            continue
        number = int(fields[1])
        for name in [fields[0]] + fields[2:]:
            table.setdefault(name.lower(), number)
    return table


def load_etc_protocols(path: str = ETC_PROTOCOLS) -> dict[str, int]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return parse_etc_protocols(handle.read())
    except OSError:
        return {}


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT_RE.match(value.strip()):
        return int(value.strip())
    return None


def resolve_protocol(value: object, etc_protocols: dict[str, int] | None = None) -> int:
    """Return the IPPROTO number for a protocol name or number (0-255)."""
    number = _as_int(value)
    if number is not None:
        if not 0 <= number <= 255:
            raise ConntrackModuleError(f"protocol {number} is out of range: use a number from 0 to 255 or a name")
        return number
    if not isinstance(value, str) or not value.strip():
        raise ConntrackModuleError(f"protocol {value!r} is not a protocol name or number")
    name = value.strip().lower()
    if name in BUILTIN_PROTOCOLS:
        return BUILTIN_PROTOCOLS[name]
    if etc_protocols and name in etc_protocols and 0 <= etc_protocols[name] <= 255:
        return etc_protocols[name]
    known = ", ".join(BUILTIN_PROTOCOLS)
    raise ConntrackModuleError(
        f"unknown protocol {value!r}: use a number from 0 to 255, one of {known}, or a name from /etc/protocols"
    )


def protocol_name(number: int, etc_protocols: dict[str, int] | None = None) -> str:
    """Name a protocol number, preferring the built-in names; unknown numbers stay numeric."""
    for name, known in BUILTIN_PROTOCOLS.items():
        if known == number:
            return name
    for name, known in sorted((etc_protocols or {}).items()):
        if known == number:
            return name
    return str(number)


def resolve_family(value: object) -> int:
    """Return the NFPROTO number for a family name or number."""
    number = _as_int(value)
    if number is not None:
        if not 0 <= number < NFPROTO_NUMPROTO:
            raise ConntrackModuleError(
                f"family {number} is out of range: use 0 to {NFPROTO_NUMPROTO - 1} or one of {', '.join(FAMILIES)}"
            )
        return number
    if isinstance(value, str) and value.strip().lower() in FAMILIES:
        return FAMILIES[value.strip().lower()]
    raise ConntrackModuleError(f"unknown family {value!r}: use one of {', '.join(FAMILIES)} or a number")


def family_name(number: int) -> str:
    for name, known in FAMILIES.items():
        if known == number:
            return name
    return str(number)


__all__ = (
    "PROTOCOL_NONE",
    "PROTOCOL_ALL",
    "BUILTIN_PROTOCOLS",
    "FAMILIES",
    "NFPROTO_NUMPROTO",
    "SYSLOG_LOGGERS",
    "ETC_PROTOCOLS",
    "parse_etc_protocols",
    "load_etc_protocols",
    "resolve_protocol",
    "protocol_name",
    "resolve_family",
    "family_name",
)
