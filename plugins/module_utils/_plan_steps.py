# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The steps of the plan: one pure function per troubleshooting step, over one namespace's probe.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

:func:`_plan.build_plan` runs the functions of :data:`STEPS` in order over a :class:`PlanInput`; each
returns the step entries it decides and records its problems on the input. The kernel behaviour the
steps rely on is cited in ``_plan.py``.
"""

from __future__ import annotations

import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._nf_log import NFNETLINK_LOG
from ansible_collections.netfilter.conntrack.plugins.module_utils._kernel_release import (
    AUTOLOAD_SINCE,
    TCP_DEBUG_GONE,
    UNCONFIRMED_GONE,
    parse_release,
    version_decides,
    version_note,
)

BLINDERS = ("nf_conntrack_tcp_be_liberal", "nf_conntrack_tcp_ignore_invalid_rst", "nf_conntrack_tcp_loose")
FAMILY_NAMES = {2: "ipv4", 10: "ipv6"}
SYSLOG_LOGGERS = {2: "nf_log_ipv4", 10: "nf_log_ipv6"}
HIDES = {
    "nf_conntrack_tcp_be_liberal": (
        "out-of-window TCP packets (sequence or acknowledgement outside the window) are accepted as valid: they"
        " are neither counted as invalid nor logged (kube-proxy --conntrack-tcp-be-liberal and some tuning"
        " profiles set it)"),
    "nf_conntrack_tcp_ignore_invalid_rst": (
        "RST packets outside the window are accepted without being marked invalid, so they are not logged"),
    "nf_conntrack_tcp_loose": (
        "TCP packets of a connection conntrack has not seen start (no SYN) create a new entry instead of being"
        " invalid: mid-stream pickups are not logged"),
}


def protocol_of(value: str | None) -> str | None:
    """The protocol nf_conntrack_log_invalid names: None (off or absent), 'all', or a name or number."""
    if value is None:
        return None
    number = value.strip()
    if number in ("", "0"):
        return None
    if number == "255":
        return "all"
    names = {"1": "icmp", "6": "tcp", "17": "udp", "33": "dccp", "47": "gre", "58": "icmpv6", "132": "sctp", "136": "udplite"}
    return names.get(number, number)


def find_blinders(probe: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """The probed settings and rules that make packets invisible to the invalid log."""
    blinders = []
    for key in BLINDERS:
        value = (probe.get("sysctls") or {}).get(key)
        if value is not None and value.strip() not in ("", "0"):
            blinders.append({"setting": f"net.netfilter.{key}", "value": value.strip(), "hides": HIDES[key]})
    notrack = probe.get("notrack_rules")
    if notrack:
        blinders.append({"setting": "notrack / ct state untracked rules", "value": str(len(notrack)),
                         "hides": "packets matching them are never tracked: no entry, no invalid verdict, no log line",
                         "rules": notrack[:10]})
    return blinders


class PlanInput:
    """One namespace's probe with what enable is about to set, as the steps read it; it collects their problems.

    ``intended`` overrides probed values with what enable is about to set (check mode): ``log_invalid``
    (the sysctl's number as text), ``bind`` (True: the syslog loggers of ``families`` will be bound),
    ``all_netns`` (True: nf_log_all_netns will be 1).
    """

    def __init__(self, probe: dict[str, t.Any], intended: dict[str, t.Any]) -> None:
        self.probe = probe
        self.intended = intended
        self.kernel = parse_release(probe.get("release") or "")
        self.families = probe.get("families") or [2, 10]
        self.log_invalid = intended.get("log_invalid", probe.get("log_invalid"))
        self.protocol = protocol_of(self.log_invalid)
        self.blinders = find_blinders(probe)
        self.problems: list[dict[str, str]] = []

    def problem(self, code: str, text: str) -> None:
        self.problems.append({"code": code, "text": text})


StepEntries = t.Dict[str, t.Dict[str, t.Any]]


def log_invalid_step(plan: PlanInput) -> StepEntries:
    """1. nf_conntrack_log_invalid: on for which protocol, or why nothing is logged."""
    log_invalid, protocol = plan.log_invalid, plan.protocol
    if log_invalid is None:
        plan.problem("conntrack_not_loaded", "nf_conntrack is not loaded here: nothing is tracked, counted or logged")
        return {"log_invalid": {"effective": False, "decided_by": "probe", "value": None, "protocol": None,
                                "why": "nf_conntrack is not loaded in this namespace (no nf_conntrack_log_invalid)"}}
    if protocol is None:
        plan.problem("log_invalid_off", "nf_conntrack_log_invalid is 0: invalid packets are counted, not logged")
        return {"log_invalid": {"effective": False, "decided_by": "probe", "value": log_invalid, "protocol": None,
                                "why": "nf_conntrack_log_invalid is 0: invalid packets are counted, never logged"}}
    scope = "every protocol" if protocol == "all" else f"{protocol} only; invalid packets of other protocols are counted, not logged"
    return {"log_invalid": {"effective": True, "decided_by": "probe", "value": log_invalid, "protocol": protocol,
                            "why": f"on for {scope}"}}


def _logger_bindings(plan: PlanInput) -> tuple[dict[int, t.Any] | None, dict[str, str | None], dict[str, list[str]], list[str]]:
    """``(nf_log by family number, bound, registered, unbound)``, with the loggers enable is about to bind."""
    nf_log = plan.probe.get("nf_log")
    if nf_log is not None:  # keys are numbers, or strings once the probe went through JSON
        nf_log = {int(family): entry for family, entry in nf_log.items()}
    bound: dict[str, str | None] = {}
    registered: dict[str, list[str]] = {}
    unbound = []
    for family in plan.families:
        name = FAMILY_NAMES.get(family, str(family))
        entry = (nf_log or {}).get(family)
        now_bound = entry["bound"] if entry else None
        if plan.intended.get("bind") and entry and SYSLOG_LOGGERS.get(family) in entry["registered"]:
            now_bound = SYSLOG_LOGGERS[family]
        bound[name] = now_bound
        registered[name] = list(entry["registered"]) if entry else []
        if now_bound in (None, "NONE"):
            unbound.append(name)
    return nf_log, bound, registered, unbound


def _autoload(plan: PlanInput, nf_log: dict[int, t.Any] | None) -> dict[str, t.Any]:
    """Whether setting nf_conntrack_log_invalid loads and binds nf_log_syslog (6.17 on) where nothing is registered."""
    kernel = plan.kernel
    autoload, autoload_by = version_decides(kernel, AUTOLOAD_SINCE)
    if any(SYSLOG_LOGGERS.get(family) in ((nf_log or {}).get(family) or {"registered": ()})["registered"] for family in plan.families):
        return {"applies": False, "decided_by": "probe",
                "why": "a kernel-log logger is already registered (built in or loaded): nothing to load"}
    return {"applies": autoload, "decided_by": autoload_by,
            "why": ("setting nf_conntrack_log_invalid loads nf_log_syslog, which binds itself where no logger is"
                    " bound; " if autoload else "setting nf_conntrack_log_invalid does not load a logger; "
                    if autoload is False else "")
            + version_note(kernel, AUTOLOAD_SINCE, "setting nf_conntrack_log_invalid loads nf_log_syslog")}


def logger_step(plan: PlanInput) -> StepEntries:
    """2. The logger: bound, registered, loaded by log_invalid itself."""
    nf_log, bound, registered, unbound = _logger_bindings(plan)
    autoload_step = _autoload(plan, nf_log)
    if nf_log is None:
        logger_effective, why = False, "/proc/net/netfilter/nf_log is missing: no netfilter logging support is loaded"
        if autoload_step["applies"]:
            logger_effective, why = None, why + "; setting nf_conntrack_log_invalid should load nf_log_syslog"
    elif not unbound:
        logger_effective, why = True, "bound for " + ", ".join(f"{k} ({v})" for k, v in bound.items())
    elif len(unbound) < len(bound):
        logger_effective, why = True, (f"bound for {', '.join(k for k in bound if k not in unbound)} only: lines of"
                                       f" {', '.join(unbound)} packets are not logged")
    else:
        logger_effective, why = False, "no logger is bound (" + ", ".join(f"nf_log.{f}=NONE" for f in plan.families) + ")"
        if not any(registered.values()):
            why += "; none is registered either"
    if plan.protocol is not None and logger_effective is False:
        plan.problem("no_logger_bound", f"log_invalid on but nothing can be logged: no logger bound ({why})")
    elif plan.protocol is not None and unbound and logger_effective:
        plan.problem("logger_partly_bound", f"no logger bound for {', '.join(unbound)}: those packets are counted, not logged")
    return {"logger": {"effective": logger_effective, "decided_by": "probe", "bound": bound, "registered": registered,
                       "autoload": autoload_step, "why": why}}


def all_netns_step(plan: PlanInput) -> StepEntries:
    """3. nf_log_all_netns: needed outside the initial namespace."""
    all_netns = "1" if plan.intended.get("all_netns") else plan.probe.get("all_netns")
    if plan.probe.get("initial"):
        return {"all_netns": {"needed": False, "value": all_netns, "effective": True, "decided_by": "probe",
                              "why": "this is the initial namespace: its lines always reach the kernel log"}}
    bound = [((plan.probe.get("nf_log") or {}).get(family) or (plan.probe.get("nf_log") or {}).get(str(family)) or {}).get("bound")
             for family in plan.families]
    if bound and all(name == NFNETLINK_LOG for name in bound) and not plan.intended.get("bind"):
        return {"all_netns": {"needed": False, "value": all_netns, "effective": True, "decided_by": "probe",
                              "why": "the loggers are bound to nfnetlink_log: its events go to a netlink socket in this"
                                     " namespace, and nf_log_all_netns only gates the kernel log"}}
    if all_netns is None:
        return {"all_netns": {"needed": True, "value": None, "effective": None, "decided_by": "unknown",
                              "why": "a child namespace, and nf_log_all_netns of the initial namespace could not be read"}}
    on = all_netns.strip() == "1"
    if not on and plan.protocol is not None:
        plan.problem("child_without_all_netns", "log_invalid on in a child namespace but net.netfilter.nf_log_all_netns=0"
                                                " on the host: its lines never reach the kernel log")
    return {"all_netns": {"needed": True, "value": all_netns, "effective": on, "decided_by": "probe",
                          "why": ("a child namespace: nf_log_all_netns=1 lets its lines reach the kernel log" if on else
                                  "a child namespace and nf_log_all_netns=0 on the host: nf_log_syslog drops every line"
                                  " it logs (nf_log_allowed()), whatever log_invalid and the logger say")}}


def dynamic_debug_step(plan: PlanInput) -> StepEntries:
    """4. Dynamic debug: how many pr_debug sites conntrack has, and whether the TCP tracker's show anything."""
    kernel = plan.kernel
    dyndbg = plan.probe.get("dynamic_debug") or {}
    tcp_gone, tcp_by = version_decides(kernel, TCP_DEBUG_GONE)
    if dyndbg.get("present") is False:
        return {"dynamic_debug": {"effective": False, "decided_by": "probe", "conntrack_sites": 0, "tcp_sites": 0,
                                  "why": dyndbg.get("reason") or "this kernel has no dynamic debug"}}
    if dyndbg.get("conntrack_sites") is None:
        return {"dynamic_debug": {"effective": None, "decided_by": tcp_by, "conntrack_sites": None, "tcp_sites": None,
                                  "why": (dyndbg.get("reason") or "the control file could not be read") + "; "
                                  + ("from 5.19 the TCP tracker has next to no pr_debug sites" if tcp_gone else
                                     version_note(kernel, TCP_DEBUG_GONE, "the TCP tracker kept its pr_debug sites"))}}
    if not dyndbg["conntrack_sites"] and plan.log_invalid is None:
        # A modular kernel lists a module's sites only once it is loaded (enable loads nf_conntrack).
        return {"dynamic_debug": {"effective": None, "decided_by": "probe", "conntrack_sites": 0, "tcp_sites": 0,
                                  "why": "dynamic debug is present but nf_conntrack is not loaded: its pr_debug sites appear"
                                         " once it is"}}
    sites, tcp_sites = dyndbg["conntrack_sites"], dyndbg.get("tcp_sites") or 0
    return {"dynamic_debug": {"effective": tcp_sites > 0, "decided_by": "probe", "conntrack_sites": sites,
                              "tcp_sites": tcp_sites,
                              "why": f"{sites} conntrack pr_debug site(s), {tcp_sites} in nf_conntrack_proto_tcp.c"
                                     + ("" if tcp_sites else ": switching the TCP tracker's sites on shows nothing")}}


def lists_steps(plan: PlanInput) -> StepEntries:
    """5. The unconfirmed and dying lists: what a dump of each can show on this kernel."""
    kernel = plan.kernel
    gone, gone_by = version_decides(kernel, UNCONFIRMED_GONE)
    probed = plan.probe.get("unconfirmed_dumpable")
    if probed is not None:
        unconfirmed = {"dumpable": probed, "decided_by": "probe",
                       "why": "the dump answered" if probed else "the dump always answers empty"}
    else:
        if gone:
            meaning = "the kernel no longer keeps the list (dump answers empty); entries are still counted; "
        elif gone is False:
            meaning = "dumpable: entries not yet confirmed (held by NFQUEUE or in flight); "
        else:
            meaning = ""
        unconfirmed = {"dumpable": None if gone is None else not gone, "decided_by": gone_by,
                       "why": meaning + version_note(kernel, UNCONFIRMED_GONE, "the unconfirmed list is gone")}
    dying = {"decided_by": gone_by, "meaning": (
        "entries whose destroy event waits for redelivery to a ctnetlink listener: any entry points at an event"
        " listener that does not read its socket" if gone else
        "entries being destroyed; they normally leave within moments" if gone is False else
        "depends on backports: before 5.19 entries being destroyed, from 5.19 entries waiting for event redelivery"),
        "why": version_note(kernel, UNCONFIRMED_GONE, "the dying list has its 5.19 meaning")}
    return {"unconfirmed_list": unconfirmed, "dying_list": dying}


def blinders_step(plan: PlanInput) -> StepEntries:
    """6. Settings that blind the invalid log."""
    for one in plan.blinders:
        code = one["setting"].rsplit(".", 1)[-1].replace("nf_conntrack_tcp_", "") if "." in one["setting"] else "notrack"
        if code != "loose":  # loose=1 is the kernel default: listed as a blinder, not raised as a problem
            plan.problem(code, f"{one['setting']}={one['value']}: {one['hides']}")
    return {"blinders": {"found": [one["setting"] for one in plan.blinders], "decided_by": "probe",
                         "why": "settings that make packets invisible to the invalid log" if plan.blinders else "none set"}}


# The plan's steps in the order they are reported: each reads the probe, none depends on another's result.
STEPS: tuple[t.Callable[[PlanInput], StepEntries], ...] = (
    log_invalid_step,
    logger_step,
    all_netns_step,
    dynamic_debug_step,
    lists_steps,
    blinders_step,
)


__all__ = (
    "BLINDERS",
    "FAMILY_NAMES",
    "HIDES",
    "STEPS",
    "SYSLOG_LOGGERS",
    "PlanInput",
    "all_netns_step",
    "blinders_step",
    "dynamic_debug_step",
    "find_blinders",
    "lists_steps",
    "log_invalid_step",
    "logger_step",
    "protocol_of",
)
