# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Say which of the troubleshooting steps do anything on this host, and why nothing was logged.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

Two pure functions hold the logic, so that recorded probes of any kernel can be tested:

- :func:`build_plan` takes what was probed in one network namespace (:func:`probe` reads it on the host)
  and says, per step, whether it is effective and what decided that: ``probe`` (read from the kernel),
  ``version`` (only the kernel version could tell) or ``unknown`` (a distribution kernel whose backports
  make the version number meaningless for that question).
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

import fcntl
import os
import re
import socket
import struct
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._dynamic_debug import locate_control_here, read_control
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._nf_log import read_nf_log

SIOCGIFHWADDR = 0x8927
BLINDERS = ("nf_conntrack_tcp_be_liberal", "nf_conntrack_tcp_ignore_invalid_rst", "nf_conntrack_tcp_loose")
FAMILY_NAMES = {2: "ipv4", 10: "ipv6"}
SYSLOG_LOGGERS = {2: "nf_log_ipv4", 10: "nf_log_ipv6"}
AUTOLOAD_SINCE = (6, 17)
UNCONFIRMED_GONE = (5, 19)
TCP_DEBUG_GONE = (5, 19)
TABLE_FULL_NETNS_SINCE = (6, 17)

# Kernels whose vendor backports netfilter changes: the upstream version number does not decide for them.
_BACKPORT_RE = (
    (re.compile(r"\.el(\d+)"), "Enterprise Linux {0} (RHEL, CentOS Stream, Rocky, Alma, Oracle)"),
    (re.compile(r"\.uek\b|uek"), "Oracle UEK"),
    (re.compile(r"\.amzn(\d*)"), "Amazon Linux"),
    (re.compile(r"-default$|\.g[0-9a-f]{7}-default"), "SUSE"),
)
_RELEASE_RE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")
_NFT_NOTRACK_RE = re.compile(r"\bnotrack\b|\bct state\b[^;\n]*\buntracked\b")
_XT_NOTRACK_RE = re.compile(r"-j NOTRACK\b|-j CT --notrack\b")

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


def parse_release(release: str) -> dict[str, t.Any]:
    """The kernel release as the plan uses it: version, and whether a vendor's backports blur it."""
    match = _RELEASE_RE.match(release or "")
    version = (int(match.group(1)), int(match.group(2))) if match else None
    vendor = None
    for pattern, name in _BACKPORT_RE:
        found = pattern.search(release or "")
        if found:
            vendor = name.format(*found.groups()) if found.groups() else name
            break
    return {
        "release": release,
        "version": f"{version[0]}.{version[1]}" if version else None,
        "version_tuple": list(version) if version else None,
        "backports": vendor is not None,
        "vendor": vendor,
    }


def _version_tuple(kernel: dict[str, t.Any]) -> list[int] | None:
    if kernel.get("version_tuple"):
        return kernel["version_tuple"]
    parsed = parse_release(kernel.get("release") or "")
    return parsed["version_tuple"]


def version_decides(kernel: dict[str, t.Any], since: tuple[int, int]) -> tuple[bool | None, str]:
    """Whether a change of ``since`` is in this kernel by its version: ``(answer, decided_by)``.

    A vendor kernel with backports (EL9's 5.14 carries 6.x netfilter code) gets ``(None, "unknown")``:
    the version number would claim what it cannot know.
    """
    if kernel.get("backports") or not kernel.get("version_tuple"):
        return None, "unknown"
    return tuple(kernel["version_tuple"]) >= since, "version"


def _version_note(kernel: dict[str, t.Any], since: tuple[int, int], what: str) -> str:
    if kernel.get("backports"):
        return (f"{kernel['vendor']} kernel {kernel['release']}: its vendor backports netfilter changes, so version"
                f" {kernel['version']} does not tell whether {what} (upstream: since {since[0]}.{since[1]})")
    if not kernel.get("version_tuple"):
        return f"kernel release {kernel.get('release')!r} is not a version number: cannot tell whether {what}"
    return f"decided by the kernel version {kernel['version']} alone (upstream {since[0]}.{since[1]})"


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


