# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The evidence collector of a debug window: nfnetlink_log in every debugged namespace, with budgets.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

What is counted.
    Log events: one each time conntrack judged a packet invalid and called the logger
    (``nf_l4proto_log_invalid``). That is not one per packet sent: a packet is judged at every
    conntrack hook it passes, and the host's own answers can be invalid too. Measured on 6.18:
    20,000 SYN+FIN packets over a veth pair give 20,000 events (the receiver's PREROUTING). Sent to
    127.0.0.1 inside a namespace they give 80,000: each SYN+FIN is judged in OUTPUT and again in
    PREROUTING when loopback delivers it (40,000 "invalid tcp flag combination"), and the RST that
    the closed port sends back is judged "invalid new" at the same two hooks (40,000), unless a rule
    drops the invalid SYN+FIN first. With ``nf_conntrack_log_invalid=255`` the summed ``invalid``
    counter of ``conntrack -S`` rose by exactly the number of events in each of these runs (80,000
    for the loopback run). It can rise by more where the kernel rejects a packet without logging it
    (some paths of older kernels only have a ``pr_debug``), never by less.

One socket per namespace.
    A netlink socket stays in the namespace it was created in, so the collector enters each
    namespace (setns on an fd of /run/netns/NAME or /proc/PID/ns/net), creates and binds its socket,
    resolves interface names there, and returns. It then polls all sockets from its own namespace.

Bounded cost. Kernel memory: at most ``rcvbuf`` (64 MiB, about 80,000 queued events) per namespace,
used only while the collector lags. Process: about 20 MiB RSS whatever the number of events (measured
with 20,000 and 200,000). Disk: the aggregate (a few KiB: bounded tables) and per namespace a pcapng of
at most (``max_keys`` + 1) x ``samples_per_reason`` packets of at most ``copy_range`` bytes plus about
60 bytes each (about 420 KiB with the defaults), plus one such bound for each restart of the collector.

Budgets end the window: packets captured, events per second over ``rate_interval`` seconds, the
collector's CPU share over ``cpu_interval`` seconds, and (when ``watch_kmsg``) kernel-log lines per
second read from /dev/kmsg. The first one exceeded is written to the aggregate (name, value, limit,
time), ``on_budget_exceeded`` is called with it, and the collector stops.
"""

from __future__ import annotations

import dataclasses
import os
import re
import select
import signal
import socket
import time
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._capture_aggregate import (
    COUNTED,
    SCHEMA,
    NamespaceTally,
    classification_key,
    classify,
    process_start_ticks,
    read_aggregate,
    write_json_atomic,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._capture_budget import (
    BudgetWatch,
    KmsgWatch,
    cpu_seconds,
    utc,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._capture_config import CaptureConfig
from ansible_collections.netfilter.conntrack.plugins.module_utils._netns import InNetns, open_netns
from ansible_collections.netfilter.conntrack.plugins.module_utils._nflog import (
    GroupTaken,
    NflogSocket,
    Record,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._pcapng import PcapngWriter

TICK = 0.1
# The longest the loop sleeps with nothing to read: it wakes for a datagram, a kernel-log line, a signal (through
# signal.set_wakeup_fd) or the next aggregate write, and at least this often for a deadline or a stop set by
# another thread. An idle collector used to wake every TICK: about 1 % of a CPU per host for the whole window.
IDLE_WAIT = 1.0
# Asks a running collector to write its aggregate within about two ticks (collect sends it; see
# _window_capture.fresh_aggregate). A collector announces it in its aggregate's flush_signal: one without the handler
# (run_collector's handle_signals=False) would be ended by it.
FLUSH_SIGNAL = signal.SIGUSR1
DRAIN_PER_TICK = 4096  # datagrams per socket between two budget checks
CLASSIFY_CACHE = 4096
_SAFE_LABEL_RE = re.compile(r"[^A-Za-z0-9_.-]")


class _Source:
    """One namespace: its socket, interface names, pcapng and tally."""

    def __init__(self, tally: NamespaceTally) -> None:
        self.tally = tally
        self.sock: NflogSocket | None = None
        self.netns_fd: int | None = None
        self.netns_path = ""
        self.ifnames: dict[int, str] = {}
        self.ifnames_refreshed = 0.0
        self.pcap: PcapngWriter | None = None
        self._classified: dict[tuple[t.Any, ...], dict[str, str]] = {}

    def classify(self, record: Record) -> dict[str, str]:
        """classify() with a bounded cache: a flood repeats few reasons, peers and interfaces."""
        key = classification_key(record)
        fields = self._classified.get(key)
        if fields is None:
            if len(self._classified) >= CLASSIFY_CACHE:
                self._classified.clear()
            fields = self._classified[key] = classify(record, self.ifname)
        return fields

    def ifname(self, index: int | None) -> str:
        if index is None:
            return ""
        name = self.ifnames.get(index)
        if name is None and time.monotonic() - self.ifnames_refreshed > 1.0:
            self.refresh_ifnames()  # an interface created during the window
            name = self.ifnames.get(index)
        return name or "if%d" % index

    def refresh_ifnames(self) -> None:
        self.ifnames_refreshed = time.monotonic()
        with InNetns(self.netns_fd, self.netns_path):
            self.ifnames = dict(socket.if_nameindex())

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        if self.pcap is not None:
            self.pcap.close()
        if self.netns_fd is not None:
            os.close(self.netns_fd)


def _open_source(config: CaptureConfig, label: str, netns: str | None) -> _Source:
    source = _Source(NamespaceTally(label, netns, config.max_keys, config.max_peers))
    tally = source.tally
    try:
        if netns is not None:
            source.netns_fd, source.netns_path = open_netns(netns)
        with InNetns(source.netns_fd, source.netns_path):
            source.sock = NflogSocket(config.group, config.rcvbuf)
            source.ifnames = dict(socket.if_nameindex())
        source.ifnames_refreshed = time.monotonic()
        source.sock.bind(copy_range=config.copy_range)
        tally.rcvbuf = source.sock.rcvbuf
        if config.pcap_dir is not None and config.samples_per_reason > 0:
            tally.pcapng = os.path.join(config.pcap_dir, _SAFE_LABEL_RE.sub("_", label) + ".pcapng")
            source.pcap = PcapngWriter(tally.pcapng, label, config.copy_range)
        tally.status = "capturing"
    except GroupTaken as exc:
        tally.status, tally.error = "group_taken", str(exc)
    except Exception as exc:  # one namespace that cannot be captured must not stop the others
        tally.status, tally.error = "error", "%s: %s" % (type(exc).__name__, exc)
    if tally.status != "capturing" and source.sock is not None:
        source.sock.close()  # unbinds only a group this socket had bound
        source.sock = None
    return source


class _Collector:
    def __init__(self, config: CaptureConfig) -> None:
        self.config = config
        self.started = time.time()
        self.pid = os.getpid()
        self.pid_start_ticks = process_start_ticks(self.pid)
        self.state = "running"
        self.stopped_by: str | None = None
        self.budget: dict[str, t.Any] | None = None
        self.callback_seconds: float | None = None
        self.sources: list[_Source] = []
        self.kmsg: KmsgWatch | None = None
        self.stop_requested = False
        # The monotonic time of the last SIGUSR1 not yet answered: collect asks for a write instead of waiting for the
        # next one of flush_interval (see FLUSH_SIGNAL).
        self.flush_requested_at: float | None = None
        self.answers_flush_signal = False
        # The pipe signal.set_wakeup_fd writes to, so that a signal ends the loop's poll at once (the loop polls the
        # read end), and the wakeup fd it replaced.
        self.wakeup_fd: int | None = None
        self.wakeup_write_fd: int | None = None
        self.earlier_wakeup_fd = -1
        self.restarts = 0

    def resume(self, previous: dict[str, t.Any] | None) -> None:
        """Carry on from the aggregate of a dead collector of the same window (see CaptureConfig.window_id)."""
        if not previous or self.config.window_id is None or previous.get("window_id") != self.config.window_id:
            return
        if previous.get("state") != "running":
            return  # a capture that ended (budget, signal, deadline) is finished, not resumed
        gap = max(self.started - float(previous.get("heartbeat") or self.started), 0.0)
        self.restarts = int(previous.get("restarts") or 0) + 1
        earlier = {spot.get("label"): spot for spot in previous.get("namespaces") or []}
        for source in self.sources:
            if source.tally.label in earlier:
                source.tally.resume(earlier[source.tally.label], gap)

    def events(self) -> int:
        return sum(source.tally.events for source in self.sources)

    def handle(self, source: _Source, room: int | None) -> None:
        """Read what the socket holds, up to ``room`` events (None: no limit) so max_packets is exact."""
        sock, tally, per_reason = source.sock, source.tally, self.config.samples_per_reason
        if sock is None:
            return
        start = tally.events
        for _datagram in range(DRAIN_PER_TICK):
            if room is not None and tally.events - start >= room:
                break
            overruns = sock.overruns
            records = sock.receive()
            if sock.overruns != overruns:
                tally.overrun_since_last_event = True
                continue
            if not records:
                break
            tally.overrun_since_last_event = False
            for record in records:
                fields = source.classify(record)
                tally.count(fields)
                if source.pcap is not None and tally.wants_sample(fields["reason"], per_reason):
                    source.pcap.add(record.payload, fields["reason_text"], record.timestamp)
        tally.overruns, tally.seq_lost, tally.unnumbered = sock.overruns, sock.sequence.lost, sock.sequence.unnumbered
        tally.socket_drops = sock.drops()

    def aggregate(self) -> dict[str, t.Any]:
        now = time.time()
        usage = _resource_usage()
        return {
            "schema": SCHEMA,
            "counted": COUNTED,
            "state": self.state,
            "stopped_by": self.stopped_by,
            "pid": self.pid,
            "pid_start_ticks": self.pid_start_ticks,
            "flush_signal": FLUSH_SIGNAL.name if self.answers_flush_signal else None,
            "started": self.started,
            "started_utc": utc(self.started),
            "heartbeat": now,
            "heartbeat_utc": utc(now),
            "group": self.config.group,
            "window_id": self.config.window_id,
            "restarts": self.restarts,
            "events": self.events(),
            "budgets": dataclasses.asdict(self.config.budgets),
            "budget_exceeded": self.budget,
            "callback_seconds": self.callback_seconds,
            "kmsg_lines": self.kmsg.lines if self.kmsg is not None else None,
            "kmsg_lines_read": self.kmsg.read if self.kmsg is not None else None,
            "cpu_seconds": round(cpu_seconds(), 3),
            "max_rss_kib": usage,
            "namespaces": [source.tally.as_dict() for source in self.sources],
        }

    def flush(self) -> dict[str, t.Any]:
        for source in self.sources:
            if source.sock is not None:  # drops after the last readable moment (the tail) count too
                source.tally.socket_drops = source.sock.drops()
        data = self.aggregate()
        write_json_atomic(self.config.aggregate_path, data)
        return data


def _resource_usage() -> int | None:
    try:
        import resource  # not on every platform the controller imports module_utils on
    except ImportError:
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _install_signals(collector: _Collector) -> dict[int, t.Any]:
    """SIGTERM and SIGINT stop the loop, FLUSH_SIGNAL asks for a write; each wakes the loop's poll at once.
    Returns what _restore_signals puts back."""
    def request_stop(_signum: int, _frame: t.Any) -> None:
        collector.stop_requested = True

    def request_flush(_signum: int, _frame: t.Any) -> None:
        collector.flush_requested_at = time.monotonic()

    previous = {signum: signal.signal(signum, request_stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    previous[FLUSH_SIGNAL] = signal.signal(FLUSH_SIGNAL, request_flush)
    collector.answers_flush_signal = True
    read_end, write_end = os.pipe()
    for end in (read_end, write_end):
        os.set_blocking(end, False)
    collector.wakeup_fd, collector.wakeup_write_fd = read_end, write_end
    collector.earlier_wakeup_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    return previous


def _restore_signals(collector: _Collector, previous: dict[int, t.Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    if collector.wakeup_fd is not None:
        signal.set_wakeup_fd(collector.earlier_wakeup_fd)
        for end in (collector.wakeup_fd, collector.wakeup_write_fd):
            os.close(end)
        collector.wakeup_fd = collector.wakeup_write_fd = None


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _loop(collector: _Collector, on_budget_exceeded: t.Callable[[dict[str, t.Any]], t.Any] | None) -> None:
    config = collector.config
    watch = BudgetWatch(config.budgets)
    poller = select.poll()
    by_fd = {}
    for source in collector.sources:
        if source.sock is not None:
            poller.register(source.sock.fileno(), select.POLLIN)
            by_fd[source.sock.fileno()] = source
    for fd in (collector.wakeup_fd, collector.kmsg.fd if collector.kmsg is not None else None):
        if fd is not None:
            poller.register(fd, select.POLLIN)
    next_flush = time.monotonic()
    # The rates' first point, before any event is read: a burst that is already queued when the loop starts would
    # otherwise be the baseline, and never count as a rate.
    watch.check(time.time(), collector.events(), collector.kmsg.lines if collector.kmsg else None)
    while not collector.stop_requested:
        wait = min(max(next_flush - time.monotonic(), 0.0), IDLE_WAIT)
        for fd, _event in poller.poll(wait * 1000):
            if fd in by_fd:
                limit = config.budgets.max_packets
                collector.handle(by_fd[fd], None if limit is None else max(limit + 1 - collector.events(), 0))
            elif fd == collector.wakeup_fd:
                _drain(fd)
        if collector.kmsg is not None:
            collector.kmsg.poll()
        now = time.time()
        budget = watch.check(now, collector.events(), collector.kmsg.lines if collector.kmsg else None)
        if budget is not None:
            collector.budget, collector.state, collector.stopped_by = budget, "budget_exceeded", "budget"
            collector.flush()
            if on_budget_exceeded is not None:
                on_budget_exceeded(budget)
            collector.callback_seconds = round(time.time() - budget["at"], 4)
            return
        if config.deadline is not None and now >= config.deadline:
            collector.stopped_by = "deadline"
            return
        if collector.flush_requested_at is not None:
            # A full poll after the request, so that what was queued when it came is counted in the write.
            next_flush = min(next_flush, collector.flush_requested_at + TICK)
            collector.flush_requested_at = None
        if time.monotonic() >= next_flush:
            collector.flush()
            next_flush = time.monotonic() + config.flush_interval
    collector.stopped_by = "signal"


def run_collector(
    config: CaptureConfig,
    on_budget_exceeded: t.Callable[[dict[str, t.Any]], t.Any] | None = None,
    handle_signals: bool = True,
) -> dict[str, t.Any]:
    """Capture until SIGTERM/SIGINT, the deadline or a budget; return the final aggregate (also written).

    Namespaces whose group is taken (``status: group_taken``) or that cannot be opened (``error``) are
    reported and left alone; the collector runs as long as one namespace captures.
    """
    config.check()
    collector = _Collector(config)
    previous = _install_signals(collector) if handle_signals else {}
    try:
        collector.sources = [_open_source(config, label, netns) for label, netns in config.namespaces]
        collector.resume(read_aggregate(config.aggregate_path))
        if config.watch_kmsg:
            collector.kmsg = KmsgWatch()
        if collector.kmsg is not None or any(source.sock is not None for source in collector.sources):
            collector.flush()
            _loop(collector, on_budget_exceeded)
        else:
            collector.stopped_by = "nothing_to_capture"
        if collector.state == "running":
            collector.state = "stopped"
        return collector.flush()
    finally:
        for source in collector.sources:
            source.close()
        if collector.kmsg is not None:
            collector.kmsg.close()
        _restore_signals(collector, previous)
