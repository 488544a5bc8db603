# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet report's Markdown file and HTML page: the model of _fleet_report laid out by Jinja2 templates.

Note that this plugin util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins!

The contexts are the templates' variables (documented in the conntrack_fleet_files module); the templates are the
collection's (roles/debug/templates) or a user's own.
"""

from __future__ import annotations

import base64
import hashlib
import html
import typing as t

from markupsafe import Markup

from ansible_collections.netfilter.conntrack.plugins.plugin_utils._fleet_capture import evidence_context
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._fleet_report import (
    AMBER_MEANING, COUNTERS, FAILED, RED_MEANING, SAMPLES_PER_REASON, number_text, table_rows, usage_text, window_text)
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._fleet_templates import render
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._fleet_verdicts import UNREADABLE, problems, quiet_hosts


# ---------------------------------------------------------------------------------------------- Markdown

def _reasons_text(by_reason: dict) -> str:
    return "; ".join(f"{count} {reason}" for reason, count in sorted(by_reason.items(), key=lambda i: (-i[1], i[0])))


def markdown_context(model: dict) -> dict:
    """The variables of the Markdown template: the model's lists as rows of cells."""
    rows = []
    for row in table_rows(model):
        if row["failed"]:
            rows.append([row["host"], "-", FAILED] + [""] * 10)
            continue
        rows.append([row["host"], row["netns"], number_text(row["lines"]), _reasons_text(row["by_reason"]),
                     *(number_text(row["deltas"][name]) for name in COUNTERS), usage_text(row["usage"]), row["full"],
                     ", ".join(row["discrepancy"]), ", ".join(row["plan"])])
    full = [h for h in model["hosts"] if h["table_full"]["count"] or h["table_full"].get("expect_full")]
    return dict(
        model, window_text=window_text(model), unreadable_text=UNREADABLE, quiet=quiet_hosts(model["hosts"]),
        verdict_groups=[[g["name"], len(g["hosts"]), ", ".join(g["where"]), g["guide"]] for g in model["verdicts"].values()],
        verdict_items=[dict(one, host=host["host"]) for host in model["hosts"] for one in problems(host)],
        attention=[[h["host"], "; ".join(h["attention"])] for h in model["attention"]],
        host_headers=["Host", "Netns", "Lines", "Reasons", *COUNTERS, "Usage %", "Table full", "Discrepancy",
                      "Plan problems"],
        host_rows=rows,
        reasons=[[reason, len(e["hosts"]), e["lines"], ", ".join(e["hosts"])] for reason, e in model["reasons"].items()],
        peers=[[peer, e["lines"], ", ".join(e["hosts"])] for peer, e in list(model["peers"].items())[:20]],
        plan_problems=[[key, ", ".join(e["where"])] for key, e in model["plan_problems"].items()],
        findings=[[h["host"], f["netns"], f["code"], f["text"]] for h in model["hosts"] for f in h["findings"]],
        table_full=[[h["host"], h["table_full"]["count"], h["table_full"].get("first") or "", h["table_full"].get("last") or "",
                     ", ".join(f"{k}: {v}" for k, v in h["table_full"]["by_netns"].items()),
                     h["table_full"].get("expect_full", 0)] for h in full],
        samples=[[reason, s["host"], s["netns"] or "", s["line"]] for reason, items in _samples_by_reason(model).items()
                 for s in items],
        notes=[[h["host"], note] for h in model["hosts"] for note in h["notes"]],
        **evidence_context(model["hosts"]),
    )


def render_markdown(model: dict, template: str | None = None) -> str:
    """fleet-summary.md: tables that paste into a ticket, from the collection's template or ``template``."""
    return render("markdown", markdown_context(model), template).rstrip() + "\n"


def _samples_by_reason(model: dict, per_reason: int = SAMPLES_PER_REASON) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for host in model["hosts"]:
        for sample in host["samples"]:
            items = found.setdefault(sample["reason"], [])
            if len(items) < per_reason:
                items.append(dict(sample, host=host["host"]))
    order = list(model["reasons"])

    def rank(item: tuple) -> tuple:
        return (order.index(item[0]) if item[0] in order else len(order), item[0])

    return dict(sorted(found.items(), key=rank))


# -------------------------------------------------------------------------------------------------- HTML

