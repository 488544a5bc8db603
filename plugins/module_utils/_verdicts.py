# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Name the known conntrack problems from the evidence of one namespace: the verdict engine.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

Pure functions over :func:`_verdict_evidence.namespace_evidence`. Each check returns a verdict (or None) and one
line saying what it looked at; when no check fires, the namespace gets the verdict ``nothing_wrong`` listing those
lines. A verdict is ``{"id", "name", "confidence", "evidence": [text], "numbers": {...}, "action", "guide"}``.

"Rising" (:func:`rising`): a counter rose by at least ``rising_min_delta`` between the window's stats baseline
(taken at enable) and collect, at an average of at least ``rising_min_per_minute`` per minute over that time. One
packet, or a burst long ago in a day-long window, is not a verdict. Without a window there is no baseline, and no
counter-based verdict fires.
"""

from __future__ import annotations

import re
import typing as t

GUIDE = "docs/docsite/rst/guide_troubleshooting.rst#verdict-"

DEFAULT_THRESHOLDS: dict[str, t.Any] = {
    "rising_min_delta": 5,
    "rising_min_per_minute": 1.0,
    "table_usage_percent": 90.0,
    "out_of_window_min_lines": 3,
    "stale_udp_min_entries": 5,
    "chain_entries_per_bucket": 8.0,
}
THRESHOLD_HELP = {
    "rising_min_delta": "a counter 'rises' when it grew by at least this much over the window",
    "rising_min_per_minute": "... and at least this fast on average (per minute of the window)",
    "table_usage_percent": "count / nf_conntrack_max (every count sample) at which the table counts as full",
    "out_of_window_min_lines": "invalid lines with a TCP window reason that name out-of-window TCP",
    "stale_udp_min_entries": "unreplied UDP entries towards one destination that make it stale",
    "chain_entries_per_bucket": "entries per hash bucket above which too few buckets explain long chains",
}
NAMES = {
    "udp_insert_race": "UDP insert race (parallel first packets through NAT: the DNS 5-second timeout)",
    "table_full": "Conntrack table full: new connections are dropped",
    "tcp_out_of_window": "TCP segments outside the tracked window are marked invalid",
    "stale_udp_entries": "Stale UDP/NAT entries: unreplied UDP flows kept alive towards one destination",
    "count_list_drift": "Count-versus-list drift: entries counted that no list shows",
    "long_hash_chains": "Long hash chains: insertions refused (chaintoolong)",
    "blinded_window": "Blinded window: settings keep invalid packets out of the log",
    "nothing_wrong": "Nothing wrong found",
}
WINDOW_REASON_RE = re.compile(r"\b(SEQ|ACK) is (over|under) (the )?(upper|lower) bound|out of window|over the window", re.I)
DRIFT_CODES = ("unconfirmed_held_by_nfqueue", "unlisted_entries", "dying_entries_pinned")
BLINDING_CODES = ("log_invalid_off", "no_logger_bound", "logger_partly_bound", "child_without_all_netns",
                  "be_liberal", "ignore_invalid_rst", "notrack")
DNS_PORT = 53


def thresholds_with(overrides: dict[str, t.Any] | None) -> dict[str, t.Any]:
    """The defaults updated with the user's values; an unknown name or a negative number is refused."""
    merged = dict(DEFAULT_THRESHOLDS)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in DEFAULT_THRESHOLDS:
            raise ValueError(f"unknown verdict threshold {key!r}; known: {', '.join(sorted(DEFAULT_THRESHOLDS))}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"verdict threshold {key} must be a number of 0 or more, not {value!r}")
        merged[key] = value
    return merged


def rising(delta: dict[str, int] | None, key: str, seconds: float | None, limits: dict[str, t.Any]) -> tuple[bool, int, float | None]:
    """Whether counter ``key`` rose over the window: ``(rising, delta, per minute or None)``."""
    grown = (delta or {}).get(key) or 0
    rate = round(60.0 * grown / seconds, 2) if seconds and delta is not None else None
    fast = rate is None or rate >= limits["rising_min_per_minute"]
    return delta is not None and grown >= max(1, limits["rising_min_delta"]) and fast, grown, rate


def _rate_text(grown: int, rate: float | None, seconds: float | None) -> str:
    if rate is None:
        return f"+{grown}"
    return f"+{grown} in {round(seconds)} s ({rate}/min)"


def verdict(ident: str, confidence: str, evidence: list[str], numbers: dict[str, t.Any], action: str) -> dict[str, t.Any]:
    return {"id": ident, "name": NAMES[ident], "confidence": confidence, "evidence": evidence, "numbers": numbers,
            "action": action, "guide": GUIDE + ident.replace("_", "-")}


def check_udp_insert_race(ev: dict[str, t.Any], limits: dict[str, t.Any]) -> tuple[dict | None, str]:
    seconds = ev["window"]["seconds"]
    failed, failed_delta, failed_rate = rising(ev["delta"], "insert_failed", seconds, limits)
    clash, clash_delta, dummy = rising(ev["delta"], "clash_resolve", seconds, limits)
    checked = f"insert_failed {_rate_text(failed_delta, failed_rate, seconds)}, clash_resolve +{clash_delta}"
    makeup = ev["makeup"] or {}
    udp = (ev["by_protocol"].get("udp") or 0) or (makeup.get("by_protocol") or {}).get("udp") or 0
    if not (failed or clash) or not udp:
        return None, checked + (", no UDP entries" if not udp else "")
    dns = sum(one["count"] for one in makeup.get("top_ports") or [] if one.get("protocol") == "udp" and one.get("dport") == DNS_PORT)
    cpus = sum(1 for row in ev["per_cpu"] if (row.get("insert_failed") or 0) + (row.get("clash_resolve") or 0) > 0)
    evidence = [f"insert_failed {_rate_text(failed_delta, failed_rate, seconds)}: new entries lost the race against an"
                " identical one and their packet was dropped" if failed_delta else
                "insert_failed +0: no packet was dropped for it (this kernel resolved every clash)"]
    if clash_delta:
        evidence.append(f"clash_resolve +{clash_delta}: races the kernel resolved (merged, or the loser kept as a clash"
                        " entry) without dropping the packet; kernels without that resolution drop it")
    evidence.append(f"{udp} UDP entries in the table" + (f", {dns} of them to port 53 (DNS)" if dns else "")
                    + (f", {makeup.get('dnat')} with DNAT" if makeup.get("dnat") else ""))
    if cpus:
        evidence.append(f"insert_failed or clash_resolve is non-zero on {cpus} CPU(s) (per-CPU totals): first packets of"
                        " one flow were handled in parallel")
    nat_or_dns = bool(dns or makeup.get("dnat"))
    confidence = "high" if failed and nat_or_dns else "medium" if failed or nat_or_dns else "low"
    return verdict("udp_insert_race", confidence, evidence,
                   {"insert_failed": failed_delta, "insert_failed_per_minute": failed_rate, "clash_resolve": clash_delta,
                    "udp_entries": udp, "dns_entries": dns, "cpus": cpus},
                   "Stop sending the A and AAAA queries at once from one socket (glibc resolv.conf 'options"
                   " single-request-reopen' or 'use-vc'), or run a node-local DNS cache so the queries do not go through"
                   " DNAT. Since 5.6 the kernel resolves most such clashes (clash_resolve) instead of dropping the packet."), checked


def _makeup_lines(makeup: dict[str, t.Any]) -> list[str]:
    if not makeup.get("listed"):
        return []
    ports = ", ".join(f"{one['protocol']}/{one['dport']} {one['count']}" for one in makeup.get("top_ports") or [])
    timeouts = ", ".join(f"{name} {span['min']}-{span['max']} s" for name, span in (makeup.get("timeouts") or {}).items())
    return [f"{makeup['unreplied_percent']} % of {makeup['listed']} entries are [UNREPLIED]",
            "top protocols: " + ", ".join(f"{k} {v}" for k, v in (makeup.get("by_protocol") or {}).items()),
            "top destination ports: " + ports, "remaining timeouts that keep them: " + timeouts]


def check_table_full(ev: dict[str, t.Any], limits: dict[str, t.Any]) -> tuple[dict | None, str]:
    seconds, count, maximum = ev["window"]["seconds"], ev["count"], ev["max"]
    drop, drop_delta, drop_rate = rising(ev["delta"], "drop", seconds, limits)
    early, early_delta, dummy = rising(ev["delta"], "early_drop", seconds, limits)
    samples = ev["count_samples"] or ([count] if count is not None else [])
    usage = [100.0 * one / maximum for one in samples] if maximum else []
    full = bool(usage) and min(usage) >= limits["table_usage_percent"]
    lines = ev["table_full_lines"]
    usage_text = f"{round(max(usage), 1)} % of nf_conntrack_max {maximum}" if usage else "usage unknown"
    checked = f"table {usage_text}, {lines} table-full line(s), drop +{drop_delta}, early_drop +{early_delta}"
    if not (lines or early or (drop and (full or ev["table_full_unnamed"])) or full):
        return None, checked
    evidence = [f"{count} entries, {usage_text} (count samples {samples})"]
    if lines:
        evidence.append(f"{lines} 'table full, dropping packet' line(s) for this namespace")
    elif ev["table_full_unnamed"]:
        evidence.append(f"{ev['table_full_unnamed']} table-full line(s) the kernel did not name a namespace for (before 6.17)")
    evidence.append(f"drop {_rate_text(drop_delta, drop_rate, seconds)}, early_drop +{early_delta}")
    evidence += _makeup_lines(ev["makeup"] or {})
    confidence = "high" if (lines or ev["table_full_unnamed"]) and (drop or early) else "medium"
    return verdict("table_full", confidence, evidence,
                   {"count": count, "max": maximum, "usage_percent": round(max(usage), 1) if usage else None,
                    "table_full_lines": lines, "drop": drop_delta, "early_drop": early_delta,
                    "unreplied_percent": (ev["makeup"] or {}).get("unreplied_percent")},
                   "Find what fills the table (the make-up above: a flood of [UNREPLIED] entries points at a scan or an"
                   " unanswered service, long timeouts at established TCP that is never closed); shorten that protocol's"
                   " timeout (nf_conntrack_*_timeout_*) or raise net.netfilter.nf_conntrack_max with"
                   " nf_conntrack_buckets."), checked


def check_out_of_window(ev: dict[str, t.Any], limits: dict[str, t.Any]) -> tuple[dict | None, str]:
    window_reasons = {reason: one for reason, one in ev["reasons"].items() if WINDOW_REASON_RE.search(reason)}
    lines = sum(one["count"] for one in window_reasons.values())
    checked = f"{lines} invalid line(s) with a TCP window reason ({ev['reasons_source']})"
    if lines < max(1, limits["out_of_window_min_lines"]):
        return None, checked
    peers: dict[str, int] = {}
    for one in window_reasons.values():
        for peer, number in one["peers"].items():
            peers[peer] = peers.get(peer, 0) + number
    sampled = any(one["sampled"] for one in window_reasons.values())
    evidence = [f"{one['count']} x {reason}" for reason, one in sorted(window_reasons.items(), key=lambda i: -i[1]["count"])]
    if peers:
        evidence.append(("peers (from the sample lines): " if sampled else "peers: ")
                        + ", ".join(f"{p} {n}" for p, n in sorted(peers.items(), key=lambda i: (-i[1], i[0]))[:5]))
    hiders = [one["setting"] for one in (ev["plan"] or {}).get("blinders") or []
              if one.get("setting", "").endswith(("be_liberal", "ignore_invalid_rst"))]
    evidence.append(("set here, and hiding part of it: " + ", ".join(hiders)) if hiders else
                    "net.netfilter.nf_conntrack_tcp_be_liberal and nf_conntrack_tcp_ignore_invalid_rst are 0: nothing hides them")
    return verdict("tcp_out_of_window", "high" if lines >= 2 * limits["out_of_window_min_lines"] else "medium", evidence,
                   {"lines": lines, "peers": dict(sorted(peers.items(), key=lambda i: -i[1])[:5]), "hidden_by": hiders},
                   "Find why those peers send outside the window (a middlebox or load balancer rewriting sequence numbers,"
                   " asymmetric routing, window scaling lost on a mid-stream pickup). nf_conntrack_tcp_be_liberal=1 makes"
                   " conntrack accept such segments and nf_conntrack_tcp_ignore_invalid_rst=1 accepts out-of-window RSTs:"
                   " both hide the symptom (kube-proxy sets be_liberal) rather than fix it."), checked


def check_stale_udp(ev: dict[str, t.Any], limits: dict[str, t.Any]) -> tuple[dict | None, str]:
    makeup = ev["makeup"]
    if not makeup:
        return None, "unreplied UDP entries not examined (no table make-up in the report)"
    least = max(1, limits["stale_udp_min_entries"])
    stale = [one for one in makeup.get("unreplied_udp") or [] if one["count"] >= least]
    checked = f"{makeup.get('unreplied_udp_groups', 0)} destination(s) with unreplied UDP entries, none with {least} or more"
    if not stale:
        return None, checked
    evidence = [f"{one['count']} [UNREPLIED] UDP entries from {one['sources']} source(s) to {one['dst']}:{one['dport']}"
                + (f" translated to {one['nat_target']}" if one.get("nat_target") else "")
                + f", remaining timeout {one['timeout_min']}-{one['timeout_max']} s" for one in stale]
    nat = any(one.get("nat_target") for one in stale)
    return verdict("stale_udp_entries", "high" if nat else "medium", evidence,
                   {"destinations": [{k: one[k] for k in ("dst", "dport", "nat_target", "count", "timeout_max")}
                                     for one in stale]},
                   "Nothing answers these flows and every retransmission refreshes the entry, so it never expires: a NAT"
                   " entry made before the service's backend changed keeps sending to the old one. Delete them"
                   " (conntrack -D -p udp --orig-dst ADDRESS) and check the service or DNAT rule they point at."), checked


def check_drift(ev: dict[str, t.Any], limits: dict[str, t.Any]) -> tuple[dict | None, str]:
    discrepancy = ev["discrepancy"]
    codes = [one for one in discrepancy.get("findings") or [] if isinstance(one, dict) and one.get("code") in DRIFT_CODES]
    checked = f"count {discrepancy.get('counted')} against {discrepancy.get('listed')} listed"
    if not codes:
        return None, checked
    evidence = [f"{discrepancy.get('counted')} entries counted, {discrepancy.get('listed')} listed"
                f" (difference {discrepancy.get('value')})"] + [one.get("message", one["code"]) for one in codes]
    if discrepancy.get("diagnosis"):
        evidence.append(discrepancy["diagnosis"])
    confidence = "medium" if discrepancy.get("table_changing") else "high"
    return verdict("count_list_drift", confidence, evidence,
                   {"counted": discrepancy.get("counted"), "listed": discrepancy.get("listed"),
                    "codes": [one["code"] for one in codes]},
                   "Find the holder the diagnosis names: an NFQUEUE program that does not answer (unconfirmed entries) or"
                   " a ctnetlink event listener that does not read its socket (dying entries); restart or fix it."), checked


def check_chains(ev: dict[str, t.Any], limits: dict[str, t.Any]) -> tuple[dict | None, str]:
    seconds = ev["window"]["seconds"]
    long_chains, grown, rate = rising(ev["delta"], "chaintoolong", seconds, limits)
    per_bucket = round(ev["count"] / ev["buckets"], 2) if ev["count"] is not None and ev["buckets"] else None
    checked = f"chaintoolong +{grown}, {per_bucket} entries per bucket"
    if not long_chains:
        return None, checked
    crowded = per_bucket is not None and per_bucket >= limits["chain_entries_per_bucket"]
    evidence = [f"chaintoolong {_rate_text(grown, rate, seconds)}: insertions refused because a hash chain was too long",
                f"{ev['count']} entries in {ev['buckets']} buckets ({per_bucket} per bucket)"]
    evidence.append("too few buckets for the entries" if crowded else
                    "the buckets are not crowded on average: many flows hash to the same chain (hash flooding)")
    return verdict("long_hash_chains", "high" if crowded else "medium", evidence,
                   {"chaintoolong": grown, "entries_per_bucket": per_bucket},
                   "Raise net.netfilter.nf_conntrack_buckets (the hash size) with nf_conntrack_max; if the buckets are not"
                   " crowded, look for a flood of crafted flows from the peers that create entries."), checked


def check_blinded(ev: dict[str, t.Any], limits: dict[str, t.Any]) -> tuple[dict | None, str]:
    plan = ev["plan"]
    if plan is None:
        return None, "the plan was not in the report"
    blinding = [one for one in plan.get("problems") or [] if one.get("code") in BLINDING_CODES]
    checked = "the plan's blinders: " + (", ".join(one["code"] for one in blinding) or "none")
    if not blinding or not ev["window"]["has_delta"]:
        return None, checked
    invalid = (ev["delta"] or {}).get("invalid") or 0
    evidence = [one["text"] for one in blinding]
    evidence.append(f"invalid +{invalid} over the window, {ev['logged']} line(s) logged for this namespace")
    unlogged = invalid > ev["logged"] or not ev["logged"]
    return verdict("blinded_window", "high" if unlogged else "medium", evidence,
                   {"codes": [one["code"] for one in blinding], "invalid": invalid, "logged": ev["logged"]},
                   "Remove what blinds the window before reading its silence as 'no problem': bind a logger, set"
                   " conntrack_debug_all_netns: true for a child namespace, and look at be_liberal, ignore_invalid_rst"
                   " and notrack rules, which keep packets out of the log by design."), checked


CHECKS = (check_udp_insert_race, check_table_full, check_out_of_window, check_stale_udp, check_drift, check_chains,
          check_blinded)


def evaluate(evidence: dict[str, t.Any], thresholds: dict[str, t.Any] | None = None) -> list[dict[str, t.Any]]:
    """The verdicts of one namespace, most important first; ``nothing_wrong`` (with what was checked) when none fires."""
    limits = thresholds_with(thresholds)
    found, checked = [], []
    if not evidence["loaded"]:
        checked.append("nf_conntrack is not loaded here: nothing is tracked")
    elif evidence["delta"] is None:
        checked.append("no window baseline: counter deltas could not be judged (run enable first)")
    for check in CHECKS:
        one, text = check(evidence, limits)
        checked.append(text)
        if one is not None:
            found.append(dict(one, netns=evidence["label"]))
    if found:
        return found
    lines = sum(one["count"] for one in evidence["reasons"].values())
    invalid = (evidence["delta"] or {}).get("invalid") or 0
    top = max(evidence["reasons"].items(), key=lambda item: item[1]["count"])[0] if lines else None
    signature = f" (top reason: {top}), no known problem's signature" if lines else ""
    checked.append(f"invalid +{invalid}, {lines} invalid line(s){signature}")
    # Invalid verdicts rising with fewer lines to read (5.10 logs some without IN=/OUT=, so no namespace owns them):
    # nothing was found because the evidence is missing, not because nothing is wrong.
    unread = rising(evidence["delta"], "invalid", evidence["window"]["seconds"], limits)[0] and invalid > lines
    if unread:
        checked.append(f"{invalid - lines} invalid verdict(s) have no reason to read here: conntrack_debug_capture:"
                       " netlink counts each one in its own namespace")
    # Without a baseline the counters were not judged, and unexplained invalid lines leave a doubt.
    confidence = "low" if evidence["delta"] is None or unread else "medium" if lines or invalid else "high"
    seconds = evidence["window"]["seconds"]
    return [dict(verdict("nothing_wrong", confidence, checked,
                         {"window_seconds": None if seconds is None else round(seconds, 1), "invalid_lines": lines},
                         "Nothing to do here; if the problem is still seen, keep a window open while it happens."),
                 netns=evidence["label"])]


__all__ = ("CHECKS", "DEFAULT_THRESHOLDS", "NAMES", "THRESHOLD_HELP", "evaluate", "rising", "thresholds_with")
