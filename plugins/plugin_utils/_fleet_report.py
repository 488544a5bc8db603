# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collect results for people: a terminal table, Markdown, one HTML page and the AWX summary.

Note that this plugin util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins!

Pure functions of the per-host reports (the ``conntrack_debug_report`` fact of each host, as the action
plugin ``conntrack_debug_report`` builds it) and of the hosts whose collect failed. ``build_model`` reads the
reports once; ``render_table``, ``render_stats`` and ``render_summary`` here, and ``render_markdown`` and
``render_html`` in _fleet_pages, only lay the model out. Nothing here reads a clock, a file or the network, so the same reports always give the same text.
"""

from __future__ import annotations

import ipaddress
import re
import time
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack_stats import DROP_COUNTERS, REPORT_COUNTERS
from ansible_collections.netfilter.conntrack.plugins.module_utils._verdicts import DEFAULT_THRESHOLDS
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._fleet_capture import (
    attention_reasons, capture_summary, captured_events, evidence_lines, evidence_summary, host_evidence)
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._fleet_verdicts import (
    group_by_verdict, host_verdicts, problems, quiet_hosts, split_reports, verdict_lines)

__all__ = ["AMBER_MEANING", "COUNTERS", "FAILED", "MAX_HOSTS", "RED_MEANING", "SAMPLES_PER_REASON", "TABLE_WIDTH",
           "as_dict", "as_list", "build_model", "number_text", "redact_text", "render_stats", "render_summary",
           "render_table", "table_rows", "usage_text", "utc_text", "window_text"]

# The ctnetlink counters (stats_delta keys) the tables show; the HTML page shows every counter.
COUNTERS = REPORT_COUNTERS
RED_MEANING = ("Red: the table was full (table-full events) or drop, insert_failed or early_drop rose since enable:"
               " packets were lost.")
AMBER_MEANING = "Amber: the plan found a blinder, or the count and the lists disagree."
# The default callback prints a list of lines as `        "LINE",`: 11 more columns, 119 in all.
TABLE_WIDTH = 108
MAX_HOSTS = 50
MAX_REASONS = 10
MAX_PEERS = 5
MAX_ATTENTION = 10
SAMPLES_PER_REASON = 5
FAILED = "collect failed"

_ADDRESS_CANDIDATE_RE = re.compile(r"[0-9A-Fa-f:.]*[:.][0-9A-Fa-f:.]*")
_MAC_RE = re.compile(r"\bMAC=[0-9A-Fa-f:]*")


# ------------------------------------------------------------------------------------------------- the model

class Redactor:
    """Replaces addresses by stable pseudonyms (addr-1, addr-2, ...) in order of appearance, when enabled."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.names: dict[str, str] = {}

    def address(self, value: t.Any) -> t.Any:
        if not self.enabled or value in (None, ""):
            return value
        key = str(value)
        if key not in self.names:
            self.names[key] = f"addr-{len(self.names) + 1}"
        return self.names[key]

    def text(self, value: t.Any) -> str:
        text = "" if value is None else str(value)
        return redact_text(text, self.address) if self.enabled else text


def redact_text(text: str, replace: t.Callable[[str], str]) -> str:
    """Every IPv4 or IPv6 address in ``text`` replaced by ``replace(address)``, and MAC= values dropped."""
    def one(match: re.Match) -> str:
        token = match.group(0)
        core = token.strip(".:")
        try:
            ipaddress.ip_address(core)
        except ValueError:
            return token
        start = token.index(core)
        return token[:start] + replace(core) + token[start + len(core):]
    return _ADDRESS_CANDIDATE_RE.sub(one, _MAC_RE.sub("MAC=(left out)", text))


def _int(value: t.Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


def as_dict(value: t.Any) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value: t.Any) -> list:
    return value if isinstance(value, list) else []


def utc_text(epoch: t.Any) -> str | None:
    if epoch is None:
        return None
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(epoch)))
    except (TypeError, ValueError, OverflowError):
        return None


