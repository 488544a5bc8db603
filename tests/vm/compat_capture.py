# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The kernel matrix's cells for the netlink capture (playbooks/capture.yml) and the verdicts (playbooks/verdicts.yml),
decided from capture.json and verdicts.json of one kernel's results directory. Used by compatibility.py.

Each function takes the kernel's results directory and returns (status, note) like the other cells.
"""
from __future__ import annotations

import json
import os

PASS, FAIL, NA = "pass", "FAIL", "n/a"
FLAGS_REASON = "invalid tcp flag combination"
# (row title, namespace, the verdict that must be named, verdicts that must not be, only that one)
VERDICT_CASES = (
    ("verdict: out-of-window TCP (ACKs outside the window)", "vd-oow", "tcp_out_of_window", ("blinded_window",), False),
    ("verdict: blinded window (`nf_conntrack_tcp_be_liberal=1`, the same ACKs)", "vd-blind", "blinded_window",
     ("tcp_out_of_window",), False),
    ("verdict: nothing wrong (connections that open and close)", "vd-quiet", "nothing_wrong", (), True),
    ("verdict: table full (guest's `nf_conntrack_max` lowered to 40)", "vd-full", "table_full", (), False),
)


def _load(directory, name):
    try:
        with open(os.path.join(directory, name), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def _json(text):
    try:
        value = json.loads(text or "")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def readback(text):
    values = dict(line.split("=", 1) for line in (text or "").splitlines() if "=" in line)
    # Built in without parameters, nfnetlink_log has no /sys/module entry; registered as a logger, it is there.
    if values.get("nfnetlink_log") == "absent" and "nfnetlink_log" in values.get("nf_log", ""):
        values["nfnetlink_log"] = "built-in"
    return values


def _case(directory, name):
    evidence = _load(directory, "capture.json")
    if not evidence:
        return None, (FAIL, "no evidence (capture.yml did not run or failed before writing capture.json)")
    case = (evidence.get("cases") or {}).get(name)
    if not case:
        return None, (FAIL, "case not run: " + str(evidence.get("error") or "?"))
    return dict(case, count=int(evidence.get("count") or 0), role_default=evidence.get("role_default")), None


def _pcapng_problems(case, namespace):
    opened = _json(case.get("pcapng"))
    if not opened.get("exists"):
        return ["pcapng not fetched" + (f" ({case.get('pcapng_error')[-200:]})" if case.get("pcapng_error") else "")], "no pcapng"
    problems = []
    if opened.get("error"):
        problems.append("pcapng: " + opened["error"])
    samples = namespace.get("samples")
    if opened.get("packets") != samples:
        problems.append(f"pcapng holds {opened.get('packets')} packet(s), the capture says {samples}")
    reasons = set(namespace.get("by_reason") or {})
    if not set(opened.get("comments") or {}) <= reasons or not opened.get("comments"):
        problems.append(f"pcapng comments {sorted(opened.get('comments') or {})} are not the reasons {sorted(reasons)}")
    shark = opened.get("tshark")
    if shark is None:
        how = "block reader (no tshark)"
    else:
        how = "tshark"
        if shark.get("rc") != 0 or shark.get("comments") != opened.get("comments"):
            problems.append(f"tshark rc {shark.get('rc')}, comments {shark.get('comments')}: {shark.get('stderr')}")
    return problems, f"pcapng {opened.get('size')} B, {opened.get('packets')} packet(s) with their reason, read by {how}"


def capture_cell(directory, name):
    """One window of capture.yml: the path, exact counts, the pcapng, nothing in the kernel log, the loggers restored."""
    case, missing = _case(directory, name)
    if missing:
        return missing
    ident = case["id"]
    enabled = ((case.get("enabled") or {}).get("namespaces") or {}).get(ident) or {}
    path = (enabled.get("capture") or {}).get("path")
    why = (enabled.get("capture") or {}).get("why")
    report = case.get("report") or {}
    namespace = ((report.get("capture") or {}).get("namespaces") or {}).get(ident) or {}
    sent = _json(case.get("sent")).get("sent", 0)
    before, opened, after = readback(case.get("before")), readback(case.get("open")), readback(case.get("after"))
    invalid = ((report.get("windows") or {}).get(ident) or {}).get("stats_delta", {}).get("invalid")
    events, detail = namespace.get("events"), namespace.get("loss_detail") or {}
    lost = detail.get("events_lost")
    asked = f"{case['capture']}" + (" (role default " + str(case.get("role_default")) + ", asked explicitly)"
                                    if name == "default" and case.get("explicit") else "")
    problems = [str(case["error"])] if case.get("error") else []
    if path != "netlink" or namespace.get("path") != "netlink":
        problems.append(f"path {path} ({why}), report {namespace.get('path')}")
    if not (isinstance(events, int) and isinstance(lost, int) and events + lost == sent == invalid):
        problems.append(f"counts: {events} event(s) + {lost} lost against {sent} sent and invalid +{invalid}")
    by_reason = namespace.get("by_reason") or {}
    if sum(by_reason.values()) != events or by_reason.get(FLAGS_REASON) != events:
        problems.append(f"by reason {by_reason} does not account for the {events} event(s)")
    if not detail.get("exact"):
        problems.append(f"loss not exact: {namespace.get('loss')}")
    if (report.get("capture") or {}).get("ended_by_budget"):
        problems.append("a budget ended the window")
    for key in ("kernel_log_lines",):
        if not (before.get(key) == opened.get(key) == after.get(key) == "0"):
            problems.append(f"{key}: {before.get(key)} / {opened.get(key)} / {after.get(key)}")
    if opened.get("all_netns") != "0":
        problems.append(f"nf_log_all_netns read {opened.get('all_netns')} during the window")
    restored = [key for key in ("nf_log.2", "nf_log.10", "log_invalid") if before.get(key) != after.get(key)]
    if restored:
        problems.append("not restored: " + ", ".join(f"{k} {before.get(k)} -> {after.get(k)}" for k in restored))
    pcap_problems, pcap_note = _pcapng_problems(case, namespace)
    problems += pcap_problems
    note = (f"{asked}: path {path}; sent {sent}, invalid +{invalid}, counted {events} ({FLAGS_REASON} "
            f"{by_reason.get(FLAGS_REASON)}), loss {namespace.get('loss')}; {pcap_note}; kernel-log lines 0; "
            f"nf_log.2 during {opened.get('nf_log.2')}, restored to {after.get('nf_log.2')}")
    if case.get("enable_retried_after"):
        note += "; enable run twice, the first one failed: " + str(case["enable_retried_after"]).split(". Rolled back", maxsplit=1)[0]
    return (FAIL, "; ".join(problems) + " — " + note) if problems else (PASS, note)


def _netlink_case(directory):
    """The explicit netlink window, or the default one where only that one took the netlink path and sent."""
    cases = [_case(directory, name) for name in ("netlink", "default")]
    for case, dummy in cases:
        if case and case.get("sent") and (((case.get("enabled") or {}).get("namespaces") or {}).get(case["id"]) or {}) \
                .get("capture", {}).get("path") == "netlink":
            return case, None
    return cases[0]


def all_netns_cell(directory):
    """Did nfnetlink_log deliver a child namespace's events with nf_log_all_netns at 0 (either window)?"""
    case, missing = _netlink_case(directory)
    if missing:
        return missing
    if case.get("error") and not case.get("sent"):
        return FAIL, "not measured: the window failed before the packets were sent (" + str(case["error"])[:160] + ")"
    opened = readback(case.get("open"))
    namespace = (((case.get("report") or {}).get("capture") or {}).get("namespaces") or {}).get(case["id"]) or {}
    sent, events = _json(case.get("sent")).get("sent", 0), namespace.get("events")
    lost = (namespace.get("loss_detail") or {}).get("events_lost") or 0
    module = f"nfnetlink_log {opened.get('nfnetlink_log')}"
    note = (f"{case['capture']} window: nf_log_all_netns={opened.get('all_netns')}; {events} of {sent} event(s)"
            f" delivered ({lost} lost); {module}")
    works = opened.get("all_netns") == "0" and sent > 0 and isinstance(events, int) and events + lost == sent and events > 0
    return (PASS, "works without it: " + note) if works else (FAIL, "does NOT hold: " + note)


