# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Budgets that end a capture: packets, packets per second, the collector's CPU share, kernel-log lines per second.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

Rates are measured over a sliding interval (``rate_interval``, ``cpu_interval``, one second for the
kernel log) from samples the collector takes every tick, so a short burst inside one tick does not end
a window but a sustained one does within the interval. The first budget found exceeded is returned with
its name, value, limit and time.
"""

from __future__ import annotations

import collections
import dataclasses
import errno
import os
import time
import typing as t


@dataclasses.dataclass
class Budgets:
    """Limits that end the window; None switches one off."""

    max_packets: int | None = 1_000_000
    max_rate: float | None = 50_000.0
    rate_interval: float = 2.0
    max_cpu_share: float | None = 0.5
    cpu_interval: float = 5.0
    max_kmsg_lines_per_second: float | None = None


class KmsgWatch:
    """Kernel-log lines written from now on, all of them (the budget is on noise, whatever its source).

    Each /dev/kmsg record starts ``prio,seq,...``. The sequence numbers count the lines the kernel
    wrote even when the ring buffer overwrote them before they were read (EPIPE), so ``lines`` is
    exact. The records already in the ring are read once at the start, uncounted, for the baseline.
    """

    def __init__(self) -> None:
        self.lines = 0
        self.read = 0
        self._last_seq: int | None = None
        self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self.poll()
        self.lines = self.read = 0

    def poll(self) -> None:
        while True:
            try:
                record = os.read(self.fd, 8192)  # one record per read
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno != errno.EPIPE:
                    raise
                continue  # overwritten before we read them: the next sequence number counts them
            self.read += 1
            seq = _kmsg_seq(record)
            if seq is None or self._last_seq is None:
                self.lines += 1
            else:
                self.lines += max(seq - self._last_seq, 1)
            self._last_seq = seq if seq is not None else self._last_seq

    def close(self) -> None:
        os.close(self.fd)


def _kmsg_seq(record: bytes) -> int | None:
    fields = record.split(b";", 1)[0].split(b",")
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None


class Rate:
    """Increase of a counter per second over the last ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.points: collections.deque[tuple[float, float]] = collections.deque()

    def add(self, now: float, value: float) -> float | None:
        self.points.append((now, value))
        while len(self.points) > 2 and now - self.points[1][0] >= self.interval:
            self.points.popleft()
        first_time, first_value = self.points[0]
        if now <= first_time or now - first_time < self.interval:
            return None
        return (value - first_value) / (now - first_time)


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


class BudgetWatch:
    def __init__(self, budgets: Budgets) -> None:
        self.budgets = budgets
        self.rate = Rate(budgets.rate_interval)
        self.cpu = Rate(budgets.cpu_interval)
        self.kmsg = Rate(1.0)

    def check(self, now: float, events: int, kmsg_lines: int | None) -> dict[str, t.Any] | None:
        budgets = self.budgets
        found = []
        if budgets.max_packets is not None and events > budgets.max_packets:
            found.append(("max_packets", events, budgets.max_packets))
        rate = self.rate.add(now, events)
        if budgets.max_rate is not None and rate is not None and rate > budgets.max_rate:
            found.append(("max_rate", round(rate, 1), budgets.max_rate))
        share = self.cpu.add(now, cpu_seconds())
        if budgets.max_cpu_share is not None and share is not None and share > budgets.max_cpu_share:
            found.append(("max_cpu_share", round(share, 3), budgets.max_cpu_share))
        if kmsg_lines is not None:
            lines = self.kmsg.add(now, kmsg_lines)
            limit = budgets.max_kmsg_lines_per_second
            if limit is not None and lines is not None and lines > limit:
                found.append(("max_kmsg_lines_per_second", round(lines, 1), limit))
        if not found:
            return None
        name, value, limit = found[0]
        return {"name": name, "value": value, "limit": limit, "at": now, "at_utc": utc(now)}


def utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + ".%03dZ" % int(epoch % 1 * 1000)