def _label_order(labels: t.Iterable[str]) -> list[str]:
    unique = list(dict.fromkeys(str(label) for label in labels))
    return sorted(unique, key=lambda label: (label != "init", unique.index(label)))


def _host_port(address: t.Any, port: t.Any) -> str:
    if address in (None, ""):
        return "?"
    text = str(address)
    if port is None:
        return text
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


def sample_line(sample: dict, redactor: Redactor) -> str:
    """One parsed log record as a short line: time, protocol, source > destination, flags, interfaces."""
    parts = [str(sample.get("timestamp") or sample.get("monotonic") or "?")]
    protocol = sample.get("protocol")
    if protocol:
        parts.append(str(protocol))
    parts.append(f"{_host_port(redactor.address(sample.get('src')), sample.get('sport'))} >"
                 f" {_host_port(redactor.address(sample.get('dst')), sample.get('dport'))}")
    if sample.get("flags"):
        parts.append(",".join(str(flag) for flag in as_list(sample.get("flags"))))
    if sample.get("icmp_type") is not None:
        parts.append(f"type={sample.get('icmp_type')} code={sample.get('icmp_code')}")
    for key in ("in", "out"):
        if sample.get(key):
            parts.append(f"{key.upper()}={sample[key]}")
    if sample.get("length") is not None:
        parts.append(f"LEN={sample['length']}")
    if sample.get("state"):
        parts.append(f"state={sample['state']}")
    if sample.get("reason_text"):
        parts.append(f"({redactor.text(sample['reason_text'])})")
    return " ".join(str(part) for part in parts)


def _host_rows(report: dict) -> list[dict]:
    """One row per namespace of the host: window ids, conntrack facts and plans together, init first."""
    windows = as_dict(report.get("windows"))
    conntrack = as_dict(report.get("conntrack"))
    plans = as_dict(report.get("plan"))
    diagnosis = as_dict(report.get("diagnosis"))
    invalid_log = as_dict(report.get("invalid_log"))
    by_namespace = as_dict(as_dict(invalid_log.get("attribution")).get("by_namespace"))
    full_by_label = as_dict(as_dict(diagnosis.get("table_full")).get("by_netns"))
    labels = _label_order(list(windows) + list(conntrack) + list(plans)) or ["-"]
    rows = []
    for label in labels:
        window = as_dict(windows.get(label))
        delta = window.get("stats_delta")
        facts = as_dict(conntrack.get(label))
        if by_namespace or invalid_log.get("attribution"):
            lines = _int(as_dict(by_namespace.get(label)).get("count")) or 0
        else:  # not attributed: every line belongs to the host's only (or first) row
            lines = (_int(invalid_log.get("total")) or 0) if label == labels[0] else None
        codes = [finding.get("code") for finding in as_list(as_dict(facts.get("discrepancy")).get("findings"))
                 if isinstance(finding, dict)]
        container = as_dict(window.get("container"))
        rows.append({
            "label": label,
            # A container's or pod's window is shown by the runtime's whole name, not by its namespace's id.
            "netns": str(container.get("display_name") or label),
            "lines": lines,
            "deltas": {name: (_int(delta.get(name)) if isinstance(delta, dict) else None) for name in COUNTERS},
            "all_deltas": {str(k): _int(v) for k, v in delta.items()} if isinstance(delta, dict) else {},
            "usage": facts.get("usage_percent") if isinstance(facts.get("usage_percent"), (int, float)) else None,
            "count": _int(facts.get("count")),
            "max": _int(facts.get("max")),
            "full": _int(full_by_label.get(label)) or 0,
            "discrepancy": [str(code) for code in dict.fromkeys(codes) if code],
            "plan": [str(p.get("code")) for p in as_list(diagnosis.get("plan_problems"))
                     if isinstance(p, dict) and str(p.get("netns")) == label],
            "window_active": window.get("active"),
        })
    return rows


