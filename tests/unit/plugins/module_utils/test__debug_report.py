# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


from __future__ import annotations

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._debug_report import (
    CHILD_NAMESPACE_NOTE,
    NO_WINDOW_NOTE,
    build_report,
    since_monotonic,
)

ACTIVE = {"active": True, "enabled_at_monotonic": 120.5, "stats_delta": {"invalid": 4}}
EXPIRED = {"active": False, "expired": True, "enabled_at_monotonic": 10.0}
INACTIVE = {"active": False, "netns": None}

SINCE_CASES = [
    ("no snapshot", {"namespaces": {"init": INACTIVE}}, None),
    ("one active window", {"namespaces": {"init": ACTIVE}}, 120.5),
    ("an expired window does not count", {"namespaces": {"init": EXPIRED}}, None),
    ("the earliest of several", {"namespaces": {"init": ACTIVE, "netns-a": dict(ACTIVE, enabled_at_monotonic=99.0)}}, 99.0),
    ("no status at all (program missing)", {}, None),
]


@pytest.mark.parametrize("status, expected", [c[1:] for c in SINCE_CASES], ids=[c[0] for c in SINCE_CASES])
def test_since_monotonic(status, expected):
    assert since_monotonic(status) == expected


def lists(*codes):
    return {"count": 3, "discrepancy": {"findings": [{"code": code} for code in codes]}}


# (id, status, lists, invalid total, acting in netns, window_active, notes, discrepancy codes)
REPORT_CASES = [
    ("host window, lines logged", {"namespaces": {"init": ACTIVE}, "order": ["init"], "nf_log_all_netns": "0"},
     [lists()], 4, False, True, [], []),
    ("no window: read since boot", {"namespaces": {"init": INACTIVE}, "order": ["init"], "nf_log_all_netns": "0"},
     [lists()], 1, False, False, [NO_WINDOW_NOTE], []),
    ("child namespace, nothing logged, all_netns off",
     {"namespaces": {"netns-a": ACTIVE}, "order": ["netns-a"], "nf_log_all_netns": "0"},
     [lists()], 0, True, True, [CHILD_NAMESPACE_NOTE], []),
    ("child namespace, nothing logged, all_netns on",
     {"namespaces": {"netns-a": ACTIVE}, "order": ["netns-a"], "nf_log_all_netns": "1"},
     [lists()], 0, True, True, [], []),
    ("connection inside a child namespace (no nf_log_all_netns)", {"namespaces": {"init": ACTIVE}, "order": ["init"],
                                                                   "nf_log_all_netns": None},
     [lists()], 0, False, True, [CHILD_NAMESPACE_NOTE], []),
    ("discrepancy codes once each, in order", {"namespaces": {"netns-a": ACTIVE, "netns-b": ACTIVE},
                                               "order": ["netns-a", "netns-b"], "nf_log_all_netns": "1"},
     [lists("unconfirmed", "dying"), lists("dying")], 2, True, True, [], ["unconfirmed", "dying"]),
]


@pytest.mark.parametrize("status, facts, total, in_netns, active, notes, codes", [c[1:] for c in REPORT_CASES],
                         ids=[c[0] for c in REPORT_CASES])
def test_build_report(status, facts, total, in_netns, active, notes, codes):
    report = build_report("h1", dict(status, now=1795766400.9), facts, {"total": total}, acting_in_netns=in_netns)
    assert report["host"] == "h1"
    assert report["collected_at"] == "2026-11-27T08:00:00Z"
    assert report["window_active"] is active
    assert report["notes"] == notes
    assert report["discrepancy"] == codes
    assert report["conntrack"] == dict(zip(status["order"], facts))
    assert report["invalid_log"] == {"total": total}


def test_build_report_names_verdicts_per_namespace_with_thresholds():
    window = dict(ACTIVE, enabled_at=1795766100.0, stats_baseline={"insert_failed": 0}, stats_delta={"insert_failed": 12})
    status = {"namespaces": {"netns-a": window},
              "order": ["netns-a"], "nf_log_all_netns": "1", "now": 1795766400.0}
    facts = [{"count": 3, "max": 100, "buckets": 64, "table": {"by_protocol": {"udp": 3}}, "discrepancy": {}}]
    makeup = {"listed": 3, "unreplied": 0, "top_ports": [{"protocol": "udp", "dport": 53, "count": 3}]}
    report = build_report("h1", status, facts, {"total": 0}, acting_in_netns=True, makeups={"netns-a": makeup})
    assert [one["id"] for one in report["verdicts"]["netns-a"]] == ["udp_insert_race"]
    assert report["conntrack"]["netns-a"]["makeup"] == makeup
    raised = build_report("h1", status, facts, {"total": 0}, acting_in_netns=True, thresholds={"rising_min_delta": 20})
    assert [one["id"] for one in raised["verdicts"]["netns-a"]] == ["nothing_wrong"]
