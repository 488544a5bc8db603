# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Say which of the troubleshooting steps do anything on this host, and why nothing was logged.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

Two pure functions hold the logic, so that recorded probes of any kernel can be tested:

- :func:`build_plan` takes what was probed in one network namespace (:func:`probe` reads it on the host,
  ``_plan_probe.py``) and says, per step, whether it is effective and what decided that: ``probe`` (read
  from the kernel), ``version`` (only the kernel version could tell) or ``unknown`` (a distribution kernel
  whose backports make the version number meaningless for that question). Each step is one function of
  ``_plan_steps.py``.
- :func:`reconcile` takes the statistics delta of a window, the invalid-packet lines attributed to that
  namespace and its plan, and explains each non-zero counter and a counter that rose without log lines.

Kernel behaviour this relies on (read in the kernel sources):

- ``nf_l4proto_log_invalid()`` (net/netfilter/nf_conntrack_proto.c) logs only when
  ``nf_conntrack_log_invalid`` is the packet's protocol number or 255, through ``nf_log_packet()``, which
  uses the logger *bound* in the namespace (``net.netfilter.nf_log.<family>``); none bound, no line.
- ``nf_log_syslog`` (net/netfilter/nf_log_syslog.c, ``nf_log_allowed()``) drops every line of a
  non-initial namespace unless ``net.netfilter.nf_log_all_netns=1``. It applies no rate limit: each invalid
  packet is one printk, so the kernel's rate limit does not explain missing invalid-packet lines (only a
  wrapped ring buffer does, which the log reader detects).
- "table full" and "expectation table full" go through ``net_warn_ratelimited()``
  (net/netfilter/nf_conntrack_core.c ``__nf_conntrack_alloc()``, nf_conntrack_expect.c): at most
  ``net.core.message_burst`` lines per ``net.core.message_cost`` seconds; the ``drop`` counter is exact.
- Since 6.17 writing ``nf_conntrack_log_invalid`` requests ``nf_log_syslog`` when no logger is registered
  for the family, and the module binds itself in every namespace where nothing is bound.
- Since 5.19 the unconfirmed list is no longer kept (the dump answers empty), the dying list holds only
  entries whose destroy event waits for redelivery, and the TCP tracker's ``pr_debug`` sites are nearly all gone.