def _attention(host: dict) -> tuple[tuple, list[str]]:
    """A sort key (larger first) and the reasons a host needs attention; no reasons for a quiet host."""
    if host["failed"]:
        return (1, 0, 0, 0, 0, 0, 0, 0, 0), [FAILED]
    why = [f"{one['id']} ({one['netns']})" for one in problems(host)] + attention_reasons(host)
    usage = max([row["usage"] for row in host["rows"] if row["usage"] is not None] or [0])
    if usage >= DEFAULT_THRESHOLDS["table_usage_percent"]:
        why.append(f"table {usage_text(usage)} % full")
    full = host["table_full"]["count"]
    if full:
        why.append(f"table full {full}x")
    drops = 0
    for name in DROP_COUNTERS:
        total = sum(row["deltas"][name] or 0 for row in host["rows"])
        drops += total
        if total:
            why.append(f"{name} +{total}")
    if host["plan_problems"]:
        why.append("plan: " + ", ".join(dict.fromkeys(p["code"] for p in host["plan_problems"])))
    discrepancy = sorted({code for row in host["rows"] for code in row["discrepancy"]} | set(host["discrepancy"]))
    if discrepancy:
        why.append("discrepancy: " + ", ".join(discrepancy))
    if host["findings"]:
        why.append(f"{len(host['findings'])} finding(s)")
    if host["total"]:
        why.append(f"{host['total']} invalid line(s)")
    key = (0, len(problems(host)), full, int(usage >= DEFAULT_THRESHOLDS["table_usage_percent"]), drops,
           len(host["plan_problems"]), len(discrepancy), len(host["findings"]), host["total"])
    return key, why


def _host_entry(report: dict, redactor: Redactor) -> dict:
    """One host of the model from its report: reasons, peers (as redacted), rows, findings, verdicts, samples."""
    invalid_log = as_dict(report.get("invalid_log"))
    diagnosis = as_dict(report.get("diagnosis"))
    host_peers: dict[str, int] = {}
    for address, count in as_dict(invalid_log.get("by_peer")).items():
        shown = str(redactor.address(address))
        host_peers[shown] = host_peers.get(shown, 0) + (_int(count) or 0)
    table_full = as_dict(diagnosis.get("table_full"))
    unparsed = as_dict(invalid_log.get("unparsed"))
    rows = _host_rows(report)
    return {
        "host": str(report.get("host") or "?"),
        "failed": False,
        "collected_at": report.get("collected_at"),
        "window_active": bool(report.get("window_active")),
        "total": _int(invalid_log.get("total")) or 0,
        "by_reason": {str(k): _int(v) or 0 for k, v in as_dict(invalid_log.get("by_reason")).items()},
        "peers": host_peers,
        "peers_distinct": _int(invalid_log.get("peers_distinct")) or len(host_peers),
        "rows": rows,
        "evidence": host_evidence(report, [row["label"] for row in rows]),
        "capture": capture_summary(report),
        "discrepancy": [str(code) for code in as_list(report.get("discrepancy"))],
        "plan_problems": [{"netns": str(p.get("netns")), "code": str(p.get("code")), "text": str(p.get("text"))}
                          for p in as_list(diagnosis.get("plan_problems")) if isinstance(p, dict)],
        "findings": [{"netns": str(f.get("netns")), "code": str(f.get("code")), "text": str(f.get("text"))}
                     for f in as_list(diagnosis.get("findings")) if isinstance(f, dict)],
        "table_full": {
            "count": _int(table_full.get("count")) or 0,
            "first": table_full.get("first"),
            "last": table_full.get("last"),
            "by_netns": {str(k): _int(v) or 0 for k, v in as_dict(table_full.get("by_netns")).items()},
            "expect_full": _int(table_full.get("expect_full")) or 0,
            "ratelimit_suppressed": _int(table_full.get("ratelimit_suppressed")) or 0,
        },
        "notes": [str(note) for note in as_list(report.get("notes"))],
        "verdicts": host_verdicts(report),
        "samples": [{"reason": str(sample.get("reason") or "?"), "netns": sample.get("netns"),
                     "line": sample_line(sample, redactor)}
                    for sample in as_list(invalid_log.get("samples")) if isinstance(sample, dict)],
        "unparsed": {"count": _int(unparsed.get("count")) or 0,
                     "samples": [redactor.text(line) for line in as_list(unparsed.get("samples"))]},
    }