def capture_needs(directory):
    """One line for the 'what netlink capture needs' section."""
    case, missing = _netlink_case(directory)
    if missing:
        return "not run: " + missing[1]
    before, opened = readback(case.get("before")), readback(case.get("open"))
    enabled = ((case.get("enabled") or {}).get("namespaces") or {}).get(case["id"]) or {}
    capture = enabled.get("capture") or {}
    module = {("loadable", "loaded"): "module `nfnetlink_log`, loaded by enable",
              ("loaded", "loaded"): "module `nfnetlink_log`, already loaded",
              ("built-in", "built-in"): "`nfnetlink_log` built in"}.get(
        (before.get("nfnetlink_log"), opened.get("nfnetlink_log")),
        f"`nfnetlink_log` {before.get('nfnetlink_log')} before enable, {opened.get('nfnetlink_log')} during the window")
    status, note = all_netns_cell(directory)
    if note.startswith("not measured"):
        return note
    return (f"{module}; the loggers of the namespace bound to `{opened.get('nf_log.2')}` (IPv4) and "
            f"`{opened.get('nf_log.10')}` (IPv6) for the window; `nf_log_all_netns` "
            + ("not needed" if status == PASS else "NEEDED") + f" ({note}); auto: {capture.get('why') or '?'}")


def _unattributed(directory):
    """The collect report's kernel-log lines that no namespace of the window could be given."""
    reports = os.path.join(directory, "reports-verdicts")
    for name in sorted(os.listdir(reports)) if os.path.isdir(reports) else []:
        if name.endswith(".json") and name != "fleet-summary.json":
            report = _load(reports, name)
            return ((report.get("invalid_log") or {}).get("attribution") or {}).get("unattributed") or {}
    return {}


