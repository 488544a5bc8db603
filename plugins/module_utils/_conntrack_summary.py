# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The bounded per-host conntrack summary of ``conntrack_facts``, and its node_exporter textfile.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

Everything here is a pure function of what the host gathered (``conntrack_lists_facts``' facts per
namespace, a few sysctls, the debug window's snapshots, ``conntrack_invalid_log_facts``' summary), so
that the summary's shape, which inventories and dashboards are built on, is tested without a kernel.
"""

from __future__ import annotations

import datetime
import math
import os
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._atomic_file import read_regular_file, write_file_atomically
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack_stats import DROP_COUNTERS
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._kernel_release import parse_release

SUMMARY_FORMAT = 1
# The summary's drops in name order (_conntrack_stats keeps the reports' table order): the order its JSON always had.
SUMMARY_DROPS = tuple(sorted(DROP_COUNTERS))
# Findings of conntrack_lists_facts that are a count-versus-list discrepancy (table_near_max is pressure, not one).
DISCREPANCY_CODES = ("unconfirmed_held_by_nfqueue", "unlisted_entries", "dying_entries_pinned")
# Invalid-log summary keys never copied into the summary (unbounded by default or per-packet detail).
LOG_DROPPED_KEYS = ("samples",)
LOGGER_FAMILIES = {"ipv4": 2, "ipv6": 10}
TEXTFILE_NAME = "netfilter_conntrack.prom"
LOG_SOURCES = ("auto", "journal", "kmsg", "dmesg", "file", "none")

# The options of conntrack_facts as users write them; the action plugin validates them with this spec and
# the module accepts the same (plus the invalid-log summary the action adds), so the two cannot drift.
FACTS_ARGUMENT_SPEC = {
    "netns": {"type": "list", "elements": "str", "default": []},
    "all_named_netns": {"type": "bool", "default": False},
    "max_namespaces": {"type": "int", "default": 32},
    "dump_lists": {"type": "bool", "default": True},
    "full_lists": {"type": "bool", "default": False},
    "max_entries": {"type": "int", "default": 20},
    "log_source": {"type": "str", "choices": list(LOG_SOURCES), "default": "auto"},
    "log_path": {"type": "path"},
    "log_since": {"type": "str", "default": "boot"},
    "max_samples": {"type": "int", "default": 0},
    "top_peers": {"type": "int", "default": 5},
    "textfile_dir": {"type": "path"},
    "plan": {"type": "bool", "default": True},
    "plan_ruleset": {"type": "bool", "default": True},
}


def kernel_series(release: str | None) -> str | None:
    """The major.minor series of a kernel release: V(6.18) for C(6.18.44-fc-v1098)."""
    return parse_release(release or "")["version"]


def iso_utc(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int_or_none(value: t.Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def table_full_events(invalid_log: dict[str, t.Any], inum: int | None) -> int | None:
    """Table-full kernel messages for the namespace with inode number ``inum``, from the log summary.

    None when the log summary has no table-full information (a log-facts module that does not parse
    those lines, or a log that could not be read). Lines that name their namespace (Linux 6.17+:
    ``table full in netns N``) count for that namespace only; lines that do not are host-wide and count
    for every namespace, because the kernel did not say which one dropped.
    """
    if invalid_log.get("error"):
        return None
    full = (invalid_log.get("kernel_events") or {}).get("table_full", invalid_log.get("table_full"))
    if full is None:
        return None
    if isinstance(full, bool):
        return int(full)
    if isinstance(full, (int, float)):
        return int(full)
    if not isinstance(full, dict):
        return None
    by_netns = full.get("by_netns")
    if isinstance(by_netns, dict):
        named = sum(_int_or_none(v) or 0 for v in by_netns.values())
        total = _int_or_none(full.get("count", full.get("total")))
        unattributed = _int_or_none(full.get("unattributed"))
        if unattributed is None:
            unattributed = max(0, (total or 0) - named)
        mine = _int_or_none(by_netns.get(str(inum))) if inum is not None else None
        return (mine or 0) + unattributed
    total = _int_or_none(full.get("count", full.get("total")))
    return total


def namespace_summary(
    facts: dict[str, t.Any],
    *,
    netns: str | None,
    inum: int | None,
    log_invalid: str | None,
    loggers: dict[str, str | None],
    window: dict[str, t.Any] | None,
    invalid_log: dict[str, t.Any],
    full_lists: bool = False,
) -> dict[str, t.Any]:
    """One namespace's part of the summary, from conntrack_lists_facts' facts and the sysctls read there."""
    stats = dict((facts.get("stats") or {}).get("total") or {})
    discrepancy = facts.get("discrepancy") or {}
    codes = [f.get("code") for f in discrepancy.get("findings") or [] if isinstance(f, dict)]
    lists = {}
    for name in ("table", "dying", "unconfirmed", "expect"):
        if isinstance(facts.get(name), dict):
            lists[name] = facts[name].get("listed")
    level = _int_or_none(log_invalid)
    bound = dict(loggers)
    unbound = sorted(family for family, name in bound.items() if not name)
    summary: dict[str, t.Any] = {
        "netns": netns,
        "inum": inum,
        "loaded": bool(facts.get("loaded")),
        "count": facts.get("count"),
        "max": facts.get("max"),
        "buckets": facts.get("buckets"),
        "usage_percent": facts.get("usage_percent"),
        "stats": stats,
        "drops": {name: int(stats.get(name) or 0) for name in SUMMARY_DROPS},
        "lists": lists,
        "discrepancy": {
            "value": discrepancy.get("value"),
            "codes": codes,
            "found": any(code in DISCREPANCY_CODES for code in codes),
            "table_changing": bool(discrepancy.get("table_changing")),
            "diagnosis": discrepancy.get("diagnosis"),
        },
        "log_invalid": level,
        "loggers": bound,
        # Logging is on, yet no IPv4 or IPv6 logger is bound here: nothing the kernel finds invalid is written.
        "no_logger": bool(level) and len(unbound) == len(bound) and bool(bound),
        "table_full_events": table_full_events(invalid_log, inum),
        "window_active": bool(window and window.get("active")),
    }
    if window and window.get("active"):
        summary["window_deadline"] = window.get("deadline")
    if full_lists:
        summary["conntrack"] = facts
    return summary


def failed_namespace(netns: str | None, msg: str) -> dict[str, t.Any]:
    """A namespace that could not be gathered (it vanished, or entering it failed)."""
    return {"netns": netns, "error": msg}


def unreadable_name_label(name: str) -> str | None:
    """None for a name that is valid UTF-8; else a printable label for it, its undecodable bytes as ``\\xNN``.

    os.listdir() gives such a name with surrogate escapes, which no JSON result and no textfile can hold."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return None