def _failed_entry(name: str) -> dict:
    return {"host": name, "failed": True, "total": 0, "by_reason": {}, "peers": {}, "rows": [], "verdicts": [],
            "discrepancy": [], "plan_problems": [], "findings": [], "notes": [], "samples": [], "evidence": [],
            "capture": None,
            "table_full": {"count": 0, "by_netns": {}}, "unparsed": {"count": 0, "samples": []}}


def _window_span(reports: list[dict]) -> dict:
    """The earliest enable and the latest deadline of the active windows, and the first and last collection."""
    enabled, deadlines = [], []
    for report in reports:
        for window in as_dict(report.get("windows")).values():
            if isinstance(window, dict) and window.get("active"):
                if window.get("enabled_at") is not None:
                    enabled.append(window["enabled_at"])
                if window.get("deadline") is not None:
                    deadlines.append(window["deadline"])
    collected = [str(report["collected_at"]) for report in reports if report.get("collected_at")]
    return {
        "enabled": utc_text(min(enabled)) if enabled else None,
        "deadline": utc_text(max(deadlines)) if deadlines else None,
        "collected_first": min(collected) if collected else None,
        "collected_last": max(collected) if collected else None,
    }


def _fleet_totals(hosts: list[dict]) -> tuple[dict, dict, dict]:
    """Reasons and peers (lines, hosts) and plan problems (where) across the hosts, most widespread first."""
    reasons: dict[str, dict] = {}
    peers: dict[str, dict] = {}
    problems: dict[str, dict] = {}
    for host in hosts:
        name = host["host"]
        for table, counts in ((reasons, host["by_reason"]), (peers, host["peers"])):
            for key, count in counts.items():
                entry = table.setdefault(key, {"lines": 0, "hosts": []})
                entry["lines"] += count
                entry["hosts"].append(name)
        for problem in host["plan_problems"]:
            key = f"{problem['code']}: {problem['text'].split(' (')[0]}"
            where = name if problem["netns"] == "init" else f"{name} {problem['netns']}"
            problems.setdefault(key, {"code": problem["code"], "where": []})["where"].append(where)
    return (dict(sorted(reasons.items(), key=lambda item: (-len(item[1]["hosts"]), -item[1]["lines"], item[0]))),
            dict(sorted(peers.items(), key=lambda item: (-item[1]["lines"], -len(item[1]["hosts"]), item[0]))),
            dict(sorted(problems.items(), key=lambda item: (-len(item[1]["where"]), item[0]))))


def build_model(reports: t.Iterable[t.Any] | dict, failed: t.Iterable[t.Any] = (), redact_addresses: bool = False,
                version: str | None = None) -> dict:
    """Everything the renderers show, from the per-host reports (a list, or a mapping of host name to report) and
    the names of hosts whose collect failed; a report that is not a mapping is named under ``unreadable``."""
    redactor = Redactor(redact_addresses)
    readable, unreadable = split_reports(reports)
    hosts = [_host_entry(report, redactor) for report in readable]
    seen = {host["host"] for host in hosts}
    for name in dict.fromkeys(str(one) for one in failed or ()):
        if name not in seen:
            hosts.append(_failed_entry(name))
    for host in hosts:
        host["attention_key"], host["attention"] = _attention(host)
    reasons, peers, plan_problems = _fleet_totals([host for host in hosts if not host["failed"]])
    return {
        "version": version,
        "redacted": bool(redact_addresses),
        "hosts": hosts,
        "failed": [h["host"] for h in hosts if h["failed"]],
        "total": sum(h["total"] for h in hosts),
        "reasons": reasons,
        "peers": peers,
        "plan_problems": plan_problems,
        "attention": sorted((h for h in hosts if h["attention"]), key=lambda h: h["attention_key"], reverse=True),
        "verdicts": group_by_verdict(hosts),
        "unreadable": unreadable,
        "window": _window_span(readable),
    }


