# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The evidence of one namespace, taken from a collect report, in the one shape the verdict engine reads.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

The invalid-packet reasons can come from two sources, brought to one shape ``{reason: {"count": n, "peers":
{address: n}, "sampled": bool}}``: the kernel-log summary (:func:`reasons_from_log`; its peers per reason come
from the sample lines, hence ``sampled``) or an exact aggregate such as an nfnetlink_log capture gives
(:func:`reasons_from_aggregate`).
"""

from __future__ import annotations

import calendar
import time
import typing as t


def _int(value: t.Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dict(value: t.Any) -> dict:
    return value if isinstance(value, dict) else {}


def epoch_of(iso: t.Any) -> float | None:
    """Epoch seconds of the report's ``collected_at`` (``2026-12-02T05:02:05Z``), None when it does not parse."""
    try:
        return float(calendar.timegm(time.strptime(str(iso), "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


def reasons_from_aggregate(aggregate: t.Any) -> dict[str, dict[str, t.Any]]:
    """``{reason: count}`` or ``{reason: {"count": n, "peers": {...}}}`` (an exact capture) as the engine's reasons."""
    reasons = {}
    for reason, value in _dict(aggregate).items():
        if isinstance(value, dict):
            count = _int(value.get("count")) or 0
            peers = {str(k): v for k, v in _dict(value.get("peers")).items() if _int(v)}
        else:
            count, peers = _int(value) or 0, {}
        if count:
            reasons[str(reason)] = {"count": count, "peers": peers, "sampled": False}
    return reasons


def reasons_from_log(invalid_log: dict[str, t.Any], label: str, labels: list[str]) -> dict[str, dict[str, t.Any]]:
    """The reasons of one namespace from the kernel-log summary.

    Without attribution, or when every line was attributed to it, the counts are exact. Otherwise (several
    namespaces, or lines of interfaces no selected namespace owns) only the sample lines carry the namespace, so the
    counts are the samples' (``sampled``).
    """
    samples = [one for one in invalid_log.get("samples") or [] if isinstance(one, dict)]
    attribution = _dict(invalid_log.get("attribution"))
    attributed = _dict(_dict(attribution.get("by_namespace")).get(label)).get("count")
    # Every line is this namespace's when nothing attributes lines, or when all were attributed to it.
    own = not attribution or (len(labels) <= 1 and attributed == invalid_log.get("total"))
    if not own:
        samples = [one for one in samples if one.get("netns") == label]
    peers_by_reason: dict[str, dict[str, int]] = {}
    for sample in samples:
        if sample.get("reason") and sample.get("src"):
            peers = peers_by_reason.setdefault(sample["reason"], {})
            peers[sample["src"]] = peers.get(sample["src"], 0) + 1
    if own:
        counts = {str(k): v for k, v in _dict(invalid_log.get("by_reason")).items() if _int(v)}
    else:
        counts = {}
        for sample in samples:
            if sample.get("reason"):
                counts[sample["reason"]] = counts.get(sample["reason"], 0) + 1
    return {reason: {"count": count, "peers": peers_by_reason.get(reason, {}), "sampled": True}
            for reason, count in counts.items()}


def _window(report: dict[str, t.Any], label: str) -> dict[str, t.Any]:
    window = _dict(_dict(report.get("windows")).get(label))
    has_baseline = bool(window.get("stats_baseline")) and not window.get("vanished")
    now = epoch_of(report.get("collected_at"))
    started = window.get("enabled_at")
    seconds = now - started if has_baseline and now is not None and isinstance(started, (int, float)) else None
    return {"active": bool(window.get("active")), "expired": bool(window.get("expired")),
            "has_delta": has_baseline, "seconds": seconds if seconds is None or seconds > 0 else None}


def namespace_evidence(report: dict[str, t.Any], label: str, capture: t.Any = None) -> dict[str, t.Any]:
    """Everything the verdicts of namespace ``label`` read from one collect report (see build_report).

    ``capture`` is an exact aggregate of the namespace's invalid packets (see :func:`reasons_from_aggregate`);
    without it the reasons come from the kernel log.
    """
    facts = _dict(_dict(report.get("conntrack")).get(label))
    diagnosis = _dict(report.get("diagnosis"))
    window = _window(report, label)
    labels = list(_dict(report.get("conntrack")))
    invalid_log = _dict(report.get("invalid_log"))
    full = _dict(diagnosis.get("table_full"))
    by_netns = {str(k): v for k, v in _dict(full.get("by_netns")).items() if _int(v)}
    named = by_netns.get(label, 0)
    unnamed = sum(v for k, v in by_netns.items() if k not in labels and not k.startswith("netns inode"))
    attribution = _dict(_dict(invalid_log.get("attribution")).get("by_namespace"))
    logged = (_dict(attribution.get(label)).get("count") or 0) if attribution else (invalid_log.get("total") or 0)
    reasons = reasons_from_aggregate(capture) if capture is not None else reasons_from_log(invalid_log, label, labels)
    if capture is not None:  # every captured event is one invalid verdict logged, whatever the kernel log kept
        logged = sum(one["count"] for one in reasons.values())
    return {
        "label": label,
        "window": window,
        "delta": {k: v for k, v in _dict(_dict(report.get("windows")).get(label)).get("stats_delta", {}).items()
                  if _int(v) is not None} if window["has_delta"] else None,
        "per_cpu": [row for row in _dict(facts.get("stats")).get("per_cpu") or [] if isinstance(row, dict)],
        "loaded": facts.get("loaded", True) is not False,
        "count": _int(facts.get("count")),
        "max": _int(facts.get("max")),
        "buckets": _int(facts.get("buckets")),
        "count_samples": [v for v in facts.get("count_samples") or [] if _int(v) is not None],
        "by_protocol": _dict(_dict(facts.get("table")).get("by_protocol")),
        "makeup": facts.get("makeup") if isinstance(facts.get("makeup"), dict) else None,
        "discrepancy": _dict(facts.get("discrepancy")),
        "reasons": reasons,
        "reasons_source": "capture" if capture is not None else "kernel log",
        "logged": logged,
        "table_full_lines": named,
        "table_full_unnamed": unnamed,
        "plan": _dict(_dict(report.get("plan")).get(label)) if report.get("plan") is not None else None,
        "findings": [one for one in _dict(_dict(diagnosis.get("reconciliation")).get(label)).get("findings") or []
                     if isinstance(one, dict)],
    }


__all__ = ("epoch_of", "namespace_evidence", "reasons_from_aggregate", "reasons_from_log")
