# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""/proc/net/stat/nf_conntrack read into ctnetlink's names, summed over CPUs, as the window's baseline and status use it."""

from __future__ import annotations

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack_stats import parse_proc_stats
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl_keys import KEY_COUNT
from ansible_collections.netfilter.conntrack.tests.unit.plugins.module_utils.kernel_tree import TreeKernel

# Kernel 6.18, two CPUs (the header's double space is the kernel's).
HEADER = ("entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error"
          "  expect_new expect_create expect_delete search_restart\n")
TWO_CPUS = (HEADER
            + "00000008  00000001 00000000 00000000 00000002 00000000 00000000 00000000 00000000 00000000 00000000"
              " 00000000 00000003  00000000 00000000 00000000 00000000\n"
            + "00000008  00000000 00000000 00000000 00000010 00000000 00000000 00000001 00000000 00000000 00000000"
              " 00000000 00000000  00000000 00000000 00000000 00000000\n")

CASES = [
    ("two CPUs: counters summed, entries (the table's size on every row) once", TWO_CPUS,
     {"entries": 8, "clash_resolve": 1, "invalid": 0x12, "chaintoolong": 1, "error": 3}),
    ("a header and no CPU", HEADER, {}),
    ("an empty file", "", None),
]


@pytest.mark.parametrize("text, expected", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_parse_proc_stats(text, expected):
    totals = parse_proc_stats(text)
    if expected is None:
        assert totals is None
        return
    assert {name: value for name, value in totals.items() if value} == expected
    assert "clashres" not in totals and "icmp_error" not in totals and "chainlength" not in totals


def test_the_hosts_kernel_reads_the_stats_file_and_the_count(tmp_path):
    kernel = TreeKernel(tmp_path, {KEY_COUNT: "5"}, stats=TWO_CPUS)
    stats = kernel.read_stats()
    assert (stats["invalid"], stats["entries"], stats["count"]) == (0x12, 8, 5)


def test_without_the_stats_file_there_are_no_stats(tmp_path):
    assert TreeKernel(tmp_path, {KEY_COUNT: "5"}).read_stats() is None