def window_text(model: dict) -> str:
    window = model["window"]
    parts = []
    if window["enabled"]:
        parts.append(f"enabled {window['enabled']}")
    if window["deadline"]:
        parts.append(f"deadline {window['deadline']}")
    if window["collected_last"]:
        first, last = window["collected_first"], window["collected_last"]
        parts.append(f"collected {last}" if first == last else f"collected {first} .. {last}")
    return ", ".join(parts) or "no active window"


def number_text(value: t.Any) -> str:
    return "-" if value is None else str(value)


def usage_text(value: t.Any) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}".rstrip("0").rstrip(".")


def _top_reason(host: dict) -> str:
    if not host["by_reason"]:
        return ""
    ordered = sorted(host["by_reason"].items(), key=lambda item: (-item[1], item[0]))
    reason, count = ordered[0]
    more = f" +{len(ordered) - 1}" if len(ordered) > 1 else ""
    return f"{count} {reason}{more}"


def table_rows(model: dict) -> list[dict]:
    """The per-host rows as the tables show them: reasons and failure on the host's first row."""
    rows = []
    for host in model["hosts"]:
        if host["failed"]:
            rows.append({"host": host["host"], "netns": "-", "failed": True, "attention": host["attention_key"]})
            continue
        # The reasons are the host's (the log does not attribute them): shown on its row with the most lines.
        main = max(range(len(host["rows"])), key=lambda i: (host["rows"][i]["lines"] or 0, -i)) if host["rows"] else 0
        for index, row in enumerate(host["rows"]):
            rows.append(dict(row, host=host["host"], failed=False, attention=host["attention_key"],
                             reasons=_top_reason(host) if index == main else "",
                             by_reason=host["by_reason"] if index == main else {}))
    return rows


# ---------------------------------------------------------------------------------------------- terminal

def _cell(value: t.Any) -> str:
    """Printable ASCII for the terminal; quotes and backslashes changed so the callback's JSON adds nothing."""
    text = "".join(ch if " " <= ch <= "~" else "?" for ch in str(value))
    return text.replace('"', "'").replace("\\", "/")


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(width - 2, 0)] + ".."


def _fit_name(text: str, width: int) -> str:
    """A host or namespace name in ``width``: cut in the middle, so that the unique ends of similar names show."""
    if len(text) <= width:
        return text
    tail = (width - 2) // 2 + 1
    return text[:width - 2 - tail] + ".." + text[-tail:]


