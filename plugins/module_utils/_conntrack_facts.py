# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Gather conntrack counts, lists and statistics, and explain a count-vs-list discrepancy.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

:func:`gather` reads the sysctls and drives the ctnetlink client; :func:`diagnose` (``_conntrack_discrepancy.py``)
and the other helpers are pure functions over plain data so they can be tested without a kernel.
"""

from __future__ import annotations

import datetime
import errno
import os
import time
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack_discrepancy import (
    DEFAULT_THRESHOLDS,
    DYING_NOTE_NEW,
    DYING_NOTE_OLD,
    UNLISTED_CODES,
    count_samples,
    diagnose,
    table_changing,
)
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
from ansible_collections.netfilter.conntrack.plugins.module_utils._kernel_release import UNCONFIRMED_GONE, parse_release
from ansible_collections.netfilter.conntrack.plugins.module_utils._names import family_name, protocol_name
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl import key_path, read_key
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl_keys import KEY_BUCKETS, KEY_COUNT, KEY_MAX

NFQUEUE_PROC = "/proc/net/netfilter/nfnetlink_queue"
CTNETLINK_MODULE = "nf_conntrack_netlink"
LISTS = ("table", "unconfirmed", "dying", "expect")

SOURCE_TABLE = "ctnetlink dump (IPCTNL_MSG_CT_GET)"
SOURCE_DYING = "ctnetlink dump (IPCTNL_MSG_CT_GET_DYING)"
SOURCE_UNCONFIRMED = "ctnetlink dump (IPCTNL_MSG_CT_GET_UNCONFIRMED)"
SOURCE_EXPECT = "ctnetlink dump (IPCTNL_MSG_EXP_GET)"
SOURCE_STATS = "ctnetlink dump (IPCTNL_MSG_CT_GET_STATS_CPU)"

CONFIRM_READS = 5
CONFIRM_INTERVAL = 0.02

UNCONFIRMED_REASON = (
    "since Linux 5.19 the kernel no longer keeps a list of unconfirmed entries and always answers the dump with an"
    " empty list; unconfirmed entries are still counted in nf_conntrack_count"
)


def kernel_version(release: str) -> tuple[int, int]:
    """``(major, minor)`` of a kernel release such as ``6.18.44-fc-v782``; (0, 0) when unparseable."""
    version = parse_release(release)["version_tuple"]
    return (version[0], version[1]) if version else (0, 0)


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


def _read_counts(facts: dict[str, t.Any], read: t.Callable[[str], str]) -> int | None:
    """nf_conntrack_count, _max and _buckets into ``facts``; None when nf_conntrack is not loaded here."""
    try:
        count = int(read(KEY_COUNT))
    except ConntrackModuleError as exc:
        if not os.path.exists(key_path(KEY_COUNT)):
            facts.update(loaded=False, count=0, max=None, buckets=None, usage_percent=None)
            facts["discrepancy"] = {
                "value": None,
                "counted": None,
                "listed": None,
                "findings": [],
                "diagnosis": "Connection tracking is not active in this network namespace (nf_conntrack is not loaded).",
            }
            return None
        raise exc
    except ValueError as exc:
        raise ConntrackModuleError(f"{KEY_COUNT} is not a number: {exc}") from exc
    facts["loaded"] = True
    facts["count"] = count
    facts["max"] = _optional_int_key(KEY_MAX, read)
    facts["buckets"] = _optional_int_key(KEY_BUCKETS, read)
    facts["usage_percent"] = usage_percent(count, facts["max"])
    facts["sources"].update(count=f"sysctl {KEY_COUNT}", max=f"sysctl {KEY_MAX}", buckets=f"sysctl {KEY_BUCKETS}")
    return count


class _Dumps(t.NamedTuple):
    """What to dump and how: the requested lists, the family filter (0: all) and the entries to decode."""

    lists: t.Sequence[str]
    nl_family: int
    max_entries: int
    decode: t.Any
    include_entries: bool
    version: tuple[int, int]


def _dump_lists(gatherer: Gatherer, dumps: _Dumps, facts: dict[str, t.Any], read: t.Callable[[str], str]) -> None:
    """Dump the requested lists and the per-CPU statistics into ``facts``, reading the count after the table."""
    sources = facts["sources"]
    if "table" in dumps.lists:
        result = gatherer.call(
            "conntrack table",
            lambda s: s.dump_conntrack(IPCTNL_MSG_CT_GET, dumps.nl_family, dumps.max_entries, dumps.decode),
        )
        facts["table"] = _list_facts(result, dumps.include_entries)
        sources["table"] = SOURCE_TABLE
        between = _optional_int_key(KEY_COUNT, read)
        if between is not None:
            facts["count_samples"].append(between)
    if "unconfirmed" in dumps.lists:
        if dumps.version >= UNCONFIRMED_GONE:
            facts["unconfirmed"] = {"dumpable": False, "listed": None, "reason": UNCONFIRMED_REASON}
            sources["unconfirmed"] = "not dumpable on this kernel"
        else:
            facts["unconfirmed"] = _optional_list(gatherer, "unconfirmed list", IPCTNL_MSG_CT_GET_UNCONFIRMED, dumps)
            sources["unconfirmed"] = SOURCE_UNCONFIRMED
    if "dying" in dumps.lists:
        note = DYING_NOTE_NEW if dumps.version >= UNCONFIRMED_GONE else DYING_NOTE_OLD
        facts["dying"] = _optional_list(gatherer, "dying list", IPCTNL_MSG_CT_GET_DYING, dumps, note)
        sources["dying"] = SOURCE_DYING
    if "expect" in dumps.lists:
        by_family = gatherer.call("expectation table", lambda s: s.count_expectations(dumps.nl_family))
        facts["expect"] = {
            "dumpable": True,
            "listed": sum(by_family.values()),
            "by_family": {family_name(k): v for k, v in sorted(by_family.items())},
        }
        sources["expect"] = SOURCE_EXPECT
    rows = gatherer.call("per-CPU statistics", lambda s: s.stats_cpu())
    facts["stats"] = {"per_cpu": rows, "total": sum_stats(rows)}
    sources["stats"] = SOURCE_STATS


def _diagnose_after_dumps(facts: dict[str, t.Any], limits: dict[str, t.Any], read: t.Callable[[str], str],
                          nfqueue_reader: t.Callable[[], list[dict[str, int]] | None], sleep: t.Callable[[float], t.Any]) -> None:
    """Read the count a last time and the NFQUEUE queues, then diagnose; confirm a diagnosis that blames unlisted entries.

    A table that is flushed and refilled many times a second can read the same count before and after a
    dump by chance: before blaming a holder of unconfirmed entries, the count is read :data:`CONFIRM_READS`
    more times and the discrepancy diagnosed again.
    """
    after = _optional_int_key(KEY_COUNT, read)
    if after is not None:
        facts["count_samples"].append(after)
    facts["count_after"] = after if after is not None else facts["count"]
    nfqueue = nfqueue_reader()
    if nfqueue is not None:
        facts["nfqueue"] = nfqueue
        facts["sources"]["nfqueue"] = NFQUEUE_PROC
    facts["discrepancy"] = diagnose(facts, limits, nfqueue)
    if not any(f["code"] in UNLISTED_CODES for f in facts["discrepancy"]["findings"]):
        return
    for dummy in range(CONFIRM_READS):
        sleep(CONFIRM_INTERVAL)
        again = _optional_int_key(KEY_COUNT, read)
        if again is not None:
            facts["count_samples"].append(again)
    facts["discrepancy"] = diagnose(facts, limits, nfqueue)


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
    facts: dict[str, t.Any] = {
        "gathered_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "kernel": release,
        "netns": netns,
        "summary_only": summary_only,
        "family": family_name(family) if family else None,
        "sources": {},
    }
    count = _read_counts(facts, read)
    if count is None:
        return facts, None
    if summary_only:
        facts["discrepancy"] = diagnose(facts, limits, None)
        return facts, None

    facts["count_samples"] = [count]
    decode = (lambda buf, off, length: decode_ct_entry(buf, off, length, protocol_name)) if include_entries else None
    gatherer = Gatherer(load_module, open_socket)
    try:
        _dump_lists(gatherer, _Dumps(lists, family or 0, max_entries, decode, include_entries, kernel_version(release)), facts, read)
    finally:
        gatherer.close()

    _diagnose_after_dumps(facts, limits, read, nfqueue_reader, sleep)
    return facts, gatherer.loaded_module


def _optional_list(gatherer: Gatherer, what: str, msg: int, dumps: _Dumps, note: str | None = None) -> dict[str, t.Any]:
    """Dump the dying or unconfirmed list; a kernel that cannot dump it yields ``dumpable: false``."""
    try:
        result = gatherer.call(what, lambda s: s.dump_conntrack(msg, dumps.nl_family, dumps.max_entries, dumps.decode))
    except ConntrackModuleError as exc:
        if exc.details.get("errno") in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOENT):
            return {"dumpable": False, "listed": None, "reason": f"this kernel cannot dump the {what}: {exc.msg}"}
        raise
    return _list_facts(result, dumps.include_entries, note)


__all__ = (
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
