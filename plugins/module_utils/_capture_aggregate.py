# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The capture's aggregate: exact counts in bounded memory, written atomically, read back safely.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

Every table has a cap on distinct keys; events past the cap are counted under ``other``, so each
table's values always sum to the namespace's ``events``. The JSON therefore has the same size after
a thousand or a million events: at most ``max_keys`` keys per table (``max_peers`` for peers) and
namespace.

The aggregate (schema ``netfilter.conntrack.capture/1``, rewritten every second and at exit)::

    schema, counted (what one event is), state (running | stopped | budget_exceeded),
    stopped_by (signal | deadline | budget | nothing_to_capture | null while running),
    pid, pid_start_ticks, started, started_utc, heartbeat, heartbeat_utc, window_id, restarts,
    group, events (all namespaces), budgets (the limits), budget_exceeded (null or
    {name, value, limit, at, at_utc}), callback_seconds, kmsg_lines, kmsg_lines_read,
    cpu_seconds, max_rss_kib,
    namespaces: [{label, netns, status (capturing | group_taken | error), error, events,
                  by_reason, by_protocol, by_family, by_interface ("IN=x OUT=y"), by_peer,
                  loss {summary ("none" or "N event(s) lost in M socket overrun(s)..."), events_lost,
                        socket_drops, sequence_gaps, overruns, unnumbered, unobserved_seconds, exact},
                  pcapng (path or null), samples, samples_by_reason, rcvbuf}]

A collector killed by SIGKILL leaves ``state: running`` with a heartbeat that stops moving and a pid
that is gone (or belongs to another process: ``pid_start_ticks`` differs); collector_liveness() says
``dead`` for it.
"""

from __future__ import annotations

import json
import os
import socket
import time
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._invalid_log import normalise_reason
from ansible_collections.netfilter.conntrack.plugins.module_utils._names import family_name, protocol_name
from ansible_collections.netfilter.conntrack.plugins.module_utils._nflog import Record, split_prefix

SCHEMA = "netfilter.conntrack.capture/1"
OTHER = "other"
COUNTED = "log events: one per call of the logger by conntrack for a packet it judged invalid"
TABLES = ("by_reason", "by_protocol", "by_family", "by_interface", "by_peer")


def bounded_add(table: dict[str, int], key: str, cap: int) -> None:
    """Count ``key``; once ``cap`` distinct keys are held, new keys count under ``other``."""
    if key in table:
        table[key] += 1
    elif len(table) < cap or key == OTHER:
        table[key] = 1
    else:
        table[OTHER] = table.get(OTHER, 0) + 1


def _address(packet: bytes, version: int, outgoing: bool) -> str | None:
    if version == 4 and len(packet) >= 20:
        raw, family = (packet[16:20] if outgoing else packet[12:16]), socket.AF_INET
    elif version == 6 and len(packet) >= 40:
        raw, family = (packet[24:40] if outgoing else packet[8:24]), socket.AF_INET6
    else:
        return None
    return socket.inet_ntop(family, raw)


def classify(record: Record, ifname: t.Callable[[int | None], str]) -> dict[str, str]:
    """Reason, protocol, family, interfaces and peer of one event.

    The peer is the packet's source when it came in on an interface, its destination when the host
    sent it (no input interface): the other end either way.
    """
    number, reason_text = split_prefix(record.prefix)
    packet = record.payload
    version = packet[0] >> 4 if packet else 0
    if number is None and version == 4 and len(packet) >= 10:
        number = packet[9]
    elif number is None and version == 6 and len(packet) >= 7:
        number = packet[6]
    outgoing = record.indev is None and record.outdev is not None
    return {
        "reason": normalise_reason(reason_text) or "(no reason)",
        "reason_text": reason_text,
        "protocol": protocol_name(number) if number is not None else "unknown",
        "family": family_name(record.family),
        "interface": "IN=%s OUT=%s" % (ifname(record.indev), ifname(record.outdev)),
        "peer": _address(packet, version, outgoing) or "unknown",
    }


def classification_key(record: Record) -> tuple[t.Any, ...]:
    """What classify() reads from a record: equal keys give equal fields, so the result can be reused."""
    packet = record.payload
    if packet[:1] and packet[0] >> 4 == 6:
        header = packet[6:7] + packet[8:40]
    else:
        header = packet[:1] + packet[9:10] + packet[12:20]
    return record.prefix, record.family, record.indev, record.outdev, header


class NamespaceTally:
    """Exact, bounded counts of one namespace's events, and its capture state."""

    def __init__(self, label: str, path: str | None, max_keys: int, max_peers: int) -> None:
        self.label = label
        self.path = path
        self.status = "starting"
        self.error: str | None = None
        self.events = 0
        self.tables: dict[str, dict[str, int]] = {name: {} for name in TABLES}
        self.samples = 0
        self.sampled_by_reason: dict[str, int] = {}
        self.pcapng: str | None = None
        self.overruns = 0
        self.seq_lost = 0
        self.socket_drops: int | None = None
        self.unnumbered = 0
        self.overrun_since_last_event = False
        self.rcvbuf: int | None = None
        self.carried_lost = 0
        self.carried_overruns = 0
        self.unobserved_seconds = 0.0
        self._caps = {name: (max_peers if name == "by_peer" else max_keys) for name in TABLES}

    def resume(self, previous: dict[str, t.Any], unobserved_seconds: float) -> None:
        """Continue the counts of a collector that died (same window, same namespace label).

        Its losses are carried over; the time between its last heartbeat and this start was not
        observed, so events of that gap are neither counted nor known, and the loss is not exact.
        """
        self.events = int(previous.get("events") or 0)
        self.tables = {name: dict(previous.get(name) or {}) for name in TABLES}
        self.samples = int(previous.get("samples") or 0)
        self.sampled_by_reason = dict(previous.get("samples_by_reason") or {})
        loss = previous.get("loss") or {}
        self.carried_lost = int(loss.get("events_lost") or 0)
        self.carried_overruns = int(loss.get("overruns") or 0)
        self.unobserved_seconds = float(loss.get("unobserved_seconds") or 0.0) + unobserved_seconds

    def count(self, fields: dict[str, str]) -> None:
        self.events += 1
        tables = self.tables
        for name, key in (
            ("by_reason", fields["reason"]),
            ("by_protocol", fields["protocol"]),
            ("by_family", fields["family"]),
            ("by_interface", fields["interface"]),
            ("by_peer", fields["peer"]),
        ):
            bounded_add(tables[name], key, self._caps[name])

    def wants_sample(self, reason: str, per_reason: int) -> bool:
        """True for the first ``per_reason`` events of each reason (reasons beyond the cap share ``other``)."""
        key = reason if reason in self.sampled_by_reason or len(self.sampled_by_reason) < self._caps["by_reason"] else OTHER
        taken = self.sampled_by_reason.get(key, 0)
        if taken >= per_reason:
            return False
        self.sampled_by_reason[key] = taken + 1
        self.samples += 1
        return True

    def loss(self) -> dict[str, t.Any]:
        """Exact loss: the socket's drop counter where the kernel gives it, else the sequence gaps.

        Sequence gaps miss the events dropped after the last one received; the drop counter does not.
        """
        lost = self.carried_lost + (self.seq_lost if self.socket_drops is None else max(self.socket_drops, self.seq_lost))
        overruns = self.carried_overruns + self.overruns
        if lost == 0 and overruns == 0 and self.unnumbered == 0 and not self.unobserved_seconds:
            summary = "none"
        else:
            summary = "%d event(s) lost in %d socket overrun(s)" % (lost, overruns)
            if self.unobserved_seconds:
                summary += ", %.1f s not observed (collector restarted)" % self.unobserved_seconds
        tail_unknown = self.socket_drops is None and self.overrun_since_last_event
        return {
            "summary": summary,
            "events_lost": lost,
            "socket_drops": self.socket_drops,
            "sequence_gaps": self.seq_lost,
            "overruns": overruns,
            "unnumbered": self.unnumbered,
            "unobserved_seconds": round(self.unobserved_seconds, 3),
            "exact": not tail_unknown and self.unnumbered == 0 and not self.unobserved_seconds,
        }

    def as_dict(self) -> dict[str, t.Any]:
        data: dict[str, t.Any] = {
            "label": self.label,
            "netns": self.path,
            "status": self.status,
            "error": self.error,
            "events": self.events,
            "loss": self.loss(),
            "pcapng": self.pcapng,
            "samples": self.samples,
            "samples_by_reason": dict(self.sampled_by_reason),
            "rcvbuf": self.rcvbuf,
        }
        data.update({name: dict(sorted(table.items(), key=lambda item: (-item[1], item[0]))) for name, table in self.tables.items()})
        return data