def verdict_cell(directory, namespace, expected, absent, exactly):
    evidence = _load(directory, "verdicts.json")
    if not evidence:
        return FAIL, "no evidence (verdicts.yml did not run or failed before writing verdicts.json)"
    if evidence.get("skipped"):
        return NA, evidence["skipped"]
    found = (evidence.get("verdicts") or {}).get(f"netns-{namespace}")
    if found is None:
        return FAIL, f"no verdicts for {namespace}: {evidence.get('error') or 'collect returned none'}"
    ids = [one.get("id") for one in found]
    one = next((v for v in found if v.get("id") == expected), None)
    numbers = ", ".join(f"{k} {v}" for k, v in ((one or {}).get("numbers") or {}).items()
                        if not isinstance(v, (dict, list)))
    note = f"{namespace}: {', '.join(ids) or 'none'}" + (f" ({one.get('confidence')}; {numbers})" if one else "")
    invalid = (((evidence.get("windows") or {}).get(f"netns-{namespace}") or {}).get("stats_delta") or {}).get("invalid")
    note += f"; invalid +{invalid}"
    captured = ((evidence.get("capture") or {}).get("namespaces") or {}).get(f"netns-{namespace}")
    note += (f"; read from the netlink capture ({captured.get('events')} events)" if captured
             else "; read from the kernel log")
    unattributed = _unattributed(directory) if expected == "tcp_out_of_window" else {}
    if unattributed.get("count"):
        note += f"; {unattributed['count']} kernel-log line(s) of the window not attributed to a namespace: " + \
            ", ".join(f"{count} x {why}" for why, count in (unattributed.get("reasons") or {}).items())
    if expected == "table_full":
        note += "; fill: " + " ".join(str(evidence.get("fill")).split())
    ok = one is not None and not set(absent) & set(ids) and (not exactly or ids == [expected])
    return (PASS if ok else FAIL), note
