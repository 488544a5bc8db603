# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The per-host report of a debug window, built on the host by the program's ``collect`` command.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!
"""

from __future__ import annotations

import time
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._plan import diagnose
from ansible_collections.netfilter.conntrack.plugins.module_utils._verdict_evidence import namespace_evidence
from ansible_collections.netfilter.conntrack.plugins.module_utils._verdicts import evaluate

NO_WINDOW_NOTE = "No debug window is active (enable was not run, or it was reverted): the log was read since boot."
CHILD_NAMESPACE_NOTE = (
    "Acting in a child network namespace and nothing was logged: lines of non-initial namespaces reach the "
    "kernel log only with net.netfilter.nf_log_all_netns=1 on the host (conntrack_debug_all_netns: true).")


def build_report(host: str, status: dict[str, t.Any], lists: list[dict[str, t.Any]], invalid_log: dict[str, t.Any],
                 acting_in_netns: bool, plans: dict[str, dict[str, t.Any]] | None = None,
                 thresholds: dict[str, t.Any] | None = None, makeups: dict[str, dict[str, t.Any]] | None = None,
                 captures: dict[str, t.Any] | None = None,
                 captured: dict[str, dict[str, t.Any]] | None = None) -> dict[str, t.Any]:
    """The per-host report from the program's status, one conntrack_lists_facts result per namespace of
    status["order"], the conntrack_invalid_log_facts summary and, with ``plans`` (conntrack_plan_facts per
    namespace id), the plan and the diagnosis (plan problems, counters reconciled with the log, table-full).

    ``verdicts`` names the known problems per namespace (_verdicts.evaluate) with ``thresholds`` (None: the
    defaults), the table make-up of each namespace (``makeups``, _table_makeup.read_makeup per namespace id) and,
    where an exact capture of the invalid packets exists, its aggregate per namespace id (``captures``) and its
    ``events`` and ``events_lost`` (``captured``), which the diagnosis compares with the counters instead of the log."""
    windows = status.get("namespaces") or {}
    active = [window for window in windows.values() if window.get("active")]
    # nf_log_all_netns exists only in the initial namespace: None means the connection is in a child one.
    in_child = status.get("nf_log_all_netns") is None or acting_in_netns
    notes = [] if active else [NO_WINDOW_NOTE]
    if in_child and (status.get("nf_log_all_netns") or "0") != "1" and invalid_log.get("total", 0) == 0 and not captured:
        notes.append(CHILD_NAMESPACE_NOTE)
    notes += status.get("problems") or []
    codes: list[str] = []
    for facts in lists:
        for finding in (facts.get("discrepancy") or {}).get("findings") or []:
            if finding.get("code") not in codes:
                codes.append(finding.get("code"))
    conntrack = dict(zip(status.get("order") or [], lists))
    for label, makeup in (makeups or {}).items():
        if isinstance(conntrack.get(label), dict):
            conntrack[label] = dict(conntrack[label], makeup=makeup)
    report = {
        "host": host,
        "collected_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(status.get("now") or 0))),
        "window_active": bool(active),
        "windows": windows,
        "conntrack": conntrack,
        "invalid_log": invalid_log,
        "discrepancy": codes,
        "notes": notes,
    }
    if plans is not None:
        report["plan"] = {label: {k: v for k, v in plan.items() if k != "probe"} for label, plan in plans.items()}
        report["diagnosis"] = diagnose(plans, windows, invalid_log, dict(zip(plans, lists)), captured)
    report["verdicts"] = {label: evaluate(namespace_evidence(report, label, (captures or {}).get(label)), thresholds)
                          for label in conntrack}
    return report


def since_monotonic(status: dict[str, t.Any]) -> float | None:
    """The earliest enable time of the active windows (CLOCK_MONOTONIC), None without one."""
    starts = [window["enabled_at_monotonic"] for window in (status.get("namespaces") or {}).values()
              if window.get("active") and window.get("enabled_at_monotonic") is not None]
    return min(starts) if starts else None


__all__ = ("CHILD_NAMESPACE_NOTE", "NO_WINDOW_NOTE", "build_report", "since_monotonic")