def write_json_atomic(path: str, data: dict[str, t.Any]) -> None:
    """Write ``path`` (0600) through a new temp file beside it and rename: never half a file, never a symlink."""
    directory = os.path.dirname(os.path.abspath(path))
    temp = os.path.join(directory, ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    try:
        os.unlink(temp)  # left by a previous process with our pid; O_EXCL below refuses anything else
    except FileNotFoundError:
        pass
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, sort_keys=True, separators=(",", ":"))
        os.rename(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


def read_json_object(path: str) -> dict[str, t.Any] | None:
    """The JSON object at ``path``, or None when there is none or it is not an object (no symlinks followed)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd) as handle:
        try:
            data = json.load(handle)
        except ValueError:
            return None
    return data if isinstance(data, dict) else None


def read_aggregate(path: str) -> dict[str, t.Any] | None:
    """The aggregate at ``path``, or None when there is none or it is not ours (no symlinks followed)."""
    data = read_json_object(path)
    return data if data is not None and data.get("schema") == SCHEMA else None


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (field 22 of /proc/PID/stat); None if gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[19]) if len(fields) > 19 else None


def collector_liveness(aggregate: dict[str, t.Any] | None, now: float | None = None, stale_after: float = 5.0) -> str:
    """``running``, ``dead`` (killed: state still running but its process gone or silent) or ``finished``.

    The collector rewrites its aggregate every second with ``heartbeat`` (epoch seconds), ``pid`` and
    ``pid_start_ticks``. A process with that pid and start time that still beats is running. A pid
    reused by another process has another start time, so it does not pass for the collector.
    """
    if not aggregate:
        return "dead"
    if aggregate.get("state") != "running":
        return "finished"
    now = time.time() if now is None else now
    pid = aggregate.get("pid")
    alive = isinstance(pid, int) and process_start_ticks(pid) == aggregate.get("pid_start_ticks")
    fresh = isinstance(aggregate.get("heartbeat"), (int, float)) and now - aggregate["heartbeat"] <= stale_after
    return "running" if alive and fresh else "dead"
