# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._names import (
    family_name,
    parse_etc_protocols,
    protocol_name,
    resolve_family,
    resolve_protocol,
)

ETC_PROTOCOLS = """\
# Internet (IP) protocols
ip\t0\tIP\t\t# internet protocol, pseudo protocol number
icmp\t1\tICMP\t\t# internet control message protocol
ipv6-icmp 58\tIPv6-ICMP\t# ICMP for IPv6
ospf\t89\tOSPFIGP\t\t# Open Shortest Path First IGP
broken line without number
vrrp\t112\tVRRP
mpls-in-ip 137\tMPLS-in-IP
"""
TABLE = parse_etc_protocols(ETC_PROTOCOLS)

RESOLVE_PROTOCOL = [
    ("tcp", 6),
    ("TCP", 6),
    (" udp ", 17),
    ("icmpv6", 58),
    ("udplite", 136),
    ("sctp", 132),
    ("dccp", 33),
    ("gre", 47),
    ("all", 255),
    ("none", 0),
    (6, 6),
    ("17", 17),
    (0, 0),
    (255, 255),
    ("ospf", 89),
    ("OSPFIGP", 89),
    ("ipv6-icmp", 58),
    ("vrrp", 112),
]

RESOLVE_PROTOCOL_ERRORS = [
    ("tcpx", "unknown protocol 'tcpx'"),
    (256, "protocol 256 is out of range"),
    ("256", "protocol 256 is out of range"),
    (-1, "protocol -1 is out of range"),
    ("", "is not a protocol name or number"),
    ("  ", "is not a protocol name or number"),
    (None, "is not a protocol name or number"),
    (True, "is not a protocol name or number"),
    ([6], "is not a protocol name or number"),
    ("6;7", "unknown protocol"),
    ("mpls-in-ip", "unknown protocol"),  # 137 exists, but only via the table below
]


@pytest.mark.parametrize("value, expected", RESOLVE_PROTOCOL, ids=[repr(case[0]) for case in RESOLVE_PROTOCOL])
def test_resolve_protocol(value, expected):
    assert resolve_protocol(value, TABLE) == expected


@pytest.mark.parametrize("value, message", RESOLVE_PROTOCOL_ERRORS, ids=[repr(case[0]) for case in RESOLVE_PROTOCOL_ERRORS])
def test_resolve_protocol_errors(value, message):
    table = {k: v for k, v in TABLE.items() if k != "mpls-in-ip"}
    with pytest.raises(ConntrackModuleError, match=message.replace("(", r"\(")):
        resolve_protocol(value, table)


def test_etc_protocols_is_optional():
    assert resolve_protocol("tcp", None) == 6
    with pytest.raises(ConntrackModuleError):
        resolve_protocol("ospf", None)


PROTOCOL_NAMES = [(0, "none"), (6, "tcp"), (58, "icmpv6"), (255, "all"), (89, "ospf"), (200, "200")]


@pytest.mark.parametrize("number, name", PROTOCOL_NAMES)
def test_protocol_name(number, name):
    assert protocol_name(number, TABLE) == name


def test_parse_etc_protocols_skips_comments_and_garbage():
    assert TABLE["icmp"] == 1
    assert TABLE["ipv6-icmp"] == 58
    assert "broken" not in TABLE
    assert "internet" not in TABLE


FAMILIES = [("ipv4", 2), ("IPv6", 10), ("arp", 3), ("netdev", 5), ("bridge", 7), (2, 2), ("10", 10), (0, 0), (12, 12)]
FAMILY_ERRORS = [
    ("ipx", "unknown family 'ipx'"),
    (13, "family 13 is out of range"),
    ("-1", "unknown family"),
    ("", "unknown family"),
    (None, "unknown family"),
]


@pytest.mark.parametrize("value, number", FAMILIES)
def test_resolve_family(value, number):
    assert resolve_family(value) == number


@pytest.mark.parametrize("value, message", FAMILY_ERRORS)
def test_resolve_family_errors(value, message):
    with pytest.raises(ConntrackModuleError, match=message):
        resolve_family(value)


@pytest.mark.parametrize("number, name", [(2, "ipv4"), (10, "ipv6"), (7, "bridge"), (1, "1")])
def test_family_name(number, name):
    assert family_name(number) == name
