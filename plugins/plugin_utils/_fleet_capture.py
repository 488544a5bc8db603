# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet report's evidence part: which path each namespace's evidence took, and what the netlink capture counted.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

A namespace captured through nfnetlink_log has exact counts of log events per reason, its loss (socket overruns,
that is ENOBUFS, and the kernel's sequence gaps) and a pcapng file on the host; any other namespace's evidence is
the kernel log, whose lines are lost when its ring buffer wraps. Pure functions of the per-host report's
``capture`` section (the aggregate as collect read it) and its windows.
"""

from __future__ import annotations

import typing as t

NETLINK = "netlink"
KERNEL_LOG = "kernel_log"
PATH_NAMES = {NETLINK: "netlink", KERNEL_LOG: "kernel log"}
EVENTS_MEANING = ("Netlink capture: exact counts of log events, one each time conntrack judged a packet invalid and"
                  " logged it; a packet judged at more than one hook (loopback: OUTPUT and PREROUTING) counts once"
                  " at each, so events can exceed packets sent. Loss is exact: ENOBUFS is the socket overruns,"
                  " gaps the events missing from the kernel's sequence numbers.")
KERNEL_LOG_MEANING = ("Kernel log: the lines the kernel wrote (nf_log), read back from its ring buffer; lines are lost"
                      " when the ring buffer wraps, and a child namespace logs only with nf_log_all_netns=1.")
FETCH_NOTE = ("The pcapng files stay on each host (0600, root's) until the next capture; with"
              " conntrack_debug_fetch_captures: true, collect copies each to captures/HOST/NETNS.pcapng in the"
              " report directory.")


def _int(value: t.Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


def _dict(value: t.Any) -> dict:
    return value if isinstance(value, dict) else {}


def capture_summary(report: dict) -> dict | None:
    """The host's collector and budget from the report's ``capture`` section; None without a capture."""
    capture = report.get("capture")
    if not isinstance(capture, dict):
        return None
    budget = _dict(capture.get("budget_exceeded"))
    return {
        "counted": str(capture.get("counted") or ""),
        "state": str(capture.get("state") or "unknown"),
        "collector": str(capture.get("collector") or "unknown"),
        "stopped_by": capture.get("stopped_by"),
        "restarts": _int(capture.get("restarts")) or 0,
        "events": _int(capture.get("events")) or 0,
        "budget": {"name": str(budget.get("name") or "?"), "value": budget.get("value"), "limit": budget.get("limit"),
                   "at": str(budget.get("at_utc") or budget.get("at") or "?")}
        if (capture.get("ended_by_budget") or budget) else None,
        "directory": capture.get("directory"),
        "started": capture.get("started_utc"),
        "last_written": capture.get("last_written_utc"),
        "cpu_seconds": capture.get("cpu_seconds"),
        "max_rss_kib": _int(capture.get("max_rss_kib")),
    }


def _captured_row(label: str, one: dict) -> dict:
    detail = _dict(one.get("loss_detail"))
    status = str(one.get("status") or "capturing")
    return {
        "netns": label, "path": NETLINK, "status": status,
        "why": str(one.get("error") or "") if status != "capturing" else "",
        "events": _int(one.get("events")) or 0,
        "by_reason": {str(k): _int(v) or 0 for k, v in _dict(one.get("by_reason")).items()},
        "loss": str(one.get("loss") or detail.get("summary") or "unknown"),
        "events_lost": _int(detail.get("events_lost")),
        "enobufs": _int(detail.get("overruns")),
        "sequence_gaps": _int(detail.get("sequence_gaps")),
        "socket_drops": _int(detail.get("socket_drops")),
        "exact": detail.get("exact") if isinstance(detail.get("exact"), bool) else None,
        "pcapng": one.get("pcapng") or None,
        "samples": _int(one.get("samples")),
    }


def _kernel_log_loss(report: dict) -> str:
    invalid_log = _dict(report.get("invalid_log"))
    lost = _int(invalid_log.get("lost_records")) or 0
    if invalid_log.get("ring_buffer_wrapped") or lost:
        return f"ring buffer wrapped: {lost} record(s) lost (host-wide)"
    return "none seen (the kernel log says so only when its ring buffer wraps)"


def host_evidence(report: dict, labels: t.Iterable[str]) -> list[dict]:
    """One row per namespace (``labels`` first, in order, then any other captured one): its evidence path and,
    captured, the counts, the loss and the pcapng."""
    captured = _dict(_dict(report.get("capture")).get("namespaces"))
    windows = _dict(report.get("windows"))
    rows = []
    for label in list(dict.fromkeys(list(labels) + [str(k) for k in captured])):
        if isinstance(captured.get(label), dict):
            rows.append(_captured_row(label, captured[label]))
            continue
        chosen = _dict(_dict(windows.get(label)).get("capture"))
        rows.append({"netns": label, "path": KERNEL_LOG, "status": None,
                     "why": str(chosen.get("why") or ""), "events": None, "by_reason": {},
                     "loss": _kernel_log_loss(report), "events_lost": None, "enobufs": None, "sequence_gaps": None,
                     "socket_drops": None, "exact": None, "pcapng": None, "samples": None})
    return rows


def budget_text(host: str, budget: dict) -> str:
    return (f"{host}: the window ended early, budget {budget['name']} exceeded ({budget['value']}, limit"
            f" {budget['limit']}) at {budget['at']}; everything was reverted then")


def collector_text(host: str, capture: dict) -> str:
    parts = [f"{host}: collector {capture['collector']} ({capture['state']}"
             + (f", stopped by {capture['stopped_by']}" if capture["stopped_by"] else "") + ")",
             f"{capture['events']} event(s)", f"{capture['restarts']} restart(s)"]
    if capture["started"]:
        parts.append(f"started {capture['started']}")
    if capture["cpu_seconds"] is not None:
        parts.append(f"{capture['cpu_seconds']} CPU s")
    if capture["max_rss_kib"] is not None:
        parts.append(f"peak RSS {capture['max_rss_kib']} KiB")
    return ", ".join(parts)


def reasons_text(by_reason: dict, limit: int | None = None) -> str:
    ordered = sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))
    shown = "; ".join(f"{count} {reason}" for reason, count in ordered[:limit])
    if limit is not None and len(ordered) > limit:
        shown += f" +{len(ordered) - limit}"
    return shown


def attention_reasons(host: dict) -> list[str]:
    """What of the capture needs attention: a budget that ended the window, lost events, a dead collector."""
    why = []
    capture = host.get("capture")
    if capture and capture["budget"]:
        why.append(f"window ended by budget {capture['budget']['name']}")
    lost = sum(row["events_lost"] or 0 for row in host.get("evidence") or [] if row["path"] == NETLINK)
    if lost:
        why.append(f"capture lost {lost} event(s)")
    if capture and capture["collector"] == "dead":
        why.append("capture collector dead")
    return why


def captured_events(hosts: list[dict]) -> int:
    return sum(row["events"] or 0 for host in hosts for row in host.get("evidence") or [] if row["path"] == NETLINK)


def evidence_lines(hosts: list[dict], wrapped: t.Callable[[str, list[str]], list[str]],
                   fit: t.Callable[[str, int], str], max_rows: int = 50) -> list[str]:
    """The terminal's evidence part: one line per captured namespace (``max_rows`` at most), the budgets that ended
    windows, and the namespaces whose evidence is the kernel log; ``wrapped(prefix, items)`` folds a list, ``fit``
    cuts a name in its middle. The Markdown and HTML reports list every namespace."""
    rows = [(host["host"], row) for host in hosts if not host.get("failed") for row in host.get("evidence") or []]
    captured = [(name, row) for name, row in rows if row["path"] == NETLINK]
    logged = [f"{name} {row['netns']}" for name, row in rows if row["path"] == KERNEL_LOG]
    if not captured:
        return ["Evidence: the kernel log on every host (lines, lost when its ring buffer wraps; no netlink capture)"]
    lines = ["Evidence: netlink capture (exact log events; loss: ENOBUFS overruns, sequence gaps):"]
    width = min(max(len(name) for name, dummy in captured), 24)
    netns_width = min(max(len(row["netns"]) for dummy, row in captured), 24)
    lines.append(f"  {'HOST'.ljust(width)} {'NETNS'.ljust(netns_width)}  EVENTS   LOST ENOBUFS   GAPS  TOP REASON")
    for name, row in captured[:max_rows]:
        lost = "none" if row["loss"] == "none" else str(row["events_lost"] if row["events_lost"] is not None else "?")
        status = "" if row["status"] == "capturing" else f" [{row['status']}]"
        lines.append(f"  {fit(name, width).ljust(width)} {fit(row['netns'], netns_width).ljust(netns_width)}"
                     f" {row['events']:7d} {lost:>6} {_number(row['enobufs']):>7} {_number(row['sequence_gaps']):>6}"
                     f"  {reasons_text(row['by_reason'], 1)}{status}")
    if len(captured) > max_rows:
        lines.append(f"  ... {len(captured) - max_rows} more captured namespace(s) (all: fleet-summary.md)")
    for host in hosts:
        if host.get("capture") and host["capture"]["budget"]:
            lines.append("  " + budget_text(host["host"], host["capture"]["budget"]))
        elif host.get("capture") and host["capture"]["collector"] == "dead":
            lines.append("  " + collector_text(host["host"], host["capture"]))
    files = [f"{name} {row['netns']}: {row['pcapng']}" for name, row in captured if row["pcapng"]]
    if files:
        lines += wrapped("  pcapng on the hosts: ", _capped(files, 10))
    if logged:
        lines += wrapped("  kernel log instead (lines, lost when its ring buffer wraps): ", _capped(logged, 20))
    return lines


def _capped(items: list[str], limit: int) -> list[str]:
    return items if len(items) <= limit else items[:limit] + [f"{len(items) - limit} more"]


def _number(value: t.Any) -> str:
    return "-" if value is None else str(value)


def evidence_table(hosts: list[dict]) -> list[list[t.Any]]:
    """The rows of the Markdown and HTML evidence tables (see EVIDENCE_HEADERS)."""
    rows = []
    for host in hosts:
        for row in host.get("evidence") or []:
            path = PATH_NAMES[row["path"]] + ("" if row["status"] in (None, "capturing") else f" ({row['status']})")
            if row["why"]:
                path += f": {row['why']}"
            rows.append([host["host"], row["netns"], path, _number(row["events"]), reasons_text(row["by_reason"]),
                         row["loss"], _number(row["enobufs"]), _number(row["sequence_gaps"]),
                         _number(row["socket_drops"]), row["pcapng"] or ""])
    return rows


EVIDENCE_HEADERS = ["Host", "Netns", "Evidence path", "Events", "Events by reason", "Loss", "ENOBUFS (overruns)",
                    "Sequence gaps", "Socket drops", "pcapng on the host"]
KERNEL_LOG_COLUMNS = (0, 1, 2, 5)


def evidence_context(hosts: list[dict]) -> dict:
    """The evidence variables of the Markdown and HTML templates."""
    live = [host for host in hosts if not host.get("failed")]
    captures = [host for host in live if host.get("capture")]
    captured = any(row["path"] == NETLINK for host in live for row in host.get("evidence") or [])
    rows = evidence_table(live)
    return {
        # Without a capture anywhere, the capture's columns would be empty: path and loss only.
        "evidence_headers": EVIDENCE_HEADERS if captured else [EVIDENCE_HEADERS[i] for i in KERNEL_LOG_COLUMNS],
        "evidence_rows": rows if captured else [[row[i] for i in KERNEL_LOG_COLUMNS] for row in rows],
        "evidence_captured": captured,
        "evidence_kernel_log": any(row["path"] == KERNEL_LOG for host in live for row in host.get("evidence") or []),
        "events_meaning": EVENTS_MEANING,
        "kernel_log_meaning": KERNEL_LOG_MEANING,
        "fetch_note": FETCH_NOTE,
        "budget_lines": [budget_text(host["host"], host["capture"]["budget"]) for host in captures
                         if host["capture"]["budget"]],
        "collector_lines": [collector_text(host["host"], host["capture"]) for host in captures],
    }


def evidence_summary(hosts: list[dict]) -> dict:
    """fleet-summary.json's evidence: per host and namespace the path, and captured, the events and the loss."""
    return {host["host"]: {row["netns"]: {"path": row["path"], "events": row["events"], "loss": row["loss"],
                                          "events_lost": row["events_lost"], "pcapng": row["pcapng"]}
                           for row in host.get("evidence") or []}
            for host in hosts if not host.get("failed")}


__all__ = ("EVENTS_MEANING", "EVIDENCE_HEADERS", "FETCH_NOTE", "KERNEL_LOG", "KERNEL_LOG_MEANING", "NETLINK",
           "attention_reasons", "budget_text", "capture_summary", "captured_events", "collector_text",
           "evidence_context", "evidence_lines", "evidence_summary", "evidence_table", "host_evidence", "reasons_text")