def build_plan(probe: dict[str, t.Any], intended: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
    """The plan of one namespace from its probe (see :func:`probe`); pure.

    ``intended`` overrides probed values with what enable is about to set (check mode): ``log_invalid``
    (the sysctl's number as text), ``bind`` (True: the syslog loggers of ``families`` will be bound),
    ``all_netns`` (True: nf_log_all_netns will be 1).
    """
    intended = intended or {}
    kernel = parse_release(probe.get("release") or "")
    families = probe.get("families") or [2, 10]
    steps: dict[str, dict[str, t.Any]] = {}
    problems: list[dict[str, str]] = []

    def problem(code: str, text: str) -> None:
        problems.append({"code": code, "text": text})

    # 1. nf_conntrack_log_invalid
    log_invalid = intended.get("log_invalid", probe.get("log_invalid"))
    protocol = protocol_of(log_invalid)
    if log_invalid is None:
        steps["log_invalid"] = {"effective": False, "decided_by": "probe", "value": None, "protocol": None,
                                "why": "nf_conntrack is not loaded in this namespace (no nf_conntrack_log_invalid)"}
        problem("conntrack_not_loaded", "nf_conntrack is not loaded here: nothing is tracked, counted or logged")
    elif protocol is None:
        steps["log_invalid"] = {"effective": False, "decided_by": "probe", "value": log_invalid, "protocol": None,
                                "why": "nf_conntrack_log_invalid is 0: invalid packets are counted, never logged"}
        problem("log_invalid_off", "nf_conntrack_log_invalid is 0: invalid packets are counted, not logged")
    else:
        scope = "every protocol" if protocol == "all" else f"{protocol} only; invalid packets of other protocols are counted, not logged"
        steps["log_invalid"] = {"effective": True, "decided_by": "probe", "value": log_invalid, "protocol": protocol,
                                "why": f"on for {scope}"}

    # 2. The logger: bound, registered, loaded by log_invalid itself.
    nf_log = probe.get("nf_log")
    if nf_log is not None:  # keys are numbers, or strings once the probe went through JSON
        nf_log = {int(family): entry for family, entry in nf_log.items()}
    bound: dict[str, str | None] = {}
    registered: dict[str, list[str]] = {}
    unbound = []
    for family in families:
        name = FAMILY_NAMES.get(family, str(family))
        entry = (nf_log or {}).get(family)
        now_bound = entry["bound"] if entry else None
        if intended.get("bind") and entry and SYSLOG_LOGGERS.get(family) in entry["registered"]:
            now_bound = SYSLOG_LOGGERS[family]
        bound[name] = now_bound
        registered[name] = list(entry["registered"]) if entry else []
        if now_bound in (None, "NONE"):
            unbound.append(name)
    any_registered = any(registered.values())
    autoload, autoload_by = version_decides(kernel, AUTOLOAD_SINCE)
    if any(SYSLOG_LOGGERS.get(family) in ((nf_log or {}).get(family) or {"registered": ()})["registered"] for family in families):
        autoload_step = {"applies": False, "decided_by": "probe",
                         "why": "a kernel-log logger is already registered (built in or loaded): nothing to load"}
    else:
        autoload_step = {"applies": autoload, "decided_by": autoload_by,
                         "why": ("setting nf_conntrack_log_invalid loads nf_log_syslog, which binds itself where no logger is"
                                 " bound; " if autoload else "setting nf_conntrack_log_invalid does not load a logger; "
                                 if autoload is False else "") + _version_note(kernel, AUTOLOAD_SINCE, "setting"
                                                                               " nf_conntrack_log_invalid loads nf_log_syslog")}
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
        logger_effective, why = False, "no logger is bound (" + ", ".join(f"nf_log.{f}=NONE" for f in families) + ")"
        if not any_registered:
            why += "; none is registered either"
    steps["logger"] = {"effective": logger_effective, "decided_by": "probe", "bound": bound, "registered": registered,
                       "autoload": autoload_step, "why": why}
    if protocol is not None and logger_effective is False:
        problem("no_logger_bound", f"log_invalid on but nothing can be logged: no logger bound ({why})")
    elif protocol is not None and unbound and logger_effective:
        problem("logger_partly_bound", f"no logger bound for {', '.join(unbound)}: those packets are counted, not logged")

    # 3. nf_log_all_netns: needed outside the initial namespace.
    initial = probe.get("initial")
    all_netns = "1" if intended.get("all_netns") else probe.get("all_netns")
    if initial:
        steps["all_netns"] = {"needed": False, "value": all_netns, "effective": True, "decided_by": "probe",
                              "why": "this is the initial namespace: its lines always reach the kernel log"}
    elif all_netns is None:
        steps["all_netns"] = {"needed": True, "value": None, "effective": None, "decided_by": "unknown",
                              "why": "a child namespace, and nf_log_all_netns of the initial namespace could not be read"}
    else:
        on = all_netns.strip() == "1"
        steps["all_netns"] = {"needed": True, "value": all_netns, "effective": on, "decided_by": "probe",
                              "why": ("a child namespace: nf_log_all_netns=1 lets its lines reach the kernel log" if on else
                                      "a child namespace and nf_log_all_netns=0 on the host: nf_log_syslog drops every line"
                                      " it logs (nf_log_allowed()), whatever log_invalid and the logger say")}
        if not on and protocol is not None:
            problem("child_without_all_netns", "log_invalid on in a child namespace but net.netfilter.nf_log_all_netns=0"
                                               " on the host: its lines never reach the kernel log")

    # 4. Dynamic debug.
    dyndbg = probe.get("dynamic_debug") or {}
    tcp_gone, tcp_by = version_decides(kernel, TCP_DEBUG_GONE)
    if dyndbg.get("present") is False:
        steps["dynamic_debug"] = {"effective": False, "decided_by": "probe", "conntrack_sites": 0, "tcp_sites": 0,
                                  "why": dyndbg.get("reason") or "this kernel has no dynamic debug"}
    elif dyndbg.get("conntrack_sites") is None:
        steps["dynamic_debug"] = {"effective": None, "decided_by": tcp_by, "conntrack_sites": None, "tcp_sites": None,
                                  "why": (dyndbg.get("reason") or "the control file could not be read") + "; "
                                  + ("from 5.19 the TCP tracker has next to no pr_debug sites" if tcp_gone else
                                     _version_note(kernel, TCP_DEBUG_GONE, "the TCP tracker kept its pr_debug sites"))}
    elif not dyndbg["conntrack_sites"] and log_invalid is None:
        # A modular kernel lists a module's sites only once it is loaded (enable loads nf_conntrack).
        steps["dynamic_debug"] = {"effective": None, "decided_by": "probe", "conntrack_sites": 0, "tcp_sites": 0,
                                  "why": "dynamic debug is present but nf_conntrack is not loaded: its pr_debug sites appear"
                                         " once it is"}
    else:
        sites, tcp_sites = dyndbg["conntrack_sites"], dyndbg.get("tcp_sites") or 0
        steps["dynamic_debug"] = {"effective": tcp_sites > 0, "decided_by": "probe", "conntrack_sites": sites,
                                  "tcp_sites": tcp_sites,
                                  "why": f"{sites} conntrack pr_debug site(s), {tcp_sites} in nf_conntrack_proto_tcp.c"
                                         + ("" if tcp_sites else ": switching the TCP tracker's sites on shows nothing")}

    # 5. The unconfirmed and dying lists.
    gone, gone_by = version_decides(kernel, UNCONFIRMED_GONE)
    probed = probe.get("unconfirmed_dumpable")
    if probed is not None:
        steps["unconfirmed_list"] = {"dumpable": probed, "decided_by": "probe",
                                     "why": "the dump answered" if probed else "the dump always answers empty"}
    else:
        if gone:
            meaning = "the kernel no longer keeps the list (dump answers empty); entries are still counted; "
        elif gone is False:
            meaning = "dumpable: entries not yet confirmed (held by NFQUEUE or in flight); "
        else:
            meaning = ""
        steps["unconfirmed_list"] = {"dumpable": None if gone is None else not gone, "decided_by": gone_by,
                                     "why": meaning + _version_note(kernel, UNCONFIRMED_GONE, "the unconfirmed list is gone")}
    steps["dying_list"] = {"decided_by": gone_by, "meaning": (
        "entries whose destroy event waits for redelivery to a ctnetlink listener: any entry points at an event"
        " listener that does not read its socket" if gone else
        "entries being destroyed; they normally leave within moments" if gone is False else
        "depends on backports: before 5.19 entries being destroyed, from 5.19 entries waiting for event redelivery"),
        "why": _version_note(kernel, UNCONFIRMED_GONE, "the dying list has its 5.19 meaning")}

    # 6. Settings that blind the invalid log.
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
    steps["blinders"] = {"found": [one["setting"] for one in blinders], "decided_by": "probe",
                         "why": "settings that make packets invisible to the invalid log" if blinders else "none set"}
    for one in blinders:
        code = one["setting"].rsplit(".", 1)[-1].replace("nf_conntrack_tcp_", "") if "." in one["setting"] else "notrack"
        if code != "loose":  # loose=1 is the kernel default: listed as a blinder, not raised as a problem
            problem(code, f"{one['setting']}={one['value']}: {one['hides']}")

    return {
        "kernel": {k: v for k, v in kernel.items() if k != "version_tuple"},
        "netns": probe.get("netns"),
        "initial_namespace": initial,
        "netns_inum": probe.get("inum"),
        "steps": steps,
        "blinders": blinders,
        "problems": problems,
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


def reconcile(delta: dict[str, int] | None, logged: int | None, plan: dict[str, t.Any] | None,
              unattributed: int = 0, lost_records: int | None = None, table_full: int = 0,
              ratelimit_suppressed: int = 0) -> dict[str, t.Any]:
    """Compare one namespace's statistics delta with the invalid-packet lines attributed to it; pure.

    ``logged`` is the number of lines attributed to the namespace (None when attribution was impossible);
    ``unattributed`` the lines no selected namespace owns, which may belong to it.
    """
    delta = {k: v for k, v in (delta or {}).items() if isinstance(v, int)}
    steps = (plan or {}).get("steps") or {}
    findings: list[dict[str, t.Any]] = []
    explained = [{"counter": key, "delta": value, "text": _counter_text(key, value, delta)}
                 for key, value in sorted(delta.items()) if value > 0 and key in COUNTER_MEANINGS]
    invalid = delta.get("invalid", 0)
    seen = logged or 0

    def causes() -> list[dict[str, str]]:
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

    if invalid > seen:
        reasons = causes()
        if not reasons:
            reasons.append({"code": "unexplained", "text": "no setting explains it: some invalid verdicts are not logged by"
                                                           " design (for example a packet conntrack cannot parse at all)"})
        verb = "no line was logged" if not seen else f"only {seen} line(s) were logged"
        findings.append({"code": "invalid_not_logged", "counted": invalid, "logged": seen,
                         "text": f"invalid rose by {invalid} but {verb}: " + "; ".join(r["text"] for r in reasons),
                         "causes": [r["code"] for r in reasons],
                         "rate_limit": "does not apply: nf_log_syslog prints every invalid-packet line (no net_ratelimit)"})
    for one in (plan or {}).get("blinders") or []:
        if one["setting"].endswith("_loose"):
            continue  # the kernel default: listed in the plan, not repeated for every namespace
        findings.append({"code": "blinded", "setting": one["setting"],
                         "text": f"{one['setting']}={one['value']}: {one['hides']}. They cannot show up in this comparison."})
    if delta.get("drop") and table_full == 0 and (delta.get("early_drop") or 0) == 0:
        pass  # drops without a full table: helpers, or allocation failures; explained above
    if table_full and ratelimit_suppressed:
        findings.append({"code": "table_full_rate_limited",
                         "text": f"{table_full} table-full line(s) logged while net_ratelimit suppressed {ratelimit_suppressed}"
                                 " message(s): the drop counter, not the line count, says how many packets were lost"})
    return {"counters": explained, "findings": findings, "logged": logged, "counted_invalid": invalid}


def diagnose(plans: dict[str, dict[str, t.Any]], windows: dict[str, dict[str, t.Any]], invalid_log: dict[str, t.Any],
             conntrack: dict[str, dict[str, t.Any]] | None = None) -> dict[str, t.Any]:
    """The report's diagnosis of one host: plan problems, counters reconciled with the log, table-full events.

    ``plans`` and ``conntrack`` are keyed by namespace label (the window ids: init, netns-NAME, path-HASH),
    ``windows`` is the window program's status per id, ``invalid_log`` the conntrack_invalid_log_facts summary
    read with the plans' interfaces.
    """
    conntrack = conntrack or {}
    attribution = invalid_log.get("attribution") or {}
    by_namespace = attribution.get("by_namespace") or {}
    unattributed = (attribution.get("unattributed") or {}).get("count", 0)
    events = invalid_log.get("kernel_events") or {}
    table_full = events.get("table_full") or {}
    suppressed = (events.get("ratelimit_suppressed") or {}).get("count", 0)

    problems = []
    for label, plan in plans.items():
        for one in plan.get("problems") or []:
            problems.append({"netns": label, "code": one["code"], "text": one["text"]})

    inums = {str(plan.get("netns_inum")): label for label, plan in plans.items() if plan.get("netns_inum") is not None}
    initial = [label for label, plan in plans.items() if plan.get("initial_namespace")]
    full_by_label: dict[str, int] = {}
    for key, count in (table_full.get("by_netns") or {}).items():
        if key in inums:
            label = inums[key]
        elif key.startswith("initial"):
            kernel = next(iter(plans.values()), {}).get("kernel") or {}
            names_netns, dummy = version_decides(dict(kernel, version_tuple=_version_tuple(kernel)), TABLE_FULL_NETNS_SINCE)
            if not names_netns:
                label = "a namespace the kernel does not name (it names them from 6.17)"
            else:
                label = initial[0] if initial else "initial namespace"
        else:
            label = f"netns inode {key} (not selected)"
        full_by_label[label] = full_by_label.get(label, 0) + count

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
                                          table_full=full_by_label.get(label, 0), ratelimit_suppressed=suppressed)

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


# ---------------------------------------------------------------------------------------- probing (host side)

def _hardware_address(sock: socket.socket, name: str) -> str | None:
    """The MAC address of an interface of the socket's namespace (SIOCGIFHWADDR); None when it has none."""
    try:
        raw = fcntl.ioctl(sock.fileno(), SIOCGIFHWADDR, struct.pack("256s", name.encode()[:15]))
    except OSError:
        return None
    return ":".join(f"{byte:02x}" for byte in raw[18:24])


def interfaces() -> list[dict[str, t.Any]]:
    """Name, ifindex and MAC address of every interface of the current network namespace.

    Read through a socket of this namespace, not /sys/class/net, which shows the namespace sysfs was mounted in.
    """
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for index, name in socket.if_nameindex():
            found.append({"name": name, "ifindex": index, "mac": _hardware_address(sock, name)})
    return found


def notrack_rules(run: t.Callable[[list[str]], tuple[int, str]], which: t.Callable[[str], str | None]) -> list[str] | None:
    """Rules that exempt packets from tracking (nft notrack / ct state untracked, iptables -j NOTRACK / CT --notrack).

    ``which`` finds a program, ``run`` runs an argv list and returns ``(rc, stdout)``. None when no tool answered.
    """
    rules: list[str] = []
    seen_tool = False
    for program, args, pattern in (("nft", ["list", "ruleset"], _NFT_NOTRACK_RE), ("iptables-save", ["-t", "raw"], _XT_NOTRACK_RE),
                                   ("ip6tables-save", ["-t", "raw"], _XT_NOTRACK_RE)):
        path = which(program)
        if not path:
            continue
        rc, out = run([path] + args)
        if rc != 0:
            continue
        seen_tool = True
        rules += [line.strip() for line in out.splitlines() if pattern.search(line)]
    return rules if seen_tool else None


SYSCTL = "/proc/sys/net/netfilter/"


def read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return None


def dynamic_debug() -> dict:
    path, reason = locate_control_here()
    if path is None:
        if reason == "no-dynamic-debug":
            return {"present": False, "reason": "this kernel has no dynamic debug (no control file)"}
        return {"present": None, "reason": "debugfs is not mounted, so the control file cannot be read (not mounted by a probe)"}
    try:
        sites = read_control(path)
    except ConntrackModuleError as exc:
        return {"present": True, "reason": exc.msg, "conntrack_sites": None}
    conntrack = [site for site in sites if site.module.startswith("nf_conntrack") or "nf_conntrack" in site.filename]
    return {"present": True, "control": path, "conntrack_sites": len(conntrack),
            "tcp_sites": sum(1 for site in conntrack if site.filename.endswith("nf_conntrack_proto_tcp.c"))}


def read_outside() -> tuple:
    """What probe needs from the caller's own namespace, read before it enters the one to plan for:
    nf_log_all_netns (it exists only in the initial namespace) and the caller's namespace inode."""
    return read(SYSCTL + "nf_log_all_netns"), os.stat("/proc/self/ns/net").st_ino


def probe(host, netns: str | None, outside: tuple, ruleset: bool = True) -> dict:
    """What build_plan needs, read inside the namespace the caller has entered; ``outside`` is read_outside()'s."""
    all_netns, host_inum = outside
    inum = os.stat("/proc/self/ns/net").st_ino
    initial = os.path.exists(SYSCTL + "nf_log_all_netns") if os.path.isdir(SYSCTL) else None
    if initial is None:
        initial = inum == host_inum and all_netns is not None
    try:
        nf_log = {family: {"bound": one.bound, "registered": list(one.registered)} for family, one in read_nf_log().items()}
    except ConntrackModuleError:
        nf_log = None

    def run(argv: list) -> tuple:
        rc, out, dummy = host.run(argv)
        return rc, out

    return {
        "release": os.uname().release,
        "netns": netns,
        "inum": inum,
        "initial": initial,
        "all_netns": all_netns,
        "log_invalid": read(SYSCTL + "nf_conntrack_log_invalid"),
        "nf_log": None if nf_log is None else {family: nf_log[family] for family in (2, 10) if family in nf_log},
        "families": [2, 10],
        "sysctls": {key: read(SYSCTL + key) for key in BLINDERS},
        "dynamic_debug": dynamic_debug(),
        "notrack_rules": notrack_rules(run, lambda name: host.which(name, ["/usr/sbin", "/sbin"])) if ruleset else None,
        "interfaces": interfaces(),
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
