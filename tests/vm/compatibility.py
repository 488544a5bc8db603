# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Turn the per-kernel results of tests/vm/matrix.sh into docs/compatibility.md.

usage: compatibility.py RESULTS_DIR [--output docs/compatibility.md] [--check-fixtures]

RESULTS_DIR holds run.json (written by matrix.sh) and one directory per kernel label (5.10, 6.1, 6.12,
host) with meta.json, capabilities.json, role_cycle.json and invalid_log.txt. The playbooks only gather
evidence; every pass/fail verdict is decided here, from that evidence, so the table can be regenerated from a
results directory at any time. Exit status: 0 when every cell passed (or is n/a), 1 when one failed, 2 for
usage errors.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
import tempfile

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KERNELS = ("5.10", "6.1", "6.12", "host")
FAMILIES = (("ipv4", 2), ("ipv6", 10), ("arp", 3), ("bridge", 7), ("netdev", 5))
CORE_COUNTERS = ("found", "invalid", "insert", "insert_failed", "drop", "early_drop", "error", "search_restart")
LATER_COUNTERS = ("clash_resolve", "chaintoolong")
PEER4, PEER6 = "10.211.0.1", "fd00:211::1"
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
        self.before = self.caps.get("probe_before") or {}
        self.after = self.caps.get("probe_after") or {}
        self.release = self.before.get("release") or self.meta.get("release") or ""
        self.dyndbg = bool(self.before.get("dynamic_debug_control"))
        self.present = bool(self.caps or self.cycle or self.meta.get("targets"))

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
        if not self.cycle:
            return self.missing("role_cycle.yml")
        window = readback((self.cycle.get("readback") or {}).get("window"))
        enabled = self.cycle.get("enabled_default") or {}
        if self.cycle.get("cycle_error") and not enabled:
            return FAIL, short(self.cycle["cycle_error"])
        if not self.dyndbg:
            ok = enabled.get("dynamic_debug") is False and "no dynamic debug" in " ".join(enabled.get("warnings") or [])
            return (PASS if ok else FAIL), ("default selection skipped with a warning, enable went on" if ok
                                            else "no warning about the skipped default selection")
        count = int(window.get("dd_enabled") or 0)
        before = readback((self.cycle.get("readback") or {}).get("before"))
        loaded = []
        for step in enabled.get("steps") or []:
            names = step.get("loaded") or []
            loaded += [name for name in ([names] if isinstance(names, str) else names) if name not in loaded]
        if before.get("conntrack_loaded") == "0" and window.get("conntrack_loaded") == "1":
            recorded = sum(1 for site in (enabled.get("namespaces", {}).get("init", {}).get("recorded") or [])
                           if site.startswith("dyndbg "))
            load_note = f"; enable loaded {', '.join(loaded) or 'nf_conntrack'} and recorded {recorded} site(s) after the load"
        else:
            load_note = ""
        if count:
            return PASS, f"{count} nf_conntrack site(s) switched on by default{load_note}"
        return FAIL, "the default selection switched no site on during the window"

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
        failures = [m for m in re.finditer(r"^fatal: .*?(?=^\S|\Z)", block, re.M | re.S)
                    if "...ignoring" not in block[m.end():m.end() + 40]]
        for match in reversed(failures):
            failure = match.group(0)
            found = {key: re.search(rf'"{key}": "((?:[^"\\]|\\.)*)"', failure) for key in ("assertion", "msg", "stderr")}
            if found["msg"] and found["msg"].group(1) == "non-zero return code" and found["stderr"]:
                return "non-zero return code: " + found["stderr"].group(1)
            for key in ("assertion", "msg"):
                if found[key]:
                    return found[key].group(1)
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
    ("invalid-log parsing (crafted packets, role collect)", Kernel.parsing),
    ("role: default dynamic-debug selection", Kernel.default_sites),
    ("role: explicit dynamic-debug sites / skip with warning", Kernel.explicit_sites),
    ("role: revert restores every value", Kernel.revert),
    ("role: automatic revert at the deadline", Kernel.auto_revert),
    *[(f"integration target `{name}`", functools.partial(Kernel.target, name=name)) for name in TARGETS],
]


# ----------------------------------------------------------------------------- parser check

def check_fixture_lines(lines):
    """Parse raw lines with the collection's own parser; returns (parsed, failing lines)."""
    tmp = tempfile.mkdtemp(prefix="nfct-compat-")
    os.makedirs(os.path.join(tmp, "ansible_collections", "netfilter"))
    os.symlink(REPO, os.path.join(tmp, "ansible_collections", "netfilter", "conntrack"))
    sys.path.insert(0, tmp)
    try:
        from ansible_collections.netfilter.conntrack.plugins.module_utils import _invalid_log as parser  # noqa: E402
    finally:
        sys.path.remove(tmp)
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

def render(results_dir):
    run = load(os.path.join(results_dir, "run.json"), {}) or {}
    kernels = [Kernel(label, os.path.join(results_dir, label)) for label in run.get("kernels", KERNELS)]
    kernels = [k for k in kernels if k.present]
    failed = 0
    out = []
    out.append("<!-- Generated by tests/vm/compatibility.py from a tests/vm/matrix.sh run: do not edit by hand. -->")
    out.append("# Kernel compatibility matrix")
    out.append("")
    out.append("What the modules and the `debug` role do on real kernels: Debian's stock 5.10, 6.1 and 6.12 kernels "
               "booted under qemu (`tests/vm/vm.sh`) and the CI machine's own 6.18 kernel (`host`, in network "
               "namespaces, without qemu). Every cell is decided by `tests/vm/compatibility.py` from the evidence "
               "the matrix run gathered (module results and values read back from the kernel), not written by hand.")
    out.append("")
    out.append("Regenerate (about 30 minutes on 2 idle cores; root, qemu, a Debian mirror; see `tests/vm/MATRIX.md`):")
    out.append("")
    out.append("    make vm-matrix                 # = tests/vm/matrix.sh")
    out.append("    tests/vm/matrix.sh 6.1 host    # a subset; the table then has only those columns")
    out.append("")
    out.append(f"- Run: started {run.get('started', '?')} UTC, total {run.get('seconds', '?')} s "
               f"({'commit ' + run['commit'] if run.get('commit') else 'no git'}"
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
    out.append(f"{failed} failing cell(s).")
    return "\n".join(out) + "\n", failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("results_dir")
    parser.add_argument("--output", default=os.path.join(REPO, "docs", "compatibility.md"))
    args = parser.parse_args(argv)
    if not os.path.isdir(args.results_dir):
        print(f"compatibility.py: {args.results_dir} is not a directory", file=sys.stderr)
        return 2
    text, failed = render(args.results_dir)
    # Guest console output can carry carriage returns; the table is plain text with Unix line endings.
    with open(args.output, "w", encoding="utf-8") as handle:
        handle.write(text.replace("\r", ""))
    print(f"compatibility.py: wrote {args.output} ({failed} failing cell(s))", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
