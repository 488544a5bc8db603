# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet report's verdict part: the verdicts of each host, hosts grouped by verdict, and their renderings.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!
"""

from __future__ import annotations

import html
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


def verdict_markdown(model: dict, md: t.Callable[[t.Any], str]) -> list[str]:
    out = ["## Verdicts", ""]
    if model["verdicts"]:
        out += ["| Verdict | Hosts | Where | Guide |", "|---|---|---|---|"]
        out += [f"| {md(g['name'])} | {len(g['hosts'])} | {md(', '.join(g['where']))} | {md(g['guide'])} |"
                for g in model["verdicts"].values()]
        out.append("")
        for host in model["hosts"]:
            for one in problems(host):
                out.append(f"- **{md(host['host'])} {md(one['netns'])}: {md(one['name'])}** ({md(one['confidence'])})"
                           f" {md('; '.join(one['evidence']))}. What to do: {md(one['action'])}")
        out.append("")
    for one in quiet_hosts(model["hosts"]):
        out.append(f"- {md(one['host'])}: nothing wrong found. Checked: {md('; '.join(one['checked']))}")
    if model.get("unreadable"):
        out.append(f"- {md(UNREADABLE)}: {md(', '.join(model['unreadable']))}")
    return out + [""]


def verdict_html(model: dict) -> str:
    def h(value: t.Any) -> str:
        return html.escape(str(value), quote=True)
    out = ["<h2>Verdicts</h2>"]
    if model["verdicts"]:
        out.append('<ul id="verdicts">' + "".join(
            f"<li><strong>{len(g['hosts'])} host(s): {h(g['name'])}</strong> <code>{h(ident)}</code>:"
            f" {h(', '.join(g['where']))} <span class=\"meta\">(guide: {h(g['guide'])})</span></li>"
            for ident, g in model["verdicts"].items()) + "</ul>")
        out.append('<table id="verdict-evidence"><thead><tr><th>Host</th><th>Netns</th><th>Verdict</th><th>Confidence</th>'
                   "<th>Evidence</th><th>What to do</th></tr></thead><tbody>" + "".join(
                       f"<tr><td>{h(host['host'])}</td><td>{h(one['netns'])}</td><td>{h(one['name'])}</td>"
                       f"<td>{h(one['confidence'])}</td><td class=\"wrap\">{h('; '.join(one['evidence']))}</td>"
                       f"<td class=\"wrap\">{h(one['action'])}</td></tr>"
                       for host in model["hosts"] for one in problems(host)) + "</tbody></table>")
    quiet = quiet_hosts(model["hosts"])
    if quiet:
        out.append('<p id="nothing-wrong">Nothing wrong found on ' + h(", ".join(one["host"] for one in quiet))
                   + ". Checked: " + h("; ".join(quiet[0]["checked"])) + "</p>")
    if model.get("unreadable"):
        out.append(f'<p class="nz" id="unreadable">{h(UNREADABLE)}: {h(", ".join(model["unreadable"]))}</p>')
    return "\n".join(out)


__all__ = ("NOTHING", "UNREADABLE", "group_by_verdict", "host_verdicts", "problems", "quiet_hosts", "split_reports",
           "verdict_html", "verdict_lines", "verdict_markdown")