def render_table(model: dict, max_hosts: int = MAX_HOSTS, width: int = TABLE_WIDTH) -> list[str]:
    """The per-host table and the fleet roll-up as lines of at most ``width`` printable ASCII characters.

    Up to ``max_hosts`` hosts, in the order of the reports; beyond, the ``max_hosts`` hosts that need attention
    most, in that order, and a line counting the others."""
    rows = table_rows(model)
    hidden = 0
    if len(model["hosts"]) > max_hosts:
        ranked = sorted(model["hosts"], key=lambda host: host["attention_key"], reverse=True)
        order = {host["host"]: index for index, host in enumerate(ranked[:max_hosts])}
        hidden = len(model["hosts"]) - len(order)
        rows = sorted((row for row in rows if row["host"] in order), key=lambda row: order[row["host"]])
    headers = ["HOST", "NETNS", "LINES", "TOP REASON", "INVAL", "DROP", "INS_F", "E_DROP", "USE%", "FULL",
               "DISCREP", "PLAN"]
    cells = []
    for row in rows:
        if row["failed"]:
            cells.append([row["host"], "-", FAILED, "", "", "", "", "", "", "", "", ""])
            continue
        deltas = row["deltas"]
        cells.append([row["host"], row["netns"], number_text(row["lines"]), row["reasons"],
                      *(number_text(deltas[name]) for name in COUNTERS), usage_text(row["usage"]),
                      str(row["full"]), ",".join(row["discrepancy"]), ",".join(row["plan"])])
    cells = [[_cell(value) for value in line] for line in cells]
    widths = [max([len(headers[i])] + [len(line[i]) for line in cells if not (line[2] == FAILED and i == 2)])
              for i in range(len(headers))]
    widths[0] = min(widths[0], 32)
    widths[1] = min(widths[1], 32)
    widths[10] = min(widths[10], 14)
    fixed = sum(widths) - widths[3] - widths[11] + len(headers) - 1
    room = max(width - fixed, 20)
    widths[11] = min(widths[11], max(room // 3, 4))
    widths[3] = min(widths[3], room - widths[11])
    if widths[3] + widths[11] < room:
        widths[11] = room - widths[3]
    numeric = {2, 4, 5, 6, 7, 8, 9}

    def line(values: list[str]) -> str:
        if values[2] == FAILED:
            return f"{_fit_name(values[0], widths[0]).ljust(widths[0])} {values[1].ljust(widths[1])} {FAILED}".rstrip()
        out = []
        for i, value in enumerate(values):
            value = _fit_name(value, widths[i]) if i < 2 else _fit(value, widths[i])
            out.append(value.rjust(widths[i]) if i in numeric else value.ljust(widths[i]))
        return " ".join(out).rstrip()

    lines = [_cell(text) for text in verdict_lines(model, _wrapped)] + _attention_lines(model) + [""]
    lines += [line(headers)] + [line(values) for values in cells]
    if hidden:
        lines.append(f"... {hidden} more host(s) with less to report (above: most attention first; all hosts:"
                     " fleet-summary.md)")
    lines.append("")
    lines += [_cell(text) for text in evidence_lines(model["hosts"], _wrapped, _fit_name)] + [""]
    lines += _rollup(model)
    return [_fit(text, width) for text in lines]


def _attention_lines(model: dict) -> list[str]:
    if not model["attention"]:
        return ["Attention first: nothing to report on any host"]
    lines = ["Attention first:"]
    width = min(max(len(h["host"]) for h in model["attention"][:MAX_ATTENTION]), 32)
    for host in model["attention"][:MAX_ATTENTION]:
        lines.append(f"  {_fit_name(_cell(host['host']), width).ljust(width)}  {_cell('; '.join(host['attention']))}")
    if len(model["attention"]) > MAX_ATTENTION:
        lines.append(f"  ... {len(model['attention']) - MAX_ATTENTION} more host(s)")
    return lines


def _rollup(model: dict) -> list[str]:
    hosts = model["hosts"]
    failed = len(model["failed"])
    head = f"Fleet: {len(hosts)} host(s)"
    if failed:
        head += f" ({failed} collect failed)"
    head += f", {model['total']} invalid line(s)"
    events = captured_events(hosts)
    if events:
        head += f", {events} captured event(s)"
    lines = [_cell(head), _cell("Window: " + window_text(model))]
    if model["reasons"]:
        reasons = list(model["reasons"].items())
        width = min(max(len(reason) for reason in list(model["reasons"])[:MAX_REASONS]), 60)
        lines.append(f"{'REASON'.ljust(width)} HOSTS  LINES")
        for reason, entry in reasons[:MAX_REASONS]:
            lines.append(f"{_fit(_cell(reason), width).ljust(width)} {len(entry['hosts']):5d} {entry['lines']:6d}")
        if len(reasons) > MAX_REASONS:
            lines.append(f"... {len(reasons) - MAX_REASONS} more reason(s)")
    if model["peers"]:
        shown = [f"{_cell(address)} ({entry['lines']} lines, {len(entry['hosts'])} host(s))"
                 for address, entry in list(model["peers"].items())[:MAX_PEERS]]
        lines += _wrapped("Top peers: ", shown)
    if model["plan_problems"]:
        shown = [f"{entry['code']} on {len(entry['where'])} host(s)" for entry in model["plan_problems"].values()]
        lines += _wrapped("Plan problems: ", shown)
    return lines


def _wrapped(prefix: str, items: list[str], width: int = TABLE_WIDTH) -> list[str]:
    lines, current = [], prefix
    for index, item in enumerate(items):
        piece = item + (", " if index < len(items) - 1 else "")
        if len(current) + len(piece.rstrip()) > width and current.strip() != prefix.strip():
            lines.append(current.rstrip())
            current = " " * len(prefix)
        current += piece
    lines.append(current.rstrip())
    return lines


# --------------------------------------------------------------------------------------------- AWX stats

def render_stats(model: dict, max_hosts: int = 100) -> dict:
    """The fleet summary for set_stats (job and workflow artifacts): small, JSON-only, addresses as rendered."""
    return {
        "version": model["version"],
        "window": model["window"],
        "hosts": len(model["hosts"]),
        "collect_failed": model["failed"],
        "invalid_lines": model["total"],
        "addresses_left_out": model["redacted"],
        "reasons": {reason: {"lines": e["lines"], "hosts": len(e["hosts"])} for reason, e in model["reasons"].items()},
        "top_peers": {peer: {"lines": e["lines"], "hosts": len(e["hosts"])}
                      for peer, e in list(model["peers"].items())[:MAX_PEERS]},
        "plan_problems": {key: e["where"] for key, e in model["plan_problems"].items()},
        "hosts_with_table_full": {x["host"]: x["table_full"]["count"] for x in model["hosts"] if x["table_full"]["count"]},
        "captured_events": captured_events(model["hosts"]),
        "windows_ended_by_budget": {x["host"]: x["capture"]["budget"] for x in model["hosts"]
                                    if x.get("capture") and x["capture"]["budget"]},
        "attention": [{"host": x["host"], "why": x["attention"]} for x in model["attention"][:max_hosts]],
    }


def render_summary(model: dict) -> dict:
    """fleet-summary.json: per key, the hosts that collected (hosts whose collect failed have no report), with the
    window, the collection times and the collection version to tie it to an incident."""
    hosts = [x for x in model["hosts"] if not x["failed"]]
    return {
        "version": model["version"],
        "window": model["window"],
        "hosts_by_verdict": {ident: g["where"] for ident, g in model["verdicts"].items()},
        "verdicts": {x["host"]: x["verdicts"] for x in hosts},
        "nothing_wrong": [one["host"] for one in quiet_hosts(hosts)],
        "unreadable": model["unreadable"],
        "hosts": [x["host"] for x in hosts],
        "collect_failed": model["failed"],
        "invalid_logged": {x["host"]: x["total"] for x in hosts},
        "evidence": evidence_summary(hosts),
        "windows_ended_by_budget": {x["host"]: x["capture"]["budget"] for x in hosts if x["capture"] and x["capture"]["budget"]},
        "hosts_by_reason": {reason: e["hosts"] for reason, e in model["reasons"].items()},
        "hosts_with_discrepancy": [x["host"] for x in hosts if x["discrepancy"]],
        "notes": {x["host"]: x["notes"] for x in hosts},
        "hosts_by_plan_problem": {key: e["where"] for key, e in model["plan_problems"].items()},
        "reconciliation": {x["host"]: [f["text"] for f in x["findings"]] for x in hosts if x["findings"]},
        "hosts_with_table_full": {x["host"]: x["table_full"] for x in hosts
                                  if x["table_full"]["count"] or x["table_full"]["expect_full"]},
    }
