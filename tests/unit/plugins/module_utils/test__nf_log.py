# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._nf_log import FamilyLoggers, find_registered, parse_nf_log

# Captured on kernel 6.18 (loggers built in; see ../shared/reference/kernel-samples/).
NF_LOG_6_18 = """\
 0 NONE (nfnetlink_log)
 1 NONE (nfnetlink_log)
 2 nf_log_ipv4 (nf_log_ipv4,nfnetlink_log)
 3 nf_log_arp (nf_log_arp,nfnetlink_log)
 4 NONE (nfnetlink_log)
 5 nf_log_netdev (nf_log_netdev,nfnetlink_log)
 6 NONE (nfnetlink_log)
 7 nf_log_bridge (nf_log_bridge,nfnetlink_log)
 8 NONE (nfnetlink_log)
 9 NONE (nfnetlink_log)
10 nf_log_ipv6 (nf_log_ipv6,nfnetlink_log)
"""
# A modular kernel before any logger module is loaded.
NF_LOG_NOTHING_LOADED = " 2 NONE ()\n10 NONE ()\n"

PARSE_CASES = [
    ("6.18", NF_LOG_6_18, 2, FamilyLoggers("nf_log_ipv4", ("nf_log_ipv4", "nfnetlink_log"))),
    ("6.18", NF_LOG_6_18, 10, FamilyLoggers("nf_log_ipv6", ("nf_log_ipv6", "nfnetlink_log"))),
    ("6.18", NF_LOG_6_18, 0, FamilyLoggers("NONE", ("nfnetlink_log",))),
    ("empty", NF_LOG_NOTHING_LOADED, 2, FamilyLoggers("NONE", ())),
]


@pytest.mark.parametrize("label, text, family, expected", PARSE_CASES, ids=[f"{c[0]}-{c[2]}" for c in PARSE_CASES])
def test_parse_nf_log(label, text, family, expected):
    assert parse_nf_log(text)[family] == expected


def test_parse_nf_log_reads_every_family():
    assert sorted(parse_nf_log(NF_LOG_6_18)) == list(range(11))


@pytest.mark.parametrize("line", ["garbage", " 2 nf_log_ipv4", "x NONE ()"])
def test_parse_nf_log_rejects_unknown_lines(line):
    with pytest.raises(ConntrackModuleError, match="unexpected line"):
        parse_nf_log(line)


FIND_CASES = [
    ("nf_log_ipv4", ("nf_log_ipv4", "nfnetlink_log"), "nf_log_ipv4"),
    ("NF_LOG_IPV4", ("nf_log_ipv4", "nfnetlink_log"), "nf_log_ipv4"),
    ("nfnetlink_log", ("nf_log_ipv4", "nfnetlink_log"), "nfnetlink_log"),
    # The kernel would bind these by prefix; the module must not.
    ("nf_log_ipv4xyz", ("nf_log_ipv4", "nfnetlink_log"), None),
    ("nf_log", ("nf_log_ipv4",), None),
    ("nf_log_ipv6", ("nf_log_ipv4", "nfnetlink_log"), None),
    ("nf_log_ipv4", (), None),
]


@pytest.mark.parametrize("name, registered, expected", FIND_CASES)
def test_find_registered(name, registered, expected):
    assert find_registered(name, registered) == expected