def h(value: t.Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1b1b;background:#fff}
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.6em 0 .4em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.3em 0;font-size:13px}td{white-space:nowrap}
td.wrap{white-space:normal;min-width:16em}th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#eef1f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:#fdecea}tr.warn td{background:#fff6e0}code,.line{font-family:ui-monospace,monospace;font-size:12px}
th button{font:inherit;font-weight:bold;border:0;background:none;cursor:pointer;padding:0}
th[aria-sort=ascending] button::after{content:" \\25b2"}th[aria-sort=descending] button::after{content:" \\25bc"}
.meta{color:#555}.nz{font-weight:bold;color:#a40000}
"""

_SCRIPT = """
(function(){
  var table=document.getElementById('hosts');
  if(!table){return;}
  var heads=table.querySelectorAll('thead th');
  heads.forEach(function(th,col){
    var b=document.createElement('button');b.type='button';b.textContent=th.textContent;
    th.textContent='';th.appendChild(b);
    b.addEventListener('click',function(){
      var dir=th.getAttribute('aria-sort')==='ascending'?-1:1;
      heads.forEach(function(o){o.removeAttribute('aria-sort');});
      th.setAttribute('aria-sort',dir>0?'ascending':'descending');
      var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(x,y){
        var a=x.cells[col],c=y.cells[col];
        var p=a?a.getAttribute('data-v'):null,q=c?c.getAttribute('data-v'):null;
        if(p!==null&&q!==null&&p!==''&&q!==''){return (parseFloat(p)-parseFloat(q))*dir;}
        var s=a?a.textContent:'',u=c?c.textContent:'';
        return s.localeCompare(u)*dir;
      });
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
  table.setAttribute('data-sortable','ready');
})();
"""


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def reason_chart(model: dict, width: int = 760) -> dict:
    """The numbers of the inline SVG bar chart of the invalid reasons across the fleet (lines; hosts in the label)."""
    reasons = list(model["reasons"].items())[:20]
    label_w, row_h, right = 300, 24, 150
    top = max([entry["lines"] for dummy, entry in reasons] or [1]) or 1
    bars = [{"reason": reason, "shown": reason if len(reason) <= 44 else reason[:42] + "..", "y": 5 + index * row_h,
             "length": max(1, round((width - label_w - right) * entry["lines"] / top)) if entry["lines"] else 0,
             "lines": entry["lines"], "hosts": len(entry["hosts"])} for index, (reason, entry) in enumerate(reasons)]
    return {"width": width, "height": row_h * len(reasons) + 10, "label_w": label_w, "row_h": row_h, "bars": bars}


def _html_rows(model: dict) -> list[dict]:
    """The host table's rows as (text, sort number or None, class) cells, with the row's colour and its meaning."""
    rows = []
    for row in table_rows(model):
        if row["failed"]:
            rows.append({"cls": "bad", "title": FAILED, "cells": [(row["host"], None, ""), ("-", None, ""),
                                                                  (FAILED, -1, "")] + [("", None, "")] * 9})
            continue
        red = row["full"] or any(row["deltas"][n] for n in COUNTERS[1:])
        cls = "bad" if red else "warn" if row["plan"] or row["discrepancy"] else ""
        cells = [(row["host"], None, ""), (row["netns"], None, ""),
                 (number_text(row["lines"]), row["lines"] if row["lines"] is not None else -1, ""),
                 (_reasons_text(row["by_reason"]), None, "wrap")]
        cells += [(number_text(row["deltas"][n]), row["deltas"][n] if row["deltas"][n] is not None else -1, "") for n in COUNTERS]
        cells += [(usage_text(row["usage"]), row["usage"] if row["usage"] is not None else -1, ""), (row["full"], row["full"], ""),
                  (", ".join(row["discrepancy"]), None, ""), (", ".join(row["plan"]), None, "")]
        rows.append({"cls": cls, "title": RED_MEANING if red else AMBER_MEANING, "cells": cells})
    return rows


def html_context(model: dict) -> dict:
    """The variables of the HTML template (on top of the Markdown template's)."""
    style, script = _STYLE.strip(), _SCRIPT.strip()
    csp = (f"default-src 'none'; style-src {_csp_hash(style)}; script-src {_csp_hash(script)}; img-src 'none';"
           " connect-src 'none'; form-action 'none'; base-uri 'none'")
    counters = sorted({name for host in model["hosts"] for row in host["rows"] for name in row["all_deltas"]},
                      key=lambda name: (name not in COUNTERS, COUNTERS.index(name) if name in COUNTERS else 0, name))
    delta_rows = [{"host": host["host"], "netns": row["netns"], "deltas": [row["all_deltas"].get(c) for c in counters]}
                  for host in model["hosts"] for row in host["rows"] if row["all_deltas"]]
    # The style and the script are the page's own text (their hashes are in the CSP): not escaped.
    return dict(markdown_context(model), style=Markup(style), script=Markup(script), csp=csp,
                title=f"conntrack debug report: {len(model['hosts'])} host(s), {model['total']} invalid line(s)",
                red_meaning=RED_MEANING, amber_meaning=AMBER_MEANING, html_rows=_html_rows(model),
                chart=reason_chart(model), counters=counters, delta_rows=delta_rows,
                samples_by_reason=_samples_by_reason(model), plan_problems=model["plan_problems"],
                unparsed=[(x["host"], line) for x in model["hosts"] for line in x["unparsed"]["samples"]])


def render_html(model: dict, template: str | None = None) -> str:
    """fleet-report.html: one self-contained page (inline style, script and SVG; a CSP that forbids fetching), from
    the collection's template or ``template``."""
    return render("html", html_context(model), template).rstrip() + "\n"


__all__ = ("h", "html_context", "markdown_context", "reason_chart", "render_html", "render_markdown")