def trim_invalid_log(invalid_log: dict[str, t.Any] | None) -> dict[str, t.Any]:
    """The log summary without per-packet samples; an empty dict stays empty."""
    return {key: value for key, value in (invalid_log or {}).items() if key not in LOG_DROPPED_KEYS}


def build_summary(
    *,
    now: float,
    kernel: str,
    own: dict[str, t.Any],
    namespaces: dict[str, dict[str, t.Any]],
    invalid_log: dict[str, t.Any],
    window: dict[str, t.Any],
    nf_log_all_netns: str | None,
    truncated: list[str] | None = None,
) -> dict[str, t.Any]:
    """The host's summary: the connection's own namespace at the top, the others under ``namespaces``, and
    ``worst``, the figures over all of them that inventories group on."""
    everything = [own] + list(namespaces.values())
    ok = [one for one in everything if not one.get("error")]
    usages = [one["usage_percent"] for one in ok if isinstance(one.get("usage_percent"), (int, float))]
    drops = {name: sum(one["drops"][name] for one in ok) for name in SUMMARY_DROPS}
    full = [one["table_full_events"] for one in ok if one.get("table_full_events") is not None]
    full_events = max(full) if full else None
    invalid_total = invalid_log.get("total") if not invalid_log.get("error") else None
    worst = {
        "usage_percent": max(usages) if usages else None,
        "drops": drops,
        "table_full_events": full_events,
        "dropping": any(drops.values()) or bool(full_events),
        "discrepancy": any(one["discrepancy"]["found"] for one in ok),
        "discrepancy_codes": sorted({code for one in ok for code in one["discrepancy"]["codes"]}),
        "no_logger": any(one["no_logger"] for one in ok),
        "invalid_logged": bool(invalid_total),
        "window_active": any(one.get("window_active") for one in ok),
        "errors": len(everything) - len(ok),
    }
    summary: dict[str, t.Any] = {
        "format": SUMMARY_FORMAT,
        "gathered_at": iso_utc(now),
        "gathered_at_epoch": int(now),
        "kernel": kernel,
        "kernel_series": kernel_series(kernel),
        "nf_log_all_netns": _int_or_none(nf_log_all_netns),
    }
    summary.update({key: value for key, value in own.items() if key != "netns"})
    summary["namespaces"] = namespaces
    if truncated:
        summary["namespaces_not_gathered"] = truncated
    summary["invalid_log"] = invalid_log
    summary["window"] = window
    summary["worst"] = worst
    return summary


