# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet report's verdict part: the verdicts of each host, hosts grouped by verdict, and their renderings.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!
"""

from __future__ import annotations

import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._verdict_evidence import namespace_evidence
from ansible_collections.netfilter.conntrack.plugins.module_utils._verdicts import evaluate

NOTHING = "nothing_wrong"
UNREADABLE = "report unreadable (not a mapping)"


def split_reports(reports: t.Any) -> tuple[list[dict], list[str]]:
    """The readable reports and the names of the unreadable ones, from a list or a ``{host: report}`` mapping.

    A cached report that is not a mapping (a truncated or hand-edited fact-cache entry) is named, never fatal."""
    if isinstance(reports, dict):
        items = [(str(name), report) for name, report in reports.items()]
    else:
        items = [(f"report #{index + 1}", report) for index, report in enumerate(reports or [])]
    readable, unreadable = [], []
    for name, report in items:
        if isinstance(report, dict):
            readable.append(report if report.get("host") or name.startswith("report #") else dict(report, host=name))
        else:
            unreadable.append(name)
    return readable, unreadable


def host_verdicts(report: dict) -> list[dict]:
    """The verdicts of every namespace of one report; reports made before verdicts existed are judged here."""
    per_namespace = report.get("verdicts")
    if not isinstance(per_namespace, dict):
        labels = report.get("conntrack") if isinstance(report.get("conntrack"), dict) else {}
        per_namespace = {label: evaluate(namespace_evidence(report, label)) for label in labels}
    found = []
    for label, verdicts in per_namespace.items():
        for one in verdicts if isinstance(verdicts, list) else []:
            if isinstance(one, dict) and one.get("id"):
                found.append({"id": str(one["id"]), "name": str(one.get("name") or one["id"]), "netns": str(label),
                              "confidence": str(one.get("confidence") or ""), "guide": str(one.get("guide") or ""),
                              "action": str(one.get("action") or ""),
                              "evidence": [str(line) for line in one.get("evidence") or []]})
    return found


def problems(host: dict) -> list[dict]:
    return [one for one in host.get("verdicts") or [] if one["id"] != NOTHING]


def group_by_verdict(hosts: list[dict]) -> dict[str, dict]:
    """``{verdict id: {"name", "guide", "hosts": [...], "where": ["host netns", ...]}}``, most hosts first."""
    groups: dict[str, dict] = {}
    for host in hosts:
        for one in problems(host):
            group = groups.setdefault(one["id"], {"name": one["name"], "guide": one["guide"], "hosts": [], "where": []})
            if host["host"] not in group["hosts"]:
                group["hosts"].append(host["host"])
            group["where"].append(f"{host['host']} {one['netns']}")
    return dict(sorted(groups.items(), key=lambda item: (-len(item[1]["hosts"]), item[0])))


def quiet_hosts(hosts: list[dict]) -> list[dict]:
    """Hosts with a report and no verdict but nothing_wrong, each with what was checked (first namespace's)."""
    quiet = []
    for host in hosts:
        if host.get("failed") or not host.get("verdicts") or problems(host):
            continue
        quiet.append({"host": host["host"], "checked": host["verdicts"][0]["evidence"]})
    return quiet


def verdict_lines(model: dict, wrapped: t.Callable[[str, list[str]], list[str]]) -> list[str]:
    """The terminal's first lines: one group per verdict with its hosts, then the hosts where nothing was found and
    what was checked; ``wrapped(prefix, items)`` folds a long list into lines."""
    lines = ["Verdicts:" if model["verdicts"] else "Verdicts: nothing wrong found on any host"]
    for ident, group in model["verdicts"].items():
        lines += wrapped(f"  {len(group['hosts'])} host(s): {group['name']} [{ident}]: ", group["hosts"])
    quiet = quiet_hosts(model["hosts"])
    if quiet and model["verdicts"]:
        lines += wrapped(f"  nothing wrong found on {len(quiet)} host(s): ", [one["host"] for one in quiet])
    if quiet:
        lines += wrapped("  checked: ", quiet[0]["checked"])
    if model.get("unreadable"):
        lines += wrapped(f"  {UNREADABLE}: ", model["unreadable"])
    return lines


__all__ = ("NOTHING", "UNREADABLE", "group_by_verdict", "host_verdicts", "problems", "quiet_hosts", "split_reports",
           "verdict_lines")
