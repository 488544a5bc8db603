# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The conntrack counters: /proc/net/stat/nf_conntrack in the names ctnetlink gives them, and the ones reports show.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

conntrack_facts reads the same counters over ctnetlink (``CtnetlinkSocket.stats_cpu``); both sum the
per-CPU rows with ``sum_stats``, so a report shows one vocabulary whichever way they were read.
"""

from __future__ import annotations

from ansible_collections.netfilter.conntrack.plugins.module_utils._ctnetlink import sum_stats

PROC_STATS = "/proc/net/stat/nf_conntrack"
# The file's columns whose ctnetlink name (the one conntrack_lists_facts and `conntrack -S` use) differs.
PROC_STAT_NAMES = {"clashres": "clash_resolve", "icmp_error": "error", "chainlength": "chaintoolong"}
# Not a per-CPU counter: every row repeats the size of the table.
ENTRIES = "entries"
# The counters that mean a packet was dropped or a connection could not be tracked, in the order reports show them.
DROP_COUNTERS = ("drop", "insert_failed", "early_drop")
# The counters the reports' tables show: the invalid packets, then the drops.
REPORT_COUNTERS = ("invalid",) + DROP_COUNTERS


def parse_proc_stats(text: str) -> dict[str, int] | None:
    """The file's per-CPU rows (hexadecimal) summed, ``entries`` taken once; None for an empty file."""
    rows = [line.split() for line in text.splitlines() if line.strip()]
    if not rows:
        return None
    names = [PROC_STAT_NAMES.get(name, name) for name in rows[0]]
    per_cpu = [{name: int(value, 16) for name, value in zip(names, row)} for row in rows[1:]]
    totals = sum_stats({name: value for name, value in row.items() if name != ENTRIES} for row in per_cpu)
    if per_cpu and ENTRIES in per_cpu[-1]:
        totals[ENTRIES] = per_cpu[-1][ENTRIES]
    return totals


__all__ = ("DROP_COUNTERS", "ENTRIES", "PROC_STATS", "PROC_STAT_NAMES", "REPORT_COUNTERS", "parse_proc_stats")