# ---------------------------------------------------------------------------- node_exporter textfile

_LABEL_ESCAPES = {"\\": "\\\\", "\"": "\\\"", "\n": "\\n"}


def _label(value: t.Any) -> str:
    return "".join(_LABEL_ESCAPES.get(char, char) for char in str(value if value is not None else ""))


def _number(value: t.Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    number = float(value)
    if math.isnan(number):
        return "NaN"
    return repr(number)


class _Metrics:
    """Collects samples per metric family and renders them in the text exposition format, families sorted."""

    def __init__(self) -> None:
        self._families: dict[str, tuple[str, str, list[tuple[dict[str, t.Any], t.Any]]]] = {}

    def add(self, name: str, kind: str, helptext: str, value: t.Any, **labels: t.Any) -> None:
        if value is None:
            return
        family = self._families.setdefault(name, (kind, helptext, []))
        family[2].append((labels, value))

    def render(self) -> str:
        lines = []
        for name in sorted(self._families):
            kind, helptext, samples = self._families[name]
            lines.append(f"# HELP {name} {helptext}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                rendered = ",".join(f'{key}="{_label(val)}"' for key, val in sorted(labels.items()))
                lines.append(f"{name}{{{rendered}}} {_number(value)}" if rendered else f"{name} {_number(value)}")
        return "\n".join(lines) + "\n"


def render_textfile(summary: dict[str, t.Any]) -> str:
    """The summary as node_exporter textfile-collector metrics (``netfilter_conntrack_*``).

    Every per-namespace metric carries ``netns`` (empty for the namespace the connection runs in, as
    node_exporter's own conntrack metrics describe that one). Usage is a ratio (0-1), times are Unix
    seconds, counters of the kernel keep its names in the ``counter`` label.
    """
    metrics = _Metrics()
    spaces = [("", summary)] + sorted((name, one) for name, one in (summary.get("namespaces") or {}).items())
    for name, one in spaces:
        metrics.add("netfilter_conntrack_gather_error", "gauge",
                    "1 when the namespace could not be gathered.", 1 if one.get("error") else 0, netns=name)
        if one.get("error"):
            continue
        metrics.add("netfilter_conntrack_entries", "gauge", "Connections tracked (nf_conntrack_count).",
                    one.get("count"), netns=name)
        metrics.add("netfilter_conntrack_entries_limit", "gauge", "Maximum number of tracked connections "
                    "(nf_conntrack_max).", one.get("max"), netns=name)
        metrics.add("netfilter_conntrack_buckets", "gauge", "Size of the conntrack hash table (nf_conntrack_buckets).",
                    one.get("buckets"), netns=name)
        usage = one.get("usage_percent")
        metrics.add("netfilter_conntrack_usage_ratio", "gauge", "nf_conntrack_count divided by nf_conntrack_max.",
                    None if usage is None else round(usage / 100.0, 6), netns=name)
        for counter, value in sorted((one.get("stats") or {}).items()):
            metrics.add("netfilter_conntrack_stat_total", "counter", "Conntrack statistics summed over the CPUs "
                        "(conntrack -S), by counter.", value, netns=name, counter=counter)
        disc = one.get("discrepancy") or {}
        metrics.add("netfilter_conntrack_discrepancy_entries", "gauge", "Entries counted but not listed in the "
                    "table, dying or unconfirmed lists (conntrack -C minus conntrack -L).", disc.get("value"), netns=name)
        metrics.add("netfilter_conntrack_discrepancy", "gauge", "1 when a count-versus-list discrepancy was found.",
                    1 if disc.get("found") else 0, netns=name)
        for code in disc.get("codes") or []:
            metrics.add("netfilter_conntrack_finding", "gauge", "1 for each finding of the discrepancy check, "
                        "by code.", 1, netns=name, code=code)
        metrics.add("netfilter_conntrack_log_invalid", "gauge", "nf_conntrack_log_invalid (0 off, 255 every "
                    "protocol, else the protocol number).", one.get("log_invalid"), netns=name)
        for family, bound in sorted((one.get("loggers") or {}).items()):
            metrics.add("netfilter_conntrack_logger_bound", "gauge", "1 when a logger is bound for the family "
                        "(net.netfilter.nf_log.N).", 1 if bound else 0, netns=name, family=family)
        metrics.add("netfilter_conntrack_no_logger", "gauge", "1 when nf_conntrack_log_invalid is on but no IPv4 "
                    "or IPv6 logger is bound, so nothing is logged.", 1 if one.get("no_logger") else 0, netns=name)
        metrics.add("netfilter_conntrack_table_full_messages", "gauge", "Table-full kernel messages attributed to "
                    "the namespace in the kernel log window.", one.get("table_full_events"), netns=name)
        metrics.add("netfilter_conntrack_debug_window_active", "gauge", "1 while a netfilter.conntrack debug "
                    "window is open (its automatic revert pending).", 1 if one.get("window_active") else 0, netns=name)
        metrics.add("netfilter_conntrack_debug_window_deadline_timestamp_seconds", "gauge", "When the open debug "
                    "window reverts by itself (Unix time).", one.get("window_deadline"), netns=name)
    log = summary.get("invalid_log") or {}
    if not log.get("error"):
        for reason, count in sorted((log.get("by_reason") or {}).items()):
            metrics.add("netfilter_conntrack_invalid_log_lines", "gauge", "Conntrack invalid-packet lines in the "
                        "kernel log window (since boot unless configured), by reason.", count, reason=reason)
        metrics.add("netfilter_conntrack_invalid_log_lines_lost", "gauge", "Kernel log records lost before they "
                    "were read (ring buffer overwritten).", log.get("lost_records"))
    metrics.add("netfilter_conntrack_invalid_log_error", "gauge", "1 when the kernel log could not be read.",
                1 if log.get("error") else 0)
    metrics.add("netfilter_conntrack_facts_gathered_timestamp_seconds", "gauge", "When these facts were gathered "
                "(Unix time).", summary.get("gathered_at_epoch"))
    return metrics.render()


def write_textfile(directory: str, text: str, check_mode: bool = False) -> dict[str, t.Any]:
    """Write ``text`` to DIRECTORY/netfilter_conntrack.prom atomically, mode 0644, so that node_exporter never
    reads half a file. Whatever is at that name (a symlink, a FIFO) is neither followed nor waited on: it is
    replaced (see ``_atomic_file``)."""
    path = os.path.join(directory, TEXTFILE_NAME)
    if not os.path.isdir(directory):
        raise ConntrackModuleError(f"textfile directory {directory} does not exist or is not a directory")
    result = {"dest": path, "written": False, "bytes": len(text.encode("utf-8"))}
    if check_mode or read_regular_file(path) == text:
        return result
    # node_exporter ignores files not ending in .prom, so the temporary name never shows up as metrics.
    try:
        write_file_atomically(directory, TEXTFILE_NAME, text.encode("utf-8"), 0o644)
    except OSError as exc:
        raise ConntrackModuleError(f"cannot write {path}: {exc.strerror or exc}") from exc
    result["written"] = True
    return result


__all__ = ("DISCREPANCY_CODES", "FACTS_ARGUMENT_SPEC", "LOGGER_FAMILIES", "LOG_SOURCES", "SUMMARY_DROPS", "SUMMARY_FORMAT", "TEXTFILE_NAME", "build_summary",
           "failed_namespace", "kernel_series", "namespace_summary", "render_textfile", "table_full_events", "trim_invalid_log",
           "unreadable_name_label", "write_textfile")
