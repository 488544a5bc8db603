# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Explain a gap between nf_conntrack_count and what the ctnetlink dumps listed; pure.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

:func:`diagnose` takes the facts ``_conntrack_facts.gather`` read (or recorded ones) and says whether the
table and its count agree, and if not what holds the entries: NFQUEUE, a dying list pinned by an event
listener, a full table, or a table that changed too fast to compare.
"""

from __future__ import annotations

import typing as t

UNLISTED_CODES = ("unconfirmed_held_by_nfqueue", "unlisted_entries")
DEFAULT_THRESHOLDS = {"unlisted": 100, "unlisted_percent": 1.0, "dying": 100, "usage_percent": 90.0}
DYING_NOTE_NEW = (
    "since Linux 5.19 the dying list only holds entries whose destroy event waits for redelivery to a ctnetlink"
    " event listener"
)
DYING_NOTE_OLD = "entries that are being destroyed; they normally leave the list within moments"


def _threshold_for_unlisted(count: int, thresholds: dict[str, t.Any]) -> float:
    return max(float(thresholds["unlisted"]), count * float(thresholds["unlisted_percent"]) / 100.0)


def count_samples(facts: dict[str, t.Any]) -> list[int]:
    """Every reading of nf_conntrack_count of the gather, in order (``count_samples``, else count and count_after)."""
    samples = [n for n in facts.get("count_samples") or [] if isinstance(n, int)]
    if samples:
        return samples
    return [n for n in (facts.get("count"), facts.get("count_after")) if isinstance(n, int)]


_LIST_NAMES = {"table": "table", "unconfirmed": "unconfirmed list", "dying": "dying list"}


def table_changing(facts: dict[str, t.Any], thresholds: dict[str, t.Any]) -> dict[str, t.Any]:
    """Whether the table changed too much while it was read for the count and the lists to be compared.

    Three signs, any of which is enough: the readings of the count spread by at least the unlisted
    threshold; the dumps listed more entries than any reading counted, by at least that threshold
    (a flush between the readings and the dump); or the kernel flagged a dump with NLM_F_DUMP_INTR.
    Returns ``changing``, ``interrupted`` (the names of the interrupted lists), ``low``, ``high`` and a
    plain-language ``text`` (empty when nothing changed).
    """
    samples = count_samples(facts)
    interrupted = [name for name in ("table", "unconfirmed", "dying") if (facts.get(name) or {}).get("interrupted")]
    out: dict[str, t.Any] = {"changing": bool(interrupted), "interrupted": interrupted, "low": None, "high": None, "text": ""}
    if not samples:
        return out
    low, high = min(samples), max(samples)
    out.update(low=low, high=high)
    limit = _threshold_for_unlisted(high, thresholds)
    listed = sum((facts.get(name) or {}).get("listed") or 0 for name in ("table", "unconfirmed", "dying"))
    moved = high - low >= limit and high > low
    overlisted = listed - high >= limit and listed > high
    texts = []
    if moved or overlisted:
        out["changing"] = True
        reads = "reading" if len(samples) == 1 else f"{len(samples)} readings"
        spread = f"was {low}" if low == high else f"moved between {low} and {high}"
        texts.append(
            f"The conntrack table was changing while it was read: nf_conntrack_count {spread} over {reads} while the"
            f" dumps listed {listed} entries, so the count and the lists cannot be compared and the difference says"
            " nothing about entries held outside the table (NFQUEUE or otherwise). Gather again when the table is"
            " quieter to compare them."
        )
    if interrupted:
        texts.append(
            f"The kernel flagged the dump of the {' and '.join(_LIST_NAMES[name] for name in interrupted)} as interrupted (NLM_F_DUMP_INTR): entries"
            " were added or removed during the dump, so the listing is not a consistent snapshot."
        )
        if not (moved or overlisted):
            texts.append("The count and the lists are therefore not compared.")
    out["text"] = " ".join(texts)
    return out


def _unlisted_finding(value: int, dying: dict[str, t.Any], unconfirmed: dict[str, t.Any],
                      nfqueue: list[dict[str, int]] | None) -> dict[str, str]:
    """The finding for entries counted but not listed: held by an NFQUEUE that gives no verdict, or unexplained."""
    waiting = [q for q in (nfqueue or []) if q["waiting"] > 0]
    text = f"{value} entries are counted in nf_conntrack_count but not listed in the table"
    text += " or on the dying list." if dying.get("listed") is not None else "."
    if unconfirmed.get("dumpable") is False:
        text += (
            " This kernel cannot list unconfirmed entries: an entry stays unconfirmed while its first packet"
            " has not left the netfilter hooks, most often because the packet waits in an NFQUEUE for a"
            " verdict that does not come."
        )
    else:
        text += " They are not on the unconfirmed list either, which points at a kernel accounting problem."
    if waiting:
        desc = ", ".join(f"queue {q['queue']} ({q['waiting']} packets, listener portid {q['portid']})" for q in waiting)
        text += (
            f" {sum(q['waiting'] for q in waiting)} packets are waiting in NFQUEUE now: {desc}; the program bound"
            " to the queue is not issuing verdicts."
        )
        return {"code": "unconfirmed_held_by_nfqueue", "message": text}
    if nfqueue is not None:
        text += " No NFQUEUE holds packets at the moment; look for other places that hold packets (tc, delays)."
    return {"code": "unlisted_entries", "message": text}


def _dying_finding(dying: dict[str, t.Any], thresholds: dict[str, t.Any]) -> dict[str, str] | None:
    """The finding for entries that stay on the dying list, read with the meaning the list has on this kernel."""
    dying_listed = dying.get("listed")
    if dying_listed is None or dying_listed < max(1, int(thresholds["dying"])):
        return None
    if dying.get("note") == DYING_NOTE_NEW:
        text = (
            f"{dying_listed} entries are on the dying list. Since Linux 5.19 that means their destroy events could"
            " not be delivered: a ctnetlink event listener (conntrackd, conntrack -E, ulogd or similar) subscribed"
            " with NETLINK_BROADCAST_ERROR does not read its socket, so the kernel keeps the entries (and counts"
            " them) until the events are delivered or the listener exits."
        )
    else:
        text = (
            f"{dying_listed} entries are on the dying list; entries that stay there are usually pinned by an event"
            " listener that does not read its socket, or leaked by a module holding references."
        )
    return {"code": "dying_entries_pinned", "message": text}


def _usage_finding(facts: dict[str, t.Any], thresholds: dict[str, t.Any]) -> dict[str, str] | None:
    usage = facts.get("usage_percent")
    if usage is None or usage < float(thresholds["usage_percent"]):
        return None
    return {
        "code": "table_near_max",
        "message": (
            f"The table holds {facts.get('count')} entries, {usage}% of nf_conntrack_max ({facts.get('max')}): when it is"
            " full the kernel drops new connections (stats drop/early_drop, 'table full, dropping packet')."
        ),
    }


def _diagnosis_text(result: dict[str, t.Any], changing: dict[str, t.Any]) -> str:
    findings = result["findings"]
    if findings:
        return " ".join([finding["message"] for finding in findings] + ([changing["text"]] if changing["text"] else []))
    if changing["changing"]:
        return changing["text"]
    if result["value"] is None:
        return "No problem found in what was gathered (the table was not listed, so counts were not compared)."
    return (
        f"No problem found: {result['listed']} of {result['counted']} counted entries are listed"
        f" (difference {result['value']}, within the threshold)."
    )


def diagnose(facts: dict[str, t.Any], thresholds: dict[str, t.Any], nfqueue: list[dict[str, int]] | None) -> dict[str, t.Any]:
    """Compute ``discrepancy`` (value, findings, plain-language diagnosis) from gathered facts.

    The value is the smallest of the counts read before, between and after the dumps minus everything
    the dumps listed, so entries created or freed while dumping do not show up as a discrepancy. When
    the count moved by more than the threshold between its readings, or a dump was interrupted, the
    table was changing too fast for the comparison to mean anything: ``table_changing`` is true, the
    diagnosis says so, and no unlisted-entries finding is made.
    """
    findings: list[dict[str, str]] = []
    result: dict[str, t.Any] = {
        "value": None,
        "counted": None,
        "listed": None,
        "table_changing": False,
        "interrupted": [],
        "findings": findings,
    }
    count = facts.get("count")
    table = facts.get("table") or {}
    dying = facts.get("dying") or {}
    unconfirmed = facts.get("unconfirmed") or {}
    changing: dict[str, t.Any] = {"changing": False, "text": ""}

    if count is not None and table.get("listed") is not None and facts.get("family") is None:
        counted = min(count_samples(facts) or [count])
        listed = table["listed"] + (dying.get("listed") or 0) + (unconfirmed.get("listed") or 0)
        value = counted - listed
        result.update(value=value, counted=counted, listed=listed)
        changing = table_changing(facts, thresholds)
        result["table_changing"] = changing["changing"]
        result["interrupted"] = changing["interrupted"]
        if not changing["changing"] and value >= _threshold_for_unlisted(counted, thresholds) and value > 0:
            findings.append(_unlisted_finding(value, dying, unconfirmed, nfqueue))
    for finding in (_dying_finding(dying, thresholds), _usage_finding(facts, thresholds)):
        if finding is not None:
            findings.append(finding)
    result["diagnosis"] = _diagnosis_text(result, changing)
    return result


__all__ = (
    "DEFAULT_THRESHOLDS",
    "DYING_NOTE_NEW",
    "DYING_NOTE_OLD",
    "UNLISTED_CODES",
    "count_samples",
    "diagnose",
    "table_changing",
)
