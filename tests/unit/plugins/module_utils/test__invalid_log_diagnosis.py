# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Table-full and net_ratelimit messages, and attribution of lines to namespaces (issue 16)."""

from __future__ import annotations

import os

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._invalid_log import (
    Attribution,
    Since,
    parse_kernel_event,
    split_any,
    summarise_lines,
)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "invalid_log")


def fixture_lines(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return [line for line in handle.read().splitlines() if not line.startswith("#")]


# Real lines where this machine produced them (6.18), else the kernel sources' format strings for the kernels the
# matrix boots: nf_conntrack_core.c __nf_conntrack_alloc() and nf_conntrack_expect.c __nf_ct_expect_check().
EVENTS = [
    # 6.18.44 (real, diagnosis target): pr_fmt doubles the prefix, and 6.17+ names a child namespace's inode.
    ("nf_conntrack: nf_conntrack: table full in netns 4026532800, dropping packet",
     {"kind": "table_full", "netns_inum": 4026532800}),
    # 5.10.0-46, 6.1.0-57, 6.12.118 (real, qemu guests, child namespace) and 6.17+ in the initial namespace.
    ("nf_conntrack: nf_conntrack: table full, dropping packet", {"kind": "table_full", "netns_inum": None}),
    # Without pr_fmt (kernels that do not define it in nf_conntrack_core.c; source text).
    ("nf_conntrack: table full, dropping packet", {"kind": "table_full", "netns_inum": None}),
    ("nf_conntrack: table full in netns 4026531840, dropping packet", {"kind": "table_full", "netns_inum": 4026531840}),
    # 2.6 (ip_conntrack, trailing period).
    ("ip_conntrack: table full, dropping packet.", {"kind": "table_full", "netns_inum": None}),
    ("nf_conntrack: expectation table full", {"kind": "expect_full"}),
    ("nf_conntrack: nf_conntrack: expectation table full", {"kind": "expect_full"}),
    # Real (6.18): the kernel's own count of net_ratelimit() messages it dropped.
    ("net_ratelimit: 138 callbacks suppressed", {"kind": "ratelimit", "suppressed": 138}),
    ("nf_conntrack: default automatic helper assignment has been turned off", None),
    ("nf_conntrack: table full", None),
    ("nf_ct_proto_6: invalid tcp flag combination IN= OUT= SRC=10.0.0.1 DST=10.0.0.2 LEN=40 PROTO=TCP", None),
    ("", None),
]


@pytest.mark.parametrize("message, expected", EVENTS)
def test_parse_kernel_event(message, expected):
    assert parse_kernel_event(message) == expected


def test_events_are_counted_with_times_and_netns_even_without_invalid_lines():
    facts = summarise_lines(fixture_lines("diagnosis-6.18.44-fc-v1098.txt"), boot_epoch=1_000_000.0)
    events = facts["kernel_events"]
    assert events["table_full"]["count"] == 4
    assert events["table_full"]["by_netns"] == {"4026532800": 4}
    assert events["table_full"]["first_monotonic"] == 1697.682266
    assert events["table_full"]["last_monotonic"] == 1698.583665
    assert events["table_full"]["first"] == "1970-01-12T14:14:57.682266Z"
    assert events["ratelimit_suppressed"]["count"] == 138
    assert events["expect_full"]["count"] == 0
    assert facts["total"] == 7 and facts["unparsed"]["count"] == 0
    assert facts["attribution"] is None


# Every kernel's real table-full lines, printed in a child namespace after nf_conntrack_max was lowered: the
# matrix guests' (tests/vm/playbooks/table_full.yml, saved by MATRIX_FIXTURES=1 as table-full-<uname -r>.txt) and
# this machine's 6.18 (the diagnosis target). Before 6.17 the line names no namespace; from 6.17 a child
# namespace's line names its inode. (fixture, table-full lines, inode named in them or None)
TABLE_FULL = [
    ("table-full-5.10.0-46-amd64.txt", 5, None),
    ("table-full-6.1.0-57-amd64.txt", 5, None),
    ("table-full-6.12.118+deb13-amd64.txt", 5, None),
    ("diagnosis-6.18.44-fc-v1098.txt", 4, 4026532800),
]


def test_every_table_full_fixture_is_in_the_table():
    """A fixture the matrix adds for a new kernel must get a row above (and so its expectations)."""
    saved = sorted(name for name in os.listdir(FIXTURES) if name.startswith("table-full-"))
    assert saved == sorted(name for name, dummy, dummy2 in TABLE_FULL if name.startswith("table-full-"))


@pytest.mark.parametrize("name, count, inum", TABLE_FULL)
def test_real_table_full_lines_of_every_kernel(name, count, inum):
    lines = [line for line in fixture_lines(name) if "table full" in line]
    assert len(lines) == count
    for line in lines:
        message, monotonic, dummy = split_any(line)
        assert monotonic is not None
        assert parse_kernel_event(message) == {"kind": "table_full", "netns_inum": inum}
    # The log-facts summary counts them, per namespace where the line names one.
    events = summarise_lines(lines)["kernel_events"]["table_full"]
    assert events["count"] == count
    assert events["by_netns"] == {str(inum) if inum else "initial (or a kernel before 6.17)": count}


def test_events_before_the_window_are_left_out():
    lines = ["[ 10.000000] nf_conntrack: table full, dropping packet",
             "[ 20.000000] nf_conntrack: table full, dropping packet"]
    facts = summarise_lines(lines, since=Since(monotonic=15.0))
    assert facts["kernel_events"]["table_full"]["count"] == 1


OWNERS = {
    "netns-dg-a": [{"name": "lo", "ifindex": 1, "mac": "00:00:00:00:00:00"},
                   {"name": "dg-va", "ifindex": 2, "mac": "ee:f4:15:4c:f6:b4"}],
    "netns-dg-b": [{"name": "lo", "ifindex": 1, "mac": "00:00:00:00:00:00"},
                   {"name": "dg-vb", "ifindex": 2, "mac": "8a:ed:05:23:b2:72"}],
}


def test_real_lines_land_on_the_namespace_owning_the_interface():
    facts = summarise_lines(fixture_lines("diagnosis-6.18.44-fc-v1098.txt"), interfaces=OWNERS)
    assert facts["attribution"] == {
        "by_namespace": {"netns-dg-a": {"count": 6, "by_interface": {"dg-va (ifindex 2)": 6}},
                         "netns-dg-b": {"count": 1, "by_interface": {"dg-vb (ifindex 2)": 1}}},
        "unattributed": {"count": 0, "reasons": {}},
    }
    assert [sample["netns"] for sample in facts["samples"][:2]] == ["netns-dg-a", "netns-dg-b"]


def test_lines_of_5_10_have_no_interface_and_are_said_to_be_unattributable():
    facts = summarise_lines(fixture_lines("dmesg-5.10.0-46-amd64.txt"), interfaces=OWNERS)
    unattributed = facts["attribution"]["unattributed"]
    assert unattributed["count"] == facts["total"] > 0
    assert list(unattributed["reasons"]) == ["line has empty IN= and OUT= (the kernel did not pass the interface, as on 5.10)"]


def record(interface_in=None, interface_out=None):
    return {"in": interface_in, "out": interface_out}


@pytest.mark.parametrize("owners, rec, mac, label, reason", [
    # one owner decides by name
    ({"a": [{"name": "veth1", "ifindex": 7}]}, record("veth1"), None, "a", None),
    # OUT= when IN= is empty
    ({"a": [{"name": "veth1", "ifindex": 7}]}, record(None, "veth1"), None, "a", None),
    # eth0 in two containers: the destination MAC decides for IN=
    ({"a": [{"name": "eth0", "ifindex": 2, "mac": "aa:aa:aa:aa:aa:aa"}],
      "b": [{"name": "eth0", "ifindex": 2, "mac": "bb:bb:bb:bb:bb:bb"}]},
     record("eth0"), "bb:bb:bb:bb:bb:bb:cc:cc:cc:cc:cc:cc:08:00", "b", None),
    # ... and the source MAC for OUT=
    ({"a": [{"name": "eth0", "ifindex": 2, "mac": "aa:aa:aa:aa:aa:aa"}],
      "b": [{"name": "eth0", "ifindex": 2, "mac": "bb:bb:bb:bb:bb:bb"}]},
     record(None, "eth0"), "cc:cc:cc:cc:cc:cc:aa:aa:aa:aa:aa:aa:08:00", "a", None),
    # no MAC to decide
    ({"a": [{"name": "eth0", "ifindex": 2, "mac": "aa:aa:aa:aa:aa:aa"}],
      "b": [{"name": "eth0", "ifindex": 2, "mac": "bb:bb:bb:bb:bb:bb"}]},
     record("eth0"), None, None, "interface eth0 is owned by several selected namespaces (a, b) and the MAC does not decide"),
    ({"a": [{"name": "veth1", "ifindex": 7}]}, record("docker0"), None, None,
     "interface docker0 is owned by no selected namespace"),
    ({"a": [{"name": "veth1", "ifindex": 7}]}, record(), None, None,
     "line has empty IN= and OUT= (the kernel did not pass the interface, as on 5.10)"),
])
def test_attribution_table(owners, rec, mac, label, reason):
    attribution = Attribution(owners)
    assert attribution.attribute(rec, mac) == label
    result = attribution.finish()
    assert list(result["unattributed"]["reasons"]) == ([reason] if reason else [])


def test_unknown_interfaces_are_bounded():
    attribution = Attribution({"a": [{"name": "x", "ifindex": 1}]})
    for number in range(100):
        attribution.attribute(record(f"if{number}"), None)
    reasons = attribution.finish()["unattributed"]["reasons"]
    assert len(reasons) == 21
    assert reasons["other interfaces owned by no selected namespace"] == 80