"""

from __future__ import annotations

import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._kernel_release import (
    TABLE_FULL_NETNS_SINCE,
    parse_release,
    version_decides,
    version_tuple,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._plan_probe import interfaces, notrack_rules, probe, read_outside
from ansible_collections.netfilter.conntrack.plugins.module_utils._plan_steps import BLINDERS, HIDES, STEPS, PlanInput, protocol_of


def build_plan(probe: dict[str, t.Any], intended: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
    """The plan of one namespace from its probe (see :func:`probe`); pure.

    ``intended`` overrides probed values with what enable is about to set (check mode): ``log_invalid``
    (the sysctl's number as text), ``bind`` (True: the syslog loggers of ``families`` will be bound),
    ``all_netns`` (True: nf_log_all_netns will be 1).
    """
    plan = PlanInput(probe, intended or {})
    steps: dict[str, dict[str, t.Any]] = {}
    for step in STEPS:
        steps.update(step(plan))
    return {
        "kernel": {k: v for k, v in plan.kernel.items() if k != "version_tuple"},
        "netns": probe.get("netns"),
        "initial_namespace": probe.get("initial"),
        "netns_inum": probe.get("inum"),
        "steps": steps,
        "blinders": plan.blinders,
        "problems": plan.problems,
        "interfaces": probe.get("interfaces") or [],
    }


# ---------------------------------------------------------------------------------------- reconciliation

COUNTER_MEANINGS = {
    "invalid": "packets conntrack could not classify (malformed, impossible flags, out of window...)",
    "insert_failed": "new entries that could not be inserted because an identical entry was inserted meanwhile; the packet was dropped",
    "drop": "packets dropped because conntrack could not create an entry (table full and nothing to evict) or a helper dropped them",
    "early_drop": "entries evicted to make room for new ones because the table was full (nf_conntrack_max)",
    "clash_resolve": "insert races the kernel resolved by reusing the entry that won (no drop)",
    "chaintoolong": "insertions refused because a hash chain was too long (hash flooding, or far more entries than buckets)",
    "error": "ICMP/ICMPv6 errors that did not match any tracked connection",
    "search_restart": "lookups restarted because the table was resized or entries moved (harmless unless huge)",
}


def _counter_text(key: str, value: int, delta: dict[str, int]) -> str:
    text = f"{key} +{value}: {COUNTER_MEANINGS.get(key, 'see conntrack -S')}"
    if key == "insert_failed" and delta.get("clash_resolve"):
        text += (". With clash_resolve also rising this is the classic parallel-UDP insert race (DNS A and AAAA"
                 " queries sent at once from one socket): the losers the kernel could not merge were dropped")
    if key == "drop" and delta.get("early_drop"):
        text += ". With early_drop rising the table was full: see table-full events and nf_conntrack_max"
    return text


def _missing_line_causes(steps: dict[str, t.Any], lost_records: int | None, unattributed: int) -> list[dict[str, str]]:
    """What in the plan, or in reading the log, explains invalid packets counted but not logged."""
    found = []
    log_step = steps.get("log_invalid") or {}
    if log_step.get("effective") is False:
        found.append({"code": "log_invalid_off", "text": log_step.get("why", "")})
    elif log_step.get("protocol") not in (None, "all"):
        found.append({"code": "protocol_outside_log_invalid",
                      "text": f"only {log_step['protocol']} is logged: invalid packets of other protocols are counted, not logged"})
    logger = steps.get("logger") or {}
    if logger.get("effective") is False:
        found.append({"code": "no_logger_bound", "text": logger.get("why", "")})
    elif logger.get("bound") and any(v in (None, "NONE") for v in logger["bound"].values()):
        found.append({"code": "logger_partly_bound", "text": logger.get("why", "")})
    all_netns = steps.get("all_netns") or {}
    if all_netns.get("needed") and all_netns.get("effective") is False:
        found.append({"code": "child_without_all_netns",
                      "text": "a child namespace with net.netfilter.nf_log_all_netns=0 on the host: nf_log_syslog drops"
                              " its lines (set conntrack_debug_all_netns: true)"})
    if lost_records:
        found.append({"code": "ring_buffer_wrapped", "text": f"{lost_records} kernel log record(s) of the window were lost"
                                                             " before they could be read"})
    if unattributed:
        found.append({"code": "unattributed_lines", "text": f"{unattributed} logged line(s) could not be attributed to a"
                                                            " namespace and may belong to this one"})
    return found


def _missing_event_causes(steps: dict[str, t.Any], events_lost: int | None) -> list[dict[str, str]]:
    """What explains invalid packets counted but not captured through nfnetlink_log: the capture needs no
    nf_log_all_netns and reads no ring buffer, so only log_invalid's protocol and the capture's own loss remain."""
    found = [cause for cause in _missing_line_causes(steps, None, 0)
             if cause["code"] in ("log_invalid_off", "protocol_outside_log_invalid")]
    if events_lost:
        found.append({"code": "capture_lost_events", "text": f"the capture lost {events_lost} event(s) (socket overruns"
                                                             " or sequence gaps)"})
    return found


def reconcile(delta: dict[str, int] | None, logged: int | None, plan: dict[str, t.Any] | None,
              unattributed: int = 0, lost_records: int | None = None, table_full: int = 0,
              ratelimit_suppressed: int = 0, capture: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
    """Compare one namespace's statistics delta with the invalid-packet lines attributed to it; pure.

    ``logged`` is the number of lines attributed to the namespace (None when attribution was impossible);
    ``unattributed`` the lines no selected namespace owns, which may belong to it. With ``capture`` (``events``
    and ``events_lost`` of the namespace's nfnetlink_log capture) the evidence is the captured events instead.
    """
    delta = {k: v for k, v in (delta or {}).items() if isinstance(v, int)}
    steps = (plan or {}).get("steps") or {}
    findings: list[dict[str, t.Any]] = []
    explained = [{"counter": key, "delta": value, "text": _counter_text(key, value, delta)}
                 for key, value in sorted(delta.items()) if value > 0 and key in COUNTER_MEANINGS]
    invalid = delta.get("invalid", 0)
    seen = capture["events"] if capture else logged or 0
    if invalid > seen:
        reasons = (_missing_event_causes(steps, capture.get("events_lost")) if capture
                   else _missing_line_causes(steps, lost_records, unattributed))
        if not reasons:
            reasons.append({"code": "unexplained", "text": "no setting explains it: some invalid verdicts are not logged by"
                                                           " design (for example a packet conntrack cannot parse at all)"})
        none, some = ("no event was captured", "event(s) were captured") if capture else ("no line was logged", "line(s) were logged")
        verb = none if not seen else f"only {seen} {some}"
        findings.append({"code": "invalid_not_logged", "counted": invalid, "logged": seen,
                         "text": f"invalid rose by {invalid} but {verb}: " + "; ".join(r["text"] for r in reasons),
                         "causes": [r["code"] for r in reasons],
                         "rate_limit": "does not apply: nf_log_syslog prints every invalid-packet line (no net_ratelimit)"})
    for one in (plan or {}).get("blinders") or []:
        if one["setting"].endswith("_loose"):
            continue  # the kernel default: listed in the plan, not repeated for every namespace
        findings.append({"code": "blinded", "setting": one["setting"],
                         "text": f"{one['setting']}={one['value']}: {one['hides']}. They cannot show up in this comparison."})
    if table_full and ratelimit_suppressed:
        findings.append({"code": "table_full_rate_limited",
                         "text": f"{table_full} table-full line(s) logged while net_ratelimit suppressed {ratelimit_suppressed}"
                                 " message(s): the drop counter, not the line count, says how many packets were lost"})
    return {"counters": explained, "findings": findings, "logged": logged, "counted_invalid": invalid,
            "evidence": "capture" if capture else "kernel log"}


def _table_full_by_label(plans: dict[str, dict[str, t.Any]], by_netns: dict[str, int]) -> dict[str, int]:
    """The kernel's table-full lines per namespace (keyed by netns inode, or "initial") as counts per plan label."""
    inums = {str(plan.get("netns_inum")): label for label, plan in plans.items() if plan.get("netns_inum") is not None}
    initial = [label for label, plan in plans.items() if plan.get("initial_namespace")]
    full_by_label: dict[str, int] = {}
    for key, count in by_netns.items():
        if key in inums:
            label = inums[key]
        elif key.startswith("initial"):
            kernel = next(iter(plans.values()), {}).get("kernel") or {}
            names_netns, dummy = version_decides(dict(kernel, version_tuple=version_tuple(kernel)), TABLE_FULL_NETNS_SINCE)
            if not names_netns:
                label = "a namespace the kernel does not name (it names them from 6.17)"
            else:
                label = initial[0] if initial else "initial namespace"
        else:
            label = f"netns inode {key} (not selected)"
        full_by_label[label] = full_by_label.get(label, 0) + count
    return full_by_label


def _reconcile_windows(plans: dict[str, dict[str, t.Any]], windows: dict[str, dict[str, t.Any]], invalid_log: dict[str, t.Any],
                       full_by_label: dict[str, int], suppressed: int,
                       captured: dict[str, dict[str, t.Any]]) -> dict[str, dict[str, t.Any]]:
    """:func:`reconcile` for each planned namespace with an active window, with the lines attributed to it, or its
    captured events where ``captured`` has them."""
    attribution = invalid_log.get("attribution") or {}
    by_namespace = attribution.get("by_namespace") or {}
    unattributed = (attribution.get("unattributed") or {}).get("count", 0)
    reconciliation = {}
    for label, plan in plans.items():
        window = windows.get(label) or {}
        if not window.get("active"):
            reconciliation[label] = {"counters": [], "findings": [{"code": "no_window", "text": "no active window here:"
                                                                   " nothing to compare (run enable first)"}]}
            continue
        if attribution:
            logged = (by_namespace.get(label) or {}).get("count", 0)
            others = unattributed
        else:  # without interfaces every line may be this namespace's
            logged, others = invalid_log.get("total", 0), 0
        reconciliation[label] = reconcile(window.get("stats_delta"), logged, plan, unattributed=others,
                                          lost_records=invalid_log.get("lost_records"),
                                          table_full=full_by_label.get(label, 0), ratelimit_suppressed=suppressed,
                                          capture=captured.get(label))
    return reconciliation


def diagnose(plans: dict[str, dict[str, t.Any]], windows: dict[str, dict[str, t.Any]], invalid_log: dict[str, t.Any],
             conntrack: dict[str, dict[str, t.Any]] | None = None,
             captured: dict[str, dict[str, t.Any]] | None = None) -> dict[str, t.Any]:
    """The report's diagnosis of one host: plan problems, counters reconciled with the log, table-full events.

    ``plans`` and ``conntrack`` are keyed by namespace label (the window ids: init, netns-NAME, path-HASH),
    ``windows`` is the window program's status per id, ``invalid_log`` the conntrack_invalid_log_facts summary
    read with the plans' interfaces, ``captured`` the namespaces captured through nfnetlink_log (``events``,
    ``events_lost``), whose evidence is the capture rather than the log.
    """
    conntrack = conntrack or {}
    attribution = invalid_log.get("attribution") or {}
    events = invalid_log.get("kernel_events") or {}
    table_full = events.get("table_full") or {}
    suppressed = (events.get("ratelimit_suppressed") or {}).get("count", 0)
    problems = [{"netns": label, "code": one["code"], "text": one["text"]}
                for label, plan in plans.items() for one in plan.get("problems") or []]
    full_by_label = _table_full_by_label(plans, table_full.get("by_netns") or {})
    reconciliation = _reconcile_windows(plans, windows, invalid_log, full_by_label, suppressed, captured or {})
    usage = {label: facts.get("usage_percent") for label, facts in conntrack.items() if isinstance(facts, dict)}
    return {
        "plan_problems": problems,
        "reconciliation": reconciliation,
        "findings": [dict(one, netns=label) for label, result in reconciliation.items() for one in result["findings"]
                     if one["code"] != "no_window"],
        "table_full": {
            "count": table_full.get("count", 0),
            "first": table_full.get("first"),
            "last": table_full.get("last"),
            "by_netns": full_by_label,
            "expect_full": (events.get("expect_full") or {}).get("count", 0),
            "ratelimit_suppressed": suppressed,
            "usage_percent": usage,
        },
        "attribution": attribution or None,
    }


def intended_changes(log_invalid: str | None, bind: bool, all_netns: bool) -> dict:
    """conntrack_plan_facts' options as build_plan's ``intended``: what a window would set."""
    intended = {}
    if log_invalid is not None:
        if not log_invalid.strip().isdigit() or not 0 <= int(log_invalid) <= 255:
            raise ConntrackModuleError(f"log_invalid must be a protocol number from 0 to 255, not {log_invalid!r}")
        intended["log_invalid"] = log_invalid.strip()
    if bind:
        intended["bind"] = True
    if all_netns:
        intended["all_netns"] = True
    return intended


def plan_from(probed: dict, intended: dict) -> dict:
    """The conntrack_plan fact: the plan, with the probe it was made from (without the interface list)."""
    plan = build_plan(probed, intended)
    plan["probe"] = {key: value for key, value in probed.items() if key != "interfaces"}
    return plan


__all__ = (
    "BLINDERS",
    "COUNTER_MEANINGS",
    "HIDES",
    "build_plan",
    "diagnose",
    "intended_changes",
    "interfaces",
    "notrack_rules",
    "parse_release",
    "plan_from",
    "probe",
    "protocol_of",
    "read_outside",
    "reconcile",
    "version_decides",
)
