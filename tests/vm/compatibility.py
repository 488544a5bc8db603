# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Turn the per-kernel results of tests/vm/matrix.sh into docs/compatibility.md.

usage: compatibility.py RESULTS_DIR [RESULTS_DIR...] [--output docs/compatibility.md]

RESULTS_DIR holds run.json (written by matrix.sh) and one directory per kernel label (5.10, 6.1, 6.12,
host) with meta.json, capabilities.json, role_cycle.json and invalid_log.txt. The playbooks only gather
evidence; every pass/fail verdict is decided here, from that evidence, so the table can be regenerated from a
results directory at any time. Exit status: 0 when every cell passed (or is n/a), 1 when one failed, 2 for
usage errors. Several results directories make one table of the columns of several runs (a kernel's column comes
from the first run that has it; each run gets its own run line), e.g. the guests' run and a host-only run made
later, when the host's init namespace was free.
"""
from __future__ import annotations

import argparse
import atexit
import functools
import json
import os
import re
import shutil
import sys
import tempfile

from compat_capture import VERDICT_CASES, all_netns_cell, capture_cell, capture_needs, verdict_cell

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KERNELS = ("5.10", "6.1", "6.12", "6.18", "host")
FAMILIES = (("ipv4", 2), ("ipv6", 10), ("arp", 3), ("bridge", 7), ("netdev", 5))
CORE_COUNTERS = ("found", "invalid", "insert", "insert_failed", "drop", "early_drop", "error", "search_restart")
LATER_COUNTERS = ("clash_resolve", "chaintoolong")
PEER4, PEER6 = "10.211.0.1", "fd00:211::1"
FIXTURES = os.path.join(REPO, "tests", "unit", "plugins", "module_utils", "fixtures", "invalid_log")
CONTROL_RE = re.compile(r'^(?P<file>\S+):(?P<line>\d+) \[(?P<module>[^\]]+)\](?P<func>\S+) =(?P<flags>\S+) "(?P<format>.*)"')
TARGETS = ("conntrack_log_invalid", "nf_log_backend", "dynamic_debug_site", "conntrack_lists_facts",
           "conntrack_invalid_log_facts", "role_debug_netns")

PASS, FAIL, NA = "pass", "FAIL", "n/a"


def load(path, default=None):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return default


def version_tuple(release):
    match = re.match(r"(\d+)\.(\d+)", release or "")
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def readback(text):
    values = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def unescape_format(text):
    return text.replace("\\012", "\n").replace("\\n", "\n").replace("\\t", "\t").replace('\\"', '"')


def control_sites(lines):
    sites = []
    for line in lines or []:
        match = CONTROL_RE.match(line)
        if match:
            site = match.groupdict()
            site["format"] = unescape_format(site["format"])
            sites.append(site)
    return sites


def short(text, limit=90):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_text(path):
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def load_json_text(text):
    try:
        return json.loads(text or "")
    except ValueError:
        return None


def autoload_state(text):
    """autoload.yml's readout: kernel-log loggers registered per family, loaded modules, the namespace's values."""
    state = {"loggers": {}, "modules": [], "netns": {}}
    section = None
    for line in (text or "").splitlines():
        if line.startswith("== "):
            section = line[3:].strip()
        elif section == "nf_log":
            match = re.match(r"\s*(\d+)\s+\S+\s+\((.*)\)", line)
            if match:
                state["loggers"][int(match.group(1))] = [n for n in match.group(2).split(",") if n.startswith("nf_log_")]
        elif section == "modules" and line.strip():
            state["modules"].append(line.strip())
        elif section == "netns" and "=" in line:
            key, value = line.split("=", 1)
            state["netns"][key.strip()] = value.strip()
    return state


def stat_total(text, column):
    """Sum one column of /proc/net/stat/nf_conntrack (a header line of names, one line of hex numbers per CPU)."""
    rows = [line.split() for line in (text or "").splitlines() if line.strip()]
    if not rows or column not in rows[0]:
        return None
    index = rows[0].index(column)
    return sum(int(row[index], 16) for row in rows[1:] if len(row) > index)


# ----------------------------------------------------------------------------- verdicts

class Kernel:
    def __init__(self, label, directory):
        self.label = label
        self.directory = directory
        # meta-targets.json and meta-probes.json (one per job of matrix.sh), merged.
        self.meta = {"phases": {}, "targets": {}}
        for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
            if name.startswith("meta") and name.endswith(".json"):
                part = load(os.path.join(directory, name), {}) or {}
                for key, value in part.items():
                    if isinstance(value, dict):
                        self.meta.setdefault(key, {}).update(value)
                    elif value:
                        self.meta[key] = value
        self.caps = load(os.path.join(directory, "capabilities.json"), {}) or {}
        self.cycle = load(os.path.join(directory, "role_cycle.json"), {}) or {}
        self.autoload = load(os.path.join(directory, "autoload.json"), {}) or {}
        self.full = load(os.path.join(directory, "table_full.json"), {}) or {}
        self.wrap = load(os.path.join(directory, "ring_wrap.json"), {}) or {}
        self.before = self.caps.get("probe_before") or {}
        self.after = self.caps.get("probe_after") or {}
        self.release = self.before.get("release") or self.meta.get("release") or ""
        self.dyndbg = bool(self.before.get("dynamic_debug_control"))
        self.present = bool(self.caps or self.cycle or self.autoload or self.meta.get("targets")
                            or os.path.exists(os.path.join(directory, "capture.json")))

    def missing(self, what):
        return FAIL, f"no evidence ({what} did not run or failed before writing it)"

    # -- modules
    def log_invalid(self):
        result = self.caps.get("log_invalid")
        if not result:
            return self.missing("capabilities.yml")
        if result.get("failed"):
            return FAIL, short(result.get("msg"))
        value = (self.after.get("sysctls") or {}).get("nf_conntrack_log_invalid")
        current = result.get("current") or {}
        loaded = result.get("loaded_module")
        note = f"tcp → {current.get('number')}, kernel reads {value}" + (f"; loaded {loaded}" if loaded else "")
        ok = current.get("name") == "tcp" and current.get("number") == 6 and value == "6"
        return (PASS if ok else FAIL), note

    def provider(self, family):
        """The module expected to provide nf_log_<family>, from what modprobe could load before the run."""
        state = self.before.get("module_state") or {}
        if state.get("nf_log_syslog") in ("available", "loaded"):
            return "nf_log_syslog"
        own = f"nf_log_{family}"
        if state.get(own) in ("available", "loaded"):
            return own
        return None  # built in

    def nf_log(self, family, number):
        result = self.caps.get("nf_log")
        if not result:
            return self.missing("capabilities.yml")
        if result.get("failed"):
            return FAIL, short(result.get("msg"))
        wanted = f"nf_log_{family}"
        current = (result.get("current") or {}).get(family)
        value = (self.after.get("sysctls") or {}).get(f"nf_log/{number}")
        loaded = result.get("loaded_modules") or []
        provider = self.provider(family)
        after_modules = self.after.get("modules_loaded") or []
        problems = []
        if (current or "").lower() != wanted or (value or "").lower() != wanted:
            problems.append(f"bound {current!r}, kernel reads {value!r}")
        if provider:
            if provider not in after_modules:
                problems.append(f"{provider} not loaded afterwards (loaded: {', '.join(after_modules) or 'none'})")
            by_call = provider in loaded or (provider == "nf_log_syslog" and any(m.startswith("nf_log_") for m in loaded))
            source = f"module {provider}, " + ("loaded by the module" if by_call else "already loaded")
        else:
            if loaded:
                problems.append(f"loaded {loaded} although the loggers are built in")
            source = "built in"
        note = f"{value}: {source}"
        return (FAIL, "; ".join(problems) + f" — {note}") if problems else (PASS, note)

    # -- dynamic debug
    def dd_control(self):
        control = self.before.get("dynamic_debug_control")
        if not self.caps:
            return self.missing("capabilities.yml")
        if not control:
            return PASS, "none (CONFIG_DYNAMIC_DEBUG off)"
        sites = control_sites(self.after.get("dynamic_debug_lines"))
        tcp = [s for s in sites if s["file"].endswith("nf_conntrack_proto_tcp.c")]
        return PASS, f"{control}; {len(sites)} netfilter sites, {len(tcp)} in nf_conntrack_proto_tcp.c"

    def dd_formats(self):
        formats = self.caps.get("dd_formats")
        if formats is None:
            return self.missing("capabilities.yml")
        if not self.dyndbg:
            bad = [f for f, r in formats.items() if not (r.get("failed") and r.get("reason") == "no-dynamic-debug")]
            if bad:
                return FAIL, f"expected the 'no dynamic debug' failure, got {short(formats[bad[0]])}"
            return PASS, "no dynamic debug: every query fails with reason no-dynamic-debug"
        sites = [s for s in control_sites(self.after.get("dynamic_debug_lines")) if s["module"] == "nf_conntrack"]
        found, problems = [], []
        for text, result in formats.items():
            truth = [s for s in sites if text in s["format"]]
            got = result.get("sites") or []
            if truth:
                if result.get("failed") or len(got) != len(truth):
                    problems.append(f"{text!r}: module {len(got)} site(s), control file {len(truth)}")
                else:
                    found.append(f"`{text.replace('nf_ct_tcp: ', '')[:16].strip()}…` line {','.join(str(s.get('lineno')) for s in got)}")
            else:
                msg = result.get("msg") or ""
                if not result.get("failed"):
                    problems.append(f"{text!r}: absent but the module did not fail")
                elif text not in msg or "searched" not in msg:
                    problems.append(f"{text!r}: failure does not name what was searched: {short(msg, 60)}")
        note = f"{len(found)}/{len(formats)} found ({'; '.join(found)})"
        if len(found) < len(formats):
            note += "; the module fails for the others, naming the format and what it searched"
        return (FAIL, "; ".join(problems)) if problems else (PASS, note)

    def dd_zero(self):
        result = self.caps.get("dd_zero")
        if result is None:
            return self.missing("capabilities.yml")
        kernel = self.caps.get("dd_kernel_zero") or ""
        if not self.dyndbg:
            ok = result.get("failed") and result.get("reason") == "no-dynamic-debug"
            return (PASS if ok else FAIL), "no dynamic debug: fails with reason no-dynamic-debug"
        missing = self.caps.get("dd_missing_format") or ""
        ok = result.get("failed") and not result.get("changed") and missing in (result.get("msg") or "")
        kernel_note = "kernel itself accepts it (write " + kernel.split()[0] + ")" if kernel.startswith("rc=") else ""
        note = f"module fails naming {missing!r}; {kernel_note}"
        return (PASS if ok else FAIL), (note if ok else f"{short(result)}")

    # -- lists and stats
    def facts(self):
        lists = self.caps.get("lists") or {}
        return (lists.get("ansible_facts") or {}).get("conntrack"), lists

    def unconfirmed(self):
        facts, raw = self.facts()
        if not facts:
            return self.missing("capabilities.yml") if not raw else (FAIL, short(raw.get("msg")))
        expected = version_tuple(self.release) < (5, 19)
        got = (facts.get("unconfirmed") or {}).get("dumpable")
        note = "dumpable" if got else "not dumpable (reported, not 0)"
        note += f" — expected {'dumpable' if expected else 'not dumpable'} on {self.release.split('-')[0]}"
        return (PASS if got == expected else FAIL), note

    def dying(self):
        facts, raw = self.facts()
        if not facts:
            return self.missing("capabilities.yml") if not raw else (FAIL, short(raw.get("msg")))
        dying = facts.get("dying") or {}
        ok = dying.get("dumpable") is True and isinstance(dying.get("listed"), int)
        return (PASS if ok else FAIL), f"dumpable, {dying.get('listed')} listed"

    def stats(self):
        facts, raw = self.facts()
        if not facts:
            return self.missing("capabilities.yml") if not raw else (FAIL, short(raw.get("msg")))
        stats = facts.get("stats") or {}
        total = stats.get("total") or {}
        missing_core = [c for c in CORE_COUNTERS if c not in total]
        absent_later = [c for c in LATER_COUNTERS if c not in total]
        unknown = [c for c in total if c.startswith("attr_")]
        note = f"{len(stats.get('per_cpu') or [])} CPU(s), {len(total)} counters"
        if absent_later:
            note += f"; kernel has no {', '.join(absent_later)}"
        if unknown:
            note += f"; unknown {', '.join(unknown)}"
        deltas = [w.get("stats_delta", {}).get("invalid") for w in (self.cycle.get("report") or {}).get("windows", {}).values()]
        deltas = [d for d in deltas if d is not None]
        if deltas:
            note += f"; invalid +{max(deltas)} in the role's window"
        return (FAIL if missing_core or not stats.get("per_cpu") else PASS), note

    # -- the plan (conntrack_plan_facts) against what the kernel did
    def plan(self):
        """The plan of the capability probes' scratch namespace, or a verdict saying why there is none."""
        plan = self.caps.get("plan")
        if not self.caps:
            return None, self.missing("capabilities.yml")
        if not plan or not plan.get("steps"):
            return None, (FAIL, "conntrack_plan_facts failed: " + short((plan or {}).get("msg")))
        return plan, None

    def plan_autoload(self):
        evidence = self.autoload
        if not evidence:
            return self.missing("autoload.yml")
        plan = evidence.get("plan") or {}
        if not plan.get("steps"):
            return FAIL, "conntrack_plan_facts failed: " + short(plan.get("msg"))
        step = plan["steps"]["logger"]["autoload"]
        # What the write changed: the state after it against the state just before it (nf_conntrack loaded).
        before, loaded_state = autoload_state(evidence.get("before")), autoload_state(evidence.get("load"))
        after = autoload_state(evidence.get("after"))
        write_rc = readback(evidence.get("after")).get("write_rc")
        if write_rc != "0":
            return FAIL, f"writing nf_conntrack_log_invalid in the namespace failed (rc {write_rc})"
        new_loggers = sorted({name for family in (2, 10) for name in after["loggers"].get(family, ())
                              if name not in loaded_state["loggers"].get(family, ())})
        new_modules = sorted(set(after["modules"]) - set(loaded_state["modules"]))
        loaded = bool(new_loggers or new_modules)
        registered_before = sorted({name for names in before["loggers"].values() for name in names})
        predicted = step.get("applies")
        note = (f"plan: {'loads nf_log_syslog' if predicted else 'loads nothing' if predicted is False else 'cannot tell'}"
                f" ({step.get('decided_by')}); kernel: ")
        note += (f"registered {', '.join(new_loggers) or 'no new logger'}, loaded {', '.join(new_modules) or 'no module'}"
                 if loaded else "registered and loaded nothing")
        binding = ", ".join(f"{k}={v}" for k, v in after["netns"].items() if k.startswith("nf_log"))
        note += f" ({binding})" if binding else ""
        note += ("; no kernel-log logger registered before (fresh kernel)" if not registered_before
                 else f"; already registered before: {', '.join(registered_before)}")
        if evidence.get("unload") and "nothing" not in evidence["unload"]:
            note += f"; {evidence['unload']}"
        return (PASS if predicted is not None and predicted == loaded else FAIL), note

    def plan_dyndbg(self):
        plan, verdict = self.plan()
        if verdict:
            return verdict
        step = plan["steps"]["dynamic_debug"]
        if not self.dyndbg:
            # The capability probes found no control file and dynamic_debug_site answered no-dynamic-debug.
            if step.get("effective") is False and not step.get("conntrack_sites"):
                return PASS, f"plan: no dynamic debug ({step.get('decided_by')}); the kernel has none"
            return FAIL, (f"plan cannot tell ({short(step.get('why'), 70)}) although the kernel has no dynamic debug"
                          " (no control file, dynamic_debug_site: no-dynamic-debug)")
        sites = [s for s in control_sites(self.after.get("dynamic_debug_lines"))
                 if s["module"].startswith("nf_conntrack") or "nf_conntrack" in s["file"]]
        tcp = [s for s in sites if s["file"].endswith("nf_conntrack_proto_tcp.c")]
        got = (step.get("conntrack_sites"), step.get("tcp_sites"))
        note = (f"plan {got[0]} conntrack site(s), {got[1]} in the TCP tracker ({step.get('decided_by')}); "
                f"control file {len(sites)}, {len(tcp)}")
        return (PASS if got == (len(sites), len(tcp)) and step.get("effective") == bool(tcp) else FAIL), note

    def plan_lists(self):
        plan, verdict = self.plan()
        if verdict:
            return verdict
        facts, raw = self.facts()
        if not facts:
            return self.missing("capabilities.yml") if not raw else (FAIL, short(raw.get("msg")))
        unconfirmed, dying = plan["steps"]["unconfirmed_list"], plan["steps"]["dying_list"]
        observed = (facts.get("unconfirmed") or {}).get("dumpable")
        # The plan's dying-list meaning against the note conntrack_lists_facts gives the list it dumped.
        plan_new = "redelivery" in (dying.get("meaning") or "").split(":")[0]
        lists_new = "redelivery" in ((facts.get("dying") or {}).get("note") or "")
        note = (f"unconfirmed: plan {'dumpable' if unconfirmed.get('dumpable') else 'not dumpable'}"
                f" ({unconfirmed.get('decided_by')}), lists module {'dumped it' if observed else 'not dumpable'}; "
                f"dying: plan and lists module both mean {'entries awaiting event redelivery' if plan_new else 'entries being destroyed'}"
                if plan_new == lists_new else "dying: the plan and the lists module disagree on its meaning")
        note += f" ({(facts.get('dying') or {}).get('listed')} listed)"
        return (PASS if unconfirmed.get("dumpable") == observed and plan_new == lists_new else FAIL), note

    def plan_be_liberal(self):
        plan, verdict = self.plan()
        if verdict:
            return verdict
        value = (self.after.get("sysctls") or {}).get("nf_conntrack_tcp_be_liberal")
        named = [b for b in plan.get("blinders") or [] if b.get("setting") == "net.netfilter.nf_conntrack_tcp_be_liberal"]
        problem = any(p.get("code") == "be_liberal" for p in plan.get("problems") or [])
        ok = value == "1" and len(named) == 1 and named[0].get("value") == "1" and problem
        return (PASS if ok else FAIL), (f"kernel reads {value}; plan names it as a blinder" + (" and a problem" if problem else " but raises no problem")
                                        if named else f"kernel reads {value}; the plan does not name it")

    def plan_all_netns(self):
        plan, verdict = self.plan()
        if verdict:
            return verdict
        step = plan["steps"]["all_netns"]
        seen = readback(self.caps.get("netns_log"))
        value, counted, logged = seen.get("all_netns"), int(seen.get("counted") or 0), int(seen.get("logged") or 0)
        if not counted:
            return FAIL, f"the invalid packets sent in the namespace were not counted ({short(self.caps.get('netns_sent'), 60)})"
        problem = any(p.get("code") == "child_without_all_netns" for p in plan.get("problems") or [])
        predicted = step.get("effective")
        note = (f"nf_log_all_netns={value}: plan says lines {'reach' if predicted else 'never reach'} the log"
                f"{' (problem raised)' if problem else ''}; kernel: `ct state invalid` matched {counted} time(s), {logged} line(s) logged")
        ok = step.get("needed") is True and step.get("value") == value and predicted == (logged > 0) and problem == (not predicted)
        return (PASS if ok else FAIL), note

    # -- kernel events
    def table_full(self):
        evidence = self.full
        if not evidence:
            return self.missing("table_full.yml")
        if evidence.get("skipped"):
            return NA, evidence["skipped"]
        setup, restore = readback(evidence.get("setup")), readback(evidence.get("restore"))
        inum = int(setup["inum"]) if (setup.get("inum") or "").isdigit() else None
        lines = [line for line in evidence.get("lines") or [] if "table full" in line]
        events = parse_events(lines)
        full = [e for e in events if e and e["kind"] == "table_full"]
        drops = stat_total(evidence.get("stat"), "drop")
        named = sorted({e["netns_inum"] for e in full if e["netns_inum"] is not None})
        problems = []
        if not lines:
            problems.append(f"no table-full line ({short(evidence.get('fill'), 60)})")
        if len(full) != len(lines):
            problems.append(f"{len(lines) - len(full)} of {len(lines)} line(s) not parsed as table full")
        if named and named != [inum]:
            problems.append(f"netns {named} parsed, the namespace is {inum}")
        if version_tuple(self.release) >= (6, 17) and full and not named:
            problems.append("6.17+ names the namespace, but no line did")
        if restore.get("max_after") != setup.get("max_before"):
            problems.append(f"nf_conntrack_max {setup.get('max_before')} → {restore.get('max_after')} (not restored)")
        note = (f"{len(full)}/{len(lines)} line(s) parsed as table full, "
                + (f"netns {named[0]}" if named else "no netns in the line") + f"; drop +{drops}; "
                + f"{short(evidence.get('fill'), 40)}; nf_conntrack_max lowered to {evidence.get('max')}, then restored to {restore.get('max_after')}")
        return (FAIL, "; ".join(problems) + " — " + note) if problems else (PASS, note)

    def ring_wrap(self):
        evidence = self.wrap
        if not evidence:
            return self.missing("ring_wrap.yml")
        if evidence.get("skipped"):
            return NA, evidence["skipped"]
        if evidence.get("error"):
            return FAIL, short(evidence["error"])
        report = evidence.get("report") or {}
        log = report.get("invalid_log") or {}
        deltas = [w.get("stats_delta", {}).get("invalid") for w in (report.get("windows") or {}).values()]
        invalid = max([d for d in deltas if isinstance(d, int)] or [0])
        sent = (load_json_text(evidence.get("sent")) or {}).get("sent", 0)
        causes = [c for f in (report.get("diagnosis") or {}).get("findings") or [] if f.get("code") == "invalid_not_logged"
                  for c in f.get("causes") or []]
        lost, wrapped, total = log.get("lost_records"), log.get("ring_buffer_wrapped"), log.get("total")
        note = (f"sent {sent}, invalid +{invalid}, collect read {total} line(s), lost_records {lost}, "
                f"ring_buffer_wrapped {wrapped}; diagnosis causes: {', '.join(causes) or 'none'}")
        ok = (wrapped is True and isinstance(lost, int) and lost > 0 and invalid >= sent > 0
              and isinstance(total, int) and total < invalid and "ring_buffer_wrapped" in causes)
        return (PASS if ok else FAIL), note

    # -- role
    def parsing(self):
        if not self.cycle:
            return self.missing("role_cycle.yml")
        report = self.cycle.get("report") or {}
        log = report.get("invalid_log")
        raw = self.cycle.get("raw_lines") or []
        if not log:
            return FAIL, f"collect produced no invalid_log ({short(self.cycle.get('cycle_error'))}); {len(raw)} raw line(s)"
        peers = log.get("by_peer") or {}
        got = (peers.get(PEER4, 0), peers.get(PEER6, 0))
        flags = log.get("by_reason", {}).get("invalid tcp flag combination", 0)
        prefix = sorted({line.split("] ", 1)[-1].split(":", 1)[0] for line in raw})
        note = (f"{len(raw)} lines ({', '.join(prefix)}), collect parsed {got[0]}+{got[1]} (v4+v6), "
                f"{flags}× invalid tcp flag combination, unparsed {log.get('unparsed', {}).get('count')}")
        ok = got == (4, 1) and flags >= 3
        ins = sorted({str(sample.get("in")) for sample in log.get("samples") or []})
        note += f"; IN= {', '.join(ins)}"
        if len(raw) != 5:
            note += " (raw lines not captured by the harness)"
        return (PASS if ok else FAIL), note

    def default_sites(self):
        """The role's default (an empty site list) leaves dynamic debug alone: its lines are not rate limited."""
        if not self.cycle:
            return self.missing("role_cycle.yml")
        window = readback((self.cycle.get("readback") or {}).get("window"))
        enabled = self.cycle.get("enabled_default") or {}
        if self.cycle.get("cycle_error") and not enabled:
            return FAIL, short(self.cycle["cycle_error"])
        if not self.dyndbg:
            return PASS, "no dynamic debug on this kernel; enable went on"
        count = int(window.get("dd_enabled") or 0)
        total = window.get("dd_total")
        if count:
            return FAIL, f"{count} nf_conntrack site(s) switched on although the default leaves dynamic debug alone"
        return PASS, f"none of the {total} nf_conntrack site(s) switched on by default (dynamic debug left alone)"

    def explicit_sites(self):
        if not self.cycle:
            return self.missing("role_cycle.yml")
        error = self.cycle.get("explicit_error")
        enabled = self.cycle.get("enabled_explicit") or {}
        sites = self.cycle.get("explicit_sites") or []
        if error:
            return FAIL, short(error)
        if not self.dyndbg:
            ok = enabled.get("dynamic_debug") is False and bool(sites)
            return (PASS if ok else FAIL), "skipped with the role's WARNING (no dynamic debug), enable went on"
        window = readback((self.cycle.get("readback") or {}).get("window2"))
        tcp = [s for s in control_sites(self.after.get("dynamic_debug_lines"))
               if s["module"] == "nf_conntrack" and s["file"].endswith("nf_conntrack_proto_tcp.c")]
        count = int(window.get("dd_enabled") or 0)
        note = f"{count} site(s) =p for file nf_conntrack_proto_tcp.c ({len(tcp)} exist)"
        matched = [step.get("matched") for step in enabled.get("steps") or [] if "matched" in step]
        warned = any("matches no site" in warning for warning in enabled.get("warnings") or [])
        warning_note = "warned about the entry matching nothing" if warned else "NO warning about the entry matching nothing"
        note += f"; sites matched per entry {matched}, {warning_note}"
        return (PASS if count >= len(tcp) > 0 and matched == [len(tcp), 0] and warned else FAIL), note

    def compare(self, stage):
        rb = self.cycle.get("readback") or {}
        before, now = readback(rb.get("before")), readback(rb.get(stage))
        if not before or not now:
            return None, "no readback"
        # A module that enable loaded stays loaded (revert restores values, it does not unload modules): the sites
        # it brought and the load itself are not differences; a key that did not exist before reads its default.
        diffs = [f"{k} {before.get(k)}→{now.get(k)}" for k in sorted(set(before) | set(now))
                 if k not in ("snapshots", "dd_total", "conntrack_loaded") and before.get(k) != now.get(k)
                 and not (k == "log_invalid" and "No such file" in (before.get(k) or "") and now.get(k) == "0")]
        if now.get("snapshots") not in ("0", None):
            diffs.append(f"{now.get('snapshots')} snapshot(s) left")
        shown = {k: ("absent (nf_conntrack not loaded before enable)" if "No such file" in before[k] else before[k])
                 for k in ("log_invalid", "all_netns", "dd_enabled") if k in before}
        return diffs, ", ".join(f"{k}={v}" for k, v in shown.items())

    def revert(self):
        if not self.cycle:
            return self.missing("role_cycle.yml")
        diffs, note = self.compare("reverted")
        if diffs is None:
            return FAIL, note
        restored = sum(len(ns.get("restored") or {}) for ns in ((self.cycle.get("reverted") or {}).get("namespaces") or {}).values())
        if diffs:
            return FAIL, "after revert: " + "; ".join(diffs)
        return PASS, f"{restored} value(s) restored; back to {note}"

    def auto_revert(self):
        if not self.cycle:
            return self.missing("role_cycle.yml")
        if self.cycle.get("explicit_error"):
            return FAIL, "second enable failed: " + short(self.cycle["explicit_error"])
        diffs, note = self.compare("auto")
        if diffs is None:
            return FAIL, note
        kinds = sorted({ns.get("scheduler", {}).get("kind", "?") for ns in ((self.cycle.get("enabled_explicit") or {}).get("namespaces") or {}).values()})
        waited = (self.cycle.get("auto_wait") or "").split("\n")[0]
        if diffs or not waited.startswith("gone"):
            return FAIL, f"{self.cycle.get('auto_duration')} s window ({', '.join(kinds)}): " + "; ".join(diffs or [waited])
        return PASS, f"{', '.join(kinds)}: {self.cycle.get('auto_duration')} s window, snapshots {waited} of waiting"

    def target(self, name):
        targets = self.meta.get("targets") or {}
        result = targets.get(name)
        if result is None:
            return NA, "not run"
        if result.get("status") == "pass":
            return PASS, f"{result.get('seconds', '?')} s"
        return FAIL, f"{result.get('seconds', '?')} s; {short(self.first_failure(name), 200)}"

    def first_failure(self, name):
        """The first unignored failure of a target in targets.log (the ansible-playbook output)."""
        try:
            with open(os.path.join(self.directory, "targets.log"), encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError:
            return "see targets.log"
        start = text.find(f"PLAY [Integration target {name}]")
        if start < 0:
            return "see targets.log"
        end = text.find("PLAY [Integration target", start + 10)
        block = text[start:end if end > 0 else len(text)]
        # The last failure that was neither ignored nor rescued is the one that failed the target.
        # "fatal:" for a task, "failed:" for one item of a loop; an ignored task says "...ignoring" after its
        # last item, before the next task.

        def ignored(match):
            following = re.search(r"^(?:TASK \[|PLAY RECAP)", block[match.end():], re.M)
            return "...ignoring" in block[match.end():match.end() + (following.start() if following else len(block))]
        failures = [m for m in re.finditer(r"^(?:fatal|failed): .*?(?=^\S|\Z)", block, re.M | re.S) if not ignored(m)]
        for match in reversed(failures):
            failure = match.group(0)
            found = {key: re.search(rf'"{key}": "((?:[^"\\]|\\.)*)"', failure) for key in ("assertion", "msg", "stderr")}
            if found["msg"] and found["msg"].group(1) == "non-zero return code" and found["stderr"]:
                return "non-zero return code: " + found["stderr"].group(1)
            if found["assertion"]:
                return found["assertion"].group(1) + (f" failed: {found['msg'].group(1)}" if found["msg"] else "")
            if found["msg"]:
                return found["msg"].group(1)
            return failure
        return "see targets.log"


ROWS = [
    ("`nf_conntrack_log_invalid` by name", Kernel.log_invalid),
    *[(f"`nf_log.{n}` ({fam}) bound by `auto`, providing module", functools.partial(Kernel.nf_log, family=fam, number=n))
      for fam, n in FAMILIES],
    ("dynamic-debug control file", Kernel.dd_control),
    ("the guide's dynamic-debug sites found by format", Kernel.dd_formats),
    ("zero-match detection", Kernel.dd_zero),
    ("unconfirmed list dumpable", Kernel.unconfirmed),
    ("dying list dumpable", Kernel.dying),
    ("stats counters present", Kernel.stats),
    ("plan: log_invalid auto-loads a logger (predicted vs what the kernel did)", Kernel.plan_autoload),
    ("plan: conntrack dynamic-debug sites vs the control file", Kernel.plan_dyndbg),
    ("plan: unconfirmed/dying lists vs `conntrack_lists_facts`", Kernel.plan_lists),
    ("plan: `nf_conntrack_tcp_be_liberal` named as a blinder", Kernel.plan_be_liberal),
    ("plan: `nf_log_all_netns` in a child namespace vs lines logged", Kernel.plan_all_netns),
    ("table-full lines parsed", Kernel.table_full),
    ("ring buffer wrapped during a window: collect reports the loss", Kernel.ring_wrap),
    ("invalid-log parsing (crafted packets, role collect)", Kernel.parsing),
    ("role: dynamic debug left alone by default", Kernel.default_sites),
    ("role: explicit dynamic-debug sites / skip with warning", Kernel.explicit_sites),
    ("role: revert restores every value", Kernel.revert),
    ("role: automatic revert at the deadline", Kernel.auto_revert),
    ("netlink capture, `conntrack_debug_capture: netlink`, child namespace", lambda k: capture_cell(k.directory, "netlink")),
    ("netlink capture, the role's default capture (auto)", lambda k: capture_cell(k.directory, "default")),
    ("netlink capture without `nf_log_all_netns` (child namespace, left at 0)", lambda k: all_netns_cell(k.directory)),
    *[(title, functools.partial(lambda k, args: verdict_cell(k.directory, *args), args=case))
      for title, *case in VERDICT_CASES],
    *[(f"integration target `{name}`", functools.partial(Kernel.target, name=name)) for name in TARGETS],
]


# ----------------------------------------------------------------------------- parser check

@functools.lru_cache(maxsize=None)
def log_parser():
    """The collection's own log parser (plugins/module_utils/_invalid_log.py), imported from this checkout."""
    tmp = tempfile.mkdtemp(prefix="nfct-compat-")
    # Left behind, one of these per matrix run piled up in /tmp; the parser may import more of the collection lazily,
    # so the link goes when this process ends, not right after the import.
    atexit.register(shutil.rmtree, tmp, True)
    os.makedirs(os.path.join(tmp, "ansible_collections", "netfilter"))
    os.symlink(REPO, os.path.join(tmp, "ansible_collections", "netfilter", "conntrack"))
    sys.path.insert(0, tmp)
    try:
        from ansible_collections.netfilter.conntrack.plugins.module_utils import _invalid_log as parser  # noqa: E402
    finally:
        sys.path.remove(tmp)
    return parser


def parse_events(lines):
    """parse_kernel_event() of each raw dmesg line (None where it is not a kernel event)."""
    parser = log_parser()
    return [parser.parse_kernel_event(parser.split_any(line)[0]) for line in lines]


def check_fixture_lines(lines):
    """Parse raw lines with the collection's own parser; returns (parsed, failing lines)."""
    parser = log_parser()
    parsed, failing = 0, []
    for line in lines:
        message, _mono, _epoch = parser.split_any(line)
        record = parser.parse_message(message)
        if record and record.get("reason"):
            parsed += 1
        else:
            failing.append(line)
    return parsed, failing


# ----------------------------------------------------------------------------- output

def render(results_dirs):
    runs = [load(os.path.join(directory, "run.json"), {}) or {} for directory in results_dirs]
    kernels, seen = [], set()
    for directory, run in zip(results_dirs, runs):
        for label in run.get("kernels", KERNELS):
            kernel = Kernel(label, os.path.join(directory, label))
            if label not in seen and kernel.present:
                seen.add(label)
                kernels.append(kernel)
    kernels.sort(key=lambda k: KERNELS.index(k.label) if k.label in KERNELS else len(KERNELS))
    failed = 0
    out = []
    out.append("<!-- Generated by tests/vm/compatibility.py from a tests/vm/matrix.sh run: do not edit by hand. -->")
    out.append("# Kernel compatibility matrix")
    out.append("")
    out.append("What the modules and the `debug` role do on real kernels: Debian's stock 5.10, 6.1, 6.12 and 6.18 "
               "(trixie-backports) kernels booted under qemu (`tests/vm/vm.sh`) and the CI machine's own 6.18 kernel "
               "(`host`, in network namespaces, without qemu, without dynamic debug). Every cell is decided by `tests/vm/compatibility.py` from the evidence "
               "the matrix run gathered (module results and values read back from the kernel), not written by hand.")
    out.append("")
    out.append("Regenerate (about 30 minutes on 2 idle cores; root, qemu, a Debian mirror; see `tests/vm/MATRIX.md`):")
    out.append("")
    out.append("    make vm-matrix                 # = tests/vm/matrix.sh")
    out.append("    tests/vm/matrix.sh 6.1 host    # a subset; the table then has only those columns")
    if len(runs) > 1:
        out.append("    tests/vm/compatibility.py RESULTS_DIR RESULTS_DIR...   # this table: the columns of several runs")
    out.append("")
    for run in runs:
        columns = ", ".join(f"`{label}`" for label in run.get("kernels") or [])
        out.append(f"- Run{' of ' + columns if len(runs) > 1 else ''}: started {run.get('started', '?')} UTC, total "
                   f"{run.get('seconds', '?')} s ({'commit ' + run['commit'] if run.get('commit') else 'no git'}"
                   f"{', ' + run['tree_note'] if run.get('tree_note') else ''}).")
    for k in kernels:
        m = k.meta
        phases = ", ".join(f"{name} {secs} s" for name, secs in (m.get("phases") or {}).items())
        out.append(f"- `{k.label}`: {m.get('package') or 'this machine'} — kernel `{k.release or m.get('release', '?')}`"
                   f"; {phases}")
    out.append("")
    header = "| capability | " + " | ".join(f"{k.label}" for k in kernels) + " |"
    out.append(header)
    out.append("|" + "---|" * (len(kernels) + 1))
    for title, func in ROWS:
        cells = []
        for k in kernels:
            status, note = func(k)
            if status == FAIL:
                failed += 1
            cells.append(f"**{status}**: {note}".replace("|", "\\|"))
        out.append(f"| {title} | " + " | ".join(cells) + " |")
    out.append("")
    # Fixtures and the parser
    out.append("## Invalid-packet log lines per kernel")
    out.append("")
    out.append("Crafted in each kernel (SYN+RST, SYN+FIN, UDP length beyond the packet, ICMP type 200, IPv6 SYN+FIN), "
               "saved as fixtures in `tests/unit/plugins/module_utils/fixtures/invalid_log/dmesg-<uname -r>.txt` (`MATRIX_FIXTURES=1`) and checked "
               "against `plugins/module_utils/_invalid_log.py`:")
    out.append("")
    for k in kernels:
        raw = k.cycle.get("raw_lines") or []
        if not raw:
            out.append(f"- `{k.label}`: no lines captured")
            continue
        parsed, failing = check_fixture_lines(raw)
        if failing:
            failed += 1
        first = raw[0].split("] ", 1)[-1]
        out.append(f"- `{k.label}`: {parsed}/{len(raw)} parsed" + (f", failing: `{failing[0]}`" if failing else "")
                   + f"; e.g. `{short(first, 160)}`")
    out.append("")
    out.append("## What the netlink capture needs per kernel")
    out.append("")
    out.append("From the `conntrack_debug_capture: netlink` window of `playbooks/capture.yml` (else its `auto` window where that "
               "one took the netlink path; a child namespace, `nf_log_all_netns` at 0 in the initial namespace throughout):")
    out.append("")
    for k in kernels:
        out.append(f"- `{k.label}`: {capture_needs(k.directory)}")
    out.append("")
    out.append("## Table-full lines per kernel")
    out.append("")
    out.append("Printed in each guest after lowering `nf_conntrack_max` and filling a scratch namespace with established "
               "connections (`playbooks/table_full.yml`), saved as fixtures in "
               "`tests/unit/plugins/module_utils/fixtures/invalid_log/table-full-<uname -r>.txt` (`MATRIX_FIXTURES=1`) and "
               "parsed by `parse_kernel_event()` of `plugins/module_utils/_invalid_log.py`:")
    out.append("")
    for k in kernels:
        lines = [line for line in k.full.get("lines") or [] if "table full" in line]
        if k.full.get("skipped") or not lines:
            text = "not filled here: " + k.full["skipped"] if k.full.get("skipped") else "no lines captured"
            saved = [name for name in sorted(os.listdir(FIXTURES)) if k.release and k.release in name
                     and "table full" in read_text(os.path.join(FIXTURES, name))]
            if saved:
                text += "; this kernel's real lines are in " + ", ".join(f"`{name}`" for name in saved)
            out.append(f"- `{k.label}`: {text}")
            continue
        out.append(f"- `{k.label}`: e.g. `{short(lines[0].split('] ', 1)[-1], 160)}`")
    out.append("")
    out.append(f"{failed} failing cell(s).")
    return "\n".join(out) + "\n", failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("results_dir", nargs="+")
    parser.add_argument("--output", default=os.path.join(REPO, "docs", "compatibility.md"))
    args = parser.parse_args(argv)
    for directory in args.results_dir:
        if not os.path.isdir(directory):
            print(f"compatibility.py: {directory} is not a directory", file=sys.stderr)
            return 2
    text, failed = render(args.results_dir)
    # Guest console output can carry carriage returns; the table is plain text with Unix line endings.
    with open(args.output, "w", encoding="utf-8") as handle:
        handle.write(text.replace("\r", ""))
    print(f"compatibility.py: wrote {args.output} ({failed} failing cell(s))", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
