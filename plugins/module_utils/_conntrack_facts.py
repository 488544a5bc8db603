# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Gather conntrack counts, lists and statistics, and explain a count-vs-list discrepancy.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

:func:`gather` reads the sysctls and drives the ctnetlink client; :func:`diagnose` and the other
helpers are pure functions over plain data so they can be tested without a kernel.
"""

from __future__ import annotations

import datetime
import errno
import os
import re
import time
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._ctnetlink import (
    IPCTNL_MSG_CT_GET,
    IPCTNL_MSG_CT_GET_DYING,
    IPCTNL_MSG_CT_GET_UNCONFIRMED,
    CtnetlinkSocket,
    NetlinkError,
    decode_ct_entry,
    summarize_counts,
    sum_stats,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._names import family_name, protocol_name
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl import key_path, read_key

COUNT_KEY = "net.netfilter.nf_conntrack_count"
MAX_KEY = "net.netfilter.nf_conntrack_max"
BUCKETS_KEY = "net.netfilter.nf_conntrack_buckets"
NFQUEUE_PROC = "/proc/net/netfilter/nfnetlink_queue"
CTNETLINK_MODULE = "nf_conntrack_netlink"
LISTS = ("table", "unconfirmed", "dying", "expect")

SOURCE_TABLE = "ctnetlink dump (IPCTNL_MSG_CT_GET)"
SOURCE_DYING = "ctnetlink dump (IPCTNL_MSG_CT_GET_DYING)"
SOURCE_UNCONFIRMED = "ctnetlink dump (IPCTNL_MSG_CT_GET_UNCONFIRMED)"
SOURCE_EXPECT = "ctnetlink dump (IPCTNL_MSG_EXP_GET)"
SOURCE_STATS = "ctnetlink dump (IPCTNL_MSG_CT_GET_STATS_CPU)"

UNLISTED_CODES = ("unconfirmed_held_by_nfqueue", "unlisted_entries")
CONFIRM_READS = 5
CONFIRM_INTERVAL = 0.02
DEFAULT_THRESHOLDS = {"unlisted": 100, "unlisted_percent": 1.0, "dying": 100, "usage_percent": 90.0}

UNCONFIRMED_GONE = (5, 19)
UNCONFIRMED_REASON = (
    "since Linux 5.19 the kernel no longer keeps a list of unconfirmed entries and always answers the dump with an"
    " empty list; unconfirmed entries are still counted in nf_conntrack_count"
)
DYING_NOTE_NEW = (
    "since Linux 5.19 the dying list only holds entries whose destroy event waits for redelivery to a ctnetlink"
    " event listener"
)
DYING_NOTE_OLD = "entries that are being destroyed; they normally leave the list within moments"

_RELEASE_RE = re.compile(r"^(\d+)\.(\d+)")


def kernel_version(release: str) -> tuple[int, int]:
    """``(major, minor)`` of a kernel release such as ``6.18.44-fc-v782``; (0, 0) when unparseable."""
    match = _RELEASE_RE.match(release or "")
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def usage_percent(count: int | None, maximum: int | None) -> float | None:
    if count is None or not maximum:
        return None
    return round(100.0 * count / maximum, 2)


def parse_nfqueue_proc(text: str) -> list[dict[str, int]]:
    """Parse /proc/net/netfilter/nfnetlink_queue (one line per bound queue).

    Columns: queue number, peer portid, packets waiting, copy mode, copy range, packets dropped
    because the queue was full, packets dropped because netlink delivery failed, last packet id, 1.
    """
    queues = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8 or not all(field.isdigit() for field in fields[:8]):
            continue
        queues.append(
            {
                "queue": int(fields[0]),
                "portid": int(fields[1]),
                "waiting": int(fields[2]),
                "copy_mode": int(fields[3]),
                "copy_range": int(fields[4]),
                "dropped": int(fields[5]),
                "user_dropped": int(fields[6]),
            }
        )
    return queues


def read_nfqueue(path: str = NFQUEUE_PROC) -> list[dict[str, int]] | None:
    """The NFQUEUE queues of this namespace, or None when nfnetlink_queue is not loaded."""
    try:
        with open(path, encoding="ascii") as handle:
            return parse_nfqueue_proc(handle.read())
    except OSError:
        return None


def _optional_int_key(key: str, reader: t.Callable[[str], str]) -> int | None:
    try:
        return int(reader(key))
    except (ConntrackModuleError, ValueError):
        return None


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
        limit = _threshold_for_unlisted(counted, thresholds)
        changing = table_changing(facts, thresholds)
        result["table_changing"] = changing["changing"]
        result["interrupted"] = changing["interrupted"]
        if changing["changing"]:
            pass
        elif value >= limit and value > 0:
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
                findings.append({"code": "unconfirmed_held_by_nfqueue", "message": text})
            else:
                if nfqueue is not None:
                    text += " No NFQUEUE holds packets at the moment; look for other places that hold packets (tc, delays)."
                findings.append({"code": "unlisted_entries", "message": text})

    dying_listed = dying.get("listed")
    if dying_listed is not None and dying_listed >= max(1, int(thresholds["dying"])):
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
        findings.append({"code": "dying_entries_pinned", "message": text})

    usage = facts.get("usage_percent")
    if usage is not None and usage >= float(thresholds["usage_percent"]):
        findings.append(
            {
                "code": "table_near_max",
                "message": (
                    f"The table holds {count} entries, {usage}% of nf_conntrack_max ({facts.get('max')}): when it is"
                    " full the kernel drops new connections (stats drop/early_drop, 'table full, dropping packet')."
                ),
            }
        )

    if findings:
        result["diagnosis"] = " ".join([finding["message"] for finding in findings] + ([changing["text"]] if changing["text"] else []))
    elif changing["changing"]:
        result["diagnosis"] = changing["text"]
    elif result["value"] is None:
        result["diagnosis"] = "No problem found in what was gathered (the table was not listed, so counts were not compared)."
    else:
        result["diagnosis"] = (
            f"No problem found: {result['listed']} of {result['counted']} counted entries are listed"
            f" (difference {result['value']}, within the threshold)."
        )
    return result


def _dump_error(exc: NetlinkError, what: str) -> ConntrackModuleError:
    if exc.errno == errno.EPERM:
        return ConntrackModuleError(
            f"cannot dump the {what} over ctnetlink: the kernel refused the request (EPERM); this needs CAP_NET_ADMIN"
            " in the network namespace (run as root, with become)",
            errno=exc.errno,
        )
    return ConntrackModuleError(f"cannot dump the {what} over ctnetlink: {exc}", errno=exc.errno)


_MISSING_SUBSYSTEM = (errno.EPROTONOSUPPORT, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOENT)


class Gatherer:
    """Runs the dumps of one gather on one socket, loading nf_conntrack_netlink once if needed."""

    def __init__(self, load_module: t.Callable[[str], bool] | None, open_socket: t.Callable[[], t.Any] = CtnetlinkSocket) -> None:
        self.load_module = load_module
        self.open_socket = open_socket
        self.loaded_module: str | None = None
        self.sock: t.Any = None

    def _try_load(self) -> bool:
        if self.loaded_module is not None or self.load_module is None:
            return False
        if self.load_module(CTNETLINK_MODULE):
            self.loaded_module = CTNETLINK_MODULE
            return True
        return False

    def _socket(self) -> t.Any:
        if self.sock is None:
            try:
                self.sock = self.open_socket()
            except NetlinkError as exc:
                if exc.errno in _MISSING_SUBSYSTEM and self._try_load():
                    self.sock = self.open_socket()
                else:
                    raise ConntrackModuleError(
                        f"{exc}: the kernel has no nfnetlink (CONFIG_NETFILTER_NETLINK) or it cannot be loaded",
                        errno=exc.errno,
                    ) from exc
        return self.sock

    def call(self, what: str, func: t.Callable[[t.Any], t.Any]) -> t.Any:
        """Run ``func(socket)``; on a missing-subsystem error load nf_conntrack_netlink once and retry."""
        try:
            return func(self._socket())
        except NetlinkError as exc:
            if exc.errno in _MISSING_SUBSYSTEM and self._try_load():
                self.close()  # start again on a fresh socket now that the subsystem is registered
                try:
                    return func(self._socket())
                except NetlinkError as exc2:
                    raise _dump_error(exc2, what) from exc2
            if exc.errno in _MISSING_SUBSYSTEM:
                raise ConntrackModuleError(
                    f"cannot dump the {what}: ctnetlink is not available ({exc}); the kernel module {CTNETLINK_MODULE}"
                    " is not loaded and could not be loaded",
                    errno=exc.errno,
                ) from exc
            raise _dump_error(exc, what) from exc

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _list_facts(result: t.Any, include_entries: bool, note: str | None = None) -> dict[str, t.Any]:
    facts: dict[str, t.Any] = {"dumpable": True, "listed": result.listed}
    facts.update(summarize_counts(result.counts, protocol_name, family_name))
    if note:
        facts["note"] = note
    if result.interrupted:
        facts["interrupted"] = True
    if include_entries:
        facts["entries"] = result.entries
        facts["truncated"] = result.listed > len(result.entries)
    return facts


def gather(
    *,
    lists: t.Sequence[str] = LISTS,
    family: int | None = None,
    include_entries: bool = False,
    max_entries: int = 20,
    summary_only: bool = False,
    thresholds: dict[str, t.Any] | None = None,
    netns: str | None = None,
    kernel_release: str | None = None,
    read: t.Callable[[str], str] = read_key,
    load_module: t.Callable[[str], bool] | None = None,
    open_socket: t.Callable[[], t.Any] = CtnetlinkSocket,
    nfqueue_reader: t.Callable[[], list[dict[str, int]] | None] = read_nfqueue,
    sleep: t.Callable[[float], t.Any] = time.sleep,
) -> tuple[dict[str, t.Any], str | None]:
    """Gather the facts; returns ``(facts, loaded kernel module or None)``.

    ``summary_only`` reads three sysctls and nothing else. Otherwise the requested ``lists`` are
    streamed over one ctnetlink socket, the per-CPU statistics are read, and the count is read
    again after the table dump and at the end (``count_samples``) so that :func:`diagnose` can tell a
    stable gap from a table that changed while it was read. When the comparison points at unlisted
    entries, the count is read :data:`CONFIRM_READS` more times, :data:`CONFIRM_INTERVAL` seconds
    apart, to confirm that the table stood still.
    """
    limits = dict(DEFAULT_THRESHOLDS)
    limits.update({k: v for k, v in (thresholds or {}).items() if v is not None})
    release = kernel_release if kernel_release is not None else os.uname().release
    version = kernel_version(release)
    facts: dict[str, t.Any] = {
        "gathered_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "kernel": release,
        "netns": netns,
        "summary_only": summary_only,
        "family": family_name(family) if family else None,
    }
    sources: dict[str, str] = {}
    facts["sources"] = sources

    try:
        count = int(read(COUNT_KEY))
    except ConntrackModuleError as exc:
        if not os.path.exists(key_path(COUNT_KEY)):
            facts.update(loaded=False, count=0, max=None, buckets=None, usage_percent=None)
            facts["discrepancy"] = {
                "value": None,
                "counted": None,
                "listed": None,
                "findings": [],
                "diagnosis": "Connection tracking is not active in this network namespace (nf_conntrack is not loaded).",
            }
            return facts, None
        raise exc
    except ValueError as exc:
        raise ConntrackModuleError(f"{COUNT_KEY} is not a number: {exc}") from exc
    facts["loaded"] = True
    facts["count"] = count
    facts["max"] = _optional_int_key(MAX_KEY, read)
    facts["buckets"] = _optional_int_key(BUCKETS_KEY, read)
    facts["usage_percent"] = usage_percent(count, facts["max"])
    sources.update(count=f"sysctl {COUNT_KEY}", max=f"sysctl {MAX_KEY}", buckets=f"sysctl {BUCKETS_KEY}")
    if summary_only:
        facts["discrepancy"] = diagnose(facts, limits, None)
        return facts, None

    samples = [count]
    facts["count_samples"] = samples
    nl_family = family or 0
    decode = (lambda buf, off, length: decode_ct_entry(buf, off, length, protocol_name)) if include_entries else None
    gatherer = Gatherer(load_module, open_socket)
    try:
        if "table" in lists:
            result = gatherer.call(
                "conntrack table",
                lambda s: s.dump_conntrack(IPCTNL_MSG_CT_GET, nl_family, max_entries, decode),
            )
            facts["table"] = _list_facts(result, include_entries)
            sources["table"] = SOURCE_TABLE
            between = _optional_int_key(COUNT_KEY, read)
            if between is not None:
                samples.append(between)
        if "unconfirmed" in lists:
            if version >= UNCONFIRMED_GONE:
                facts["unconfirmed"] = {"dumpable": False, "listed": None, "reason": UNCONFIRMED_REASON}
                sources["unconfirmed"] = "not dumpable on this kernel"
            else:
                facts["unconfirmed"] = _optional_list(
                    gatherer, "unconfirmed list", IPCTNL_MSG_CT_GET_UNCONFIRMED, nl_family, max_entries, decode, include_entries
                )
                sources["unconfirmed"] = SOURCE_UNCONFIRMED
        if "dying" in lists:
            note = DYING_NOTE_NEW if version >= UNCONFIRMED_GONE else DYING_NOTE_OLD
            facts["dying"] = _optional_list(gatherer, "dying list", IPCTNL_MSG_CT_GET_DYING, nl_family, max_entries, decode, include_entries, note)
            sources["dying"] = SOURCE_DYING
        if "expect" in lists:
            by_family = gatherer.call("expectation table", lambda s: s.count_expectations(nl_family))
            facts["expect"] = {
                "dumpable": True,
                "listed": sum(by_family.values()),
                "by_family": {family_name(k): v for k, v in sorted(by_family.items())},
            }
            sources["expect"] = SOURCE_EXPECT
        rows = gatherer.call("per-CPU statistics", lambda s: s.stats_cpu())
        facts["stats"] = {"per_cpu": rows, "total": sum_stats(rows)}
        sources["stats"] = SOURCE_STATS
    finally:
        gatherer.close()

    after = _optional_int_key(COUNT_KEY, read)
    if after is not None:
        samples.append(after)
    facts["count_after"] = after if after is not None else count
    nfqueue = nfqueue_reader()
    if nfqueue is not None:
        facts["nfqueue"] = nfqueue
        sources["nfqueue"] = NFQUEUE_PROC
    facts["discrepancy"] = diagnose(facts, limits, nfqueue)
    if any(f["code"] in UNLISTED_CODES for f in facts["discrepancy"]["findings"]):
        # Before blaming a holder of unconfirmed entries, make sure the table stands still: a table that is
        # flushed and refilled many times a second can read the same count before and after a dump by chance.
        for dummy in range(CONFIRM_READS):
            sleep(CONFIRM_INTERVAL)
            again = _optional_int_key(COUNT_KEY, read)
            if again is not None:
                samples.append(again)
        facts["discrepancy"] = diagnose(facts, limits, nfqueue)
    return facts, gatherer.loaded_module


def _optional_list(
    gatherer: Gatherer,
    what: str,
    msg: int,
    nl_family: int,
    max_entries: int,
    decode: t.Any,
    include_entries: bool,
    note: str | None = None,
) -> dict[str, t.Any]:
    """Dump the dying or unconfirmed list; a kernel that cannot dump it yields ``dumpable: false``."""
    try:
        result = gatherer.call(what, lambda s: s.dump_conntrack(msg, nl_family, max_entries, decode))
    except ConntrackModuleError as exc:
        if exc.details.get("errno") in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOENT):
            return {"dumpable": False, "listed": None, "reason": f"this kernel cannot dump the {what}: {exc.msg}"}
        raise
    return _list_facts(result, include_entries, note)


__all__ = (
    "COUNT_KEY",
    "MAX_KEY",
    "BUCKETS_KEY",
    "NFQUEUE_PROC",
    "CTNETLINK_MODULE",
    "LISTS",
    "DEFAULT_THRESHOLDS",
    "UNCONFIRMED_REASON",
    "DYING_NOTE_NEW",
    "DYING_NOTE_OLD",
    "UNLISTED_CODES",
    "CONFIRM_READS",
    "CONFIRM_INTERVAL",
    "kernel_version",
    "usage_percent",
    "count_samples",
    "table_changing",
    "parse_nfqueue_proc",
    "read_nfqueue",
    "diagnose",
    "Gatherer",
    "gather",
)
