# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Arm, inspect and cancel the automatic revert of the debug windows of one state directory.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

Two lines of defence, so that no single process or unit has to stay alive:

* Where systemd is PID 1, each window has a transient timer that elapses at a fixed time since the
  service manager started (``systemd-run --on-startup``, which a ``daemon-reload`` does not re-arm): a
  unit of PID 1, no resident process, so a thousand windows cost no memory. Beside them one periodic *sweep*
  timer per state directory reverts any window past its deadline whose own timer was lost (stopped,
  its unit removed, or re-armed late by a ``daemon-reload``), and stops itself when no window is left.
* Elsewhere one detached *watcher* process per state directory reverts every window at its deadline,
  whatever their number, and a *partner* process does the same; each starts the other again when it
  is gone. Both exit when no window is left.

Deadlines are on ``CLOCK_BOOTTIME`` (see ``_window_store``). Everything runs the program with the
interpreter that runs this code (``sys.executable``): the one Ansible uses for the host.

The per-window unit names and pid files are the ones release 0.2.0 used, so cancelling a window
cancels the automatic revert that an older release armed for it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
import os
import re
import shutil
import signal
import sys
import time
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import run_argv
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_store import (
    STATE_DIR,
    Store,
    boot_now,
    remaining_seconds,
)

UNIT_PREFIX = "netfilter-conntrack-revert-"
SWEEP_UNIT_PREFIX = "netfilter-conntrack-sweep"
# How late the sweep reverts a window whose own timer was lost, at most. The sweep first runs this long after the
# earliest deadline of the state directory's windows (at once for a window reverted before its enable confirmed),
# then every period until no window is left: a run every period for the whole window cost each host about 75 ms of
# CPU (a Python start) every 10 s, which on a machine of 100 containers took most of a CPU.
SWEEP_PERIOD_SECONDS = 10
WATCHER = "watcher"
PARTNER = "watcher-partner"
# The states in which ``systemctl is-active`` answers yes.
ACTIVE_STATES = ("active", "reloading")


def unit_name(ident: str) -> str:
    safe = ident if re.match(r"^[A-Za-z0-9_.-]+$", ident) else "h" + hashlib.sha256(ident.encode()).hexdigest()[:16]
    return UNIT_PREFIX + safe


def systemd_booted() -> bool:
    return os.path.isdir("/run/systemd/system") and shutil.which("systemd-run") is not None


_TIMESPAN_UNITS = {"y": 31557600.0, "month": 2629800.0, "w": 604800.0, "d": 86400.0, "h": 3600.0, "min": 60.0,
                   "s": 1.0, "ms": 1e-3, "us": 1e-6}
_TIMESPAN_RE = re.compile(r"(\d+(?:\.\d+)?)(y|month|w|d|h|min|ms|us|s)(?![a-z])")


def timespan_seconds(text: str) -> float | None:
    """Seconds in a time span as ``systemctl show`` prints one (``19h 29min 22.979033s``), or None for anything
    else (empty, ``infinity``)."""
    text = text.strip()
    parts = _TIMESPAN_RE.findall(text)
    if not parts or _TIMESPAN_RE.sub("", text).strip():
        return None
    return sum(float(number) * _TIMESPAN_UNITS[unit] for number, unit in parts)


def unit_states(*patterns: str) -> dict[str, str]:
    """The active state (active, inactive, failed...) of each loaded unit that matches one of the names or patterns,
    from one ``systemctl list-units`` call; a unit that is not loaded is not in it.

    Each systemctl call costs a host about 10 ms of CPU and a round trip to PID 1: arming a window asks once what
    is there instead of stopping and resetting units that, on most hosts, were never loaded.
    """
    if not shutil.which("systemctl"):
        return {}
    proc = run_argv(["systemctl", "list-units", "--all", "--full", "--plain", "--no-legend", *patterns])
    states = {}
    for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
        fields = line.split()
        if fields and fields[0] in ("\u25cf", "*"):
            fields = fields[1:]
        if len(fields) >= 3:
            states[fields[0]] = fields[2]
    return states


def process_argv(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().split(b"\0")
    except OSError:
        return None


class Scheduler:
    """The automatic revert of the windows of one state directory, run as ``interpreter program``."""

    def __init__(self, store: Store, program: str, interpreter: str = sys.executable,
                 use_systemd: t.Callable[[], bool] = systemd_booted) -> None:
        self._store = store
        self._program = program
        self._interpreter = interpreter
        self._use_systemd = use_systemd
        self._manager_started_at: float | None = None

    # ------------------------------------------------------------------ names and commands

    def _base_argv(self) -> list[str]:
        return [self._interpreter, self._program, f"--state-dir={self._store.directory}"]

    def revert_command(self, ident: str) -> list[str]:
        return self._base_argv() + ["revert", "--id", ident, "--scheduled"]

    @property
    def sweep_unit(self) -> str:
        """One sweep per state directory: the default one keeps a plain name, the others get a hash of theirs."""
        if os.path.abspath(self._store.directory) == STATE_DIR:
            return SWEEP_UNIT_PREFIX
        return SWEEP_UNIT_PREFIX + "-" + hashlib.sha256(self._store.directory.encode()).hexdigest()[:12]

    # ------------------------------------------------------------------ arming

    def arm(self, ident: str, deadline_boot: float, retry: bool = False, expired: bool = False) -> dict:
        """Arrange for the revert of ident at deadline_boot (CLOCK_BOOTTIME), replacing an earlier arrangement.

        A retry (from inside the running revert unit) needs a unit name of its own: the current one is busy. An
        expired window (reverted before its enable confirmed) is the sweep's to remove once that enable is gone.
        """
        delay = max(1, int(round(deadline_boot - time.clock_gettime(time.CLOCK_BOOTTIME))))
        if self._use_systemd():
            unit = unit_name(ident) + (f"-retry{int(time.time())}" if retry else "")
            own = [] if retry else [unit + ".timer", unit + ".service", unit + "-retry*.timer"]
            states = unit_states(*own, self.sweep_unit + ".timer", self.sweep_unit + ".service")
            if any(fnmatch.fnmatchcase(name, pattern) for name in states for pattern in own):
                run_argv(["systemctl", "stop", unit + ".timer", unit + "-retry*.timer"])
                run_argv(["systemctl", "reset-failed", unit + ".timer", unit + ".service"])
            self._systemd_run(["--unit=" + unit, self.elapse_option(delay), "--timer-property=AccuracySec=1s"],
                              self.revert_command(ident))
            self.ensure_sweep(0 if expired else min([delay] + self._other_deadlines_in(ident)), states)
            return {"kind": "systemd-timer", "unit": unit + ".timer", "in_seconds": delay,
                    "interpreter": self._interpreter}
        legacy = self.legacy_watcher_pid(ident)
        if legacy is not None:
            # 0.2.0's per-window watcher runs another program, which cannot read the snapshot just saved.
            _kill(legacy)
        pid = self.ensure_watchers()
        self._store.write_pid(ident, pid)
        return {"kind": "detached-process", "pid": pid, "in_seconds": delay, "interpreter": self._interpreter}

    def elapse_option(self, delay: int) -> str:
        """When the timer elapses, as a time since the service manager started (OnStartupSec=).

        A relative OnActiveSec= timer is armed again by a ``daemon-reload`` (systemd 252 does: its countdown restarts,
        systemd issue 31914); a time since the manager's start is absolute and survives it. In a container that
        start is the container's, which OnBootSec= would not account for.
        """
        started = self._manager_started()
        if started <= 0:
            return f"--on-active={delay}s"
        return f"--on-startup={math.ceil(time.clock_gettime(time.CLOCK_MONOTONIC) + delay - started)}s"

    def _manager_started(self) -> float:
        """CLOCK_MONOTONIC seconds at which the service manager started, 0 when systemd does not say; asked once
        per process (a window's timer and the sweep are armed together)."""
        if self._manager_started_at is None:
            proc = run_argv(["systemctl", "show", "--property=UserspaceTimestampMonotonic", "--value"])
            try:
                started = int(proc.stdout.strip()) / 1e6 if proc.returncode == 0 else 0.0
            except ValueError:
                started = 0.0
            self._manager_started_at = max(0.0, started)
        return self._manager_started_at

    def _systemd_run(self, options: list[str], argv: list[str], reset_on_failure: t.Sequence[str] = ()) -> None:
        """A transient unit; with reset_on_failure, a failed unit of those names (kept loaded until it is reset)
        is reset and the unit started again, a call most hosts never need."""
        command = ["systemd-run", "--quiet", "--collect"] + options + argv
        proc = run_argv(command)
        if proc.returncode != 0 and reset_on_failure:
            run_argv(["systemctl", "reset-failed", *reset_on_failure])
            proc = run_argv(command)
        if proc.returncode != 0:
            # The collector's service starts this way too: the unit says which of them failed.
            unit = next(option.split("=", 1)[1] for option in options if option.startswith("--unit="))
            raise ConntrackModuleError(f"systemd-run could not start {unit}: {proc.stderr.strip()}")

    def ensure_sweep(self, earliest_in: float, states: dict[str, str]) -> None:
        """The sweep timer of this state directory, due SWEEP_PERIOD_SECONDS after the earliest deadline (in
        ``earliest_in`` seconds), then every period. A waiting sweep that comes later than that, or more than a
        period earlier, is armed again; a running one is left to run. ``states`` has its units' (unit_states)."""
        due_in = max(0, math.ceil(earliest_in)) + SWEEP_PERIOD_SECONDS
        timer, service = self.sweep_unit + ".timer", self.sweep_unit + ".service"
        if states.get(timer) in ACTIVE_STATES:
            next_in = self._next_elapse_in(timer)
            if (next_in is None or due_in - SWEEP_PERIOD_SECONDS <= next_in <= due_in
                    or states.get(service) in ACTIVE_STATES):
                return
            run_argv(["systemctl", "stop", timer])
        if timer in states or service in states:
            run_argv(["systemctl", "reset-failed", timer, service])
        self._systemd_run(["--unit=" + self.sweep_unit, self.elapse_option(due_in),
                           f"--on-unit-active={SWEEP_PERIOD_SECONDS}s", "--timer-property=AccuracySec=1s"],
                          self._base_argv() + ["sweep"])

    @staticmethod
    def _next_elapse_in(timer: str) -> float | None:
        """Seconds until the timer next elapses, or None when systemd does not say (it is elapsing now)."""
        proc = run_argv(["systemctl", "show", "--property=NextElapseUSecMonotonic", "--value", timer])
        elapse = timespan_seconds(proc.stdout) if proc.returncode == 0 else None
        if not elapse:
            return None
        return elapse - time.clock_gettime(time.CLOCK_MONOTONIC)

    def _other_deadlines_in(self, ident: str) -> list[float]:
        """Seconds until the deadline of each other window; 0 for one expired or unreadable (the sweep's at once)."""
        now, found = boot_now(), []
        for other in self._store.windows():
            if other == ident:
                continue
            try:
                data = self._store.load(other)
                if data is not None:
                    found.append(0.0 if data.get("expired") else remaining_seconds(data, now))
            except (ConntrackModuleError, OSError, KeyError, TypeError, ValueError):
                found.append(0.0)
        return found

    def ensure_watchers(self, own_slot: str | None = None) -> int:
        """Start the watcher and its partner where they are not running; returns the watcher's pid."""
        pids = {}
        for slot in (WATCHER, PARTNER):
            pid = self.watcher_pid(slot)
            if pid is None and slot != own_slot:
                pid = self._spawn_watcher(slot)
            pids[slot] = pid
        return pids[WATCHER] if pids[WATCHER] is not None else os.getpid()

    # ------------------------------------------------------------------ liveness

    @staticmethod
    def unit_active(unit: str) -> bool:
        return bool(shutil.which("systemctl")) and run_argv(["systemctl", "is-active", "--quiet", unit]).returncode == 0

    def alive(self, scheduler: dict | None, ident: str) -> bool:
        """Whether the window's own revert is armed (its timer, or the watcher of its state directory)."""
        if not scheduler:
            return False
        if scheduler.get("kind") == "systemd-timer":
            base = scheduler["unit"][:-len(".timer")]
            states = unit_states(scheduler["unit"], base + ".service", unit_name(ident) + "-retry*.timer")
            return any(state in ACTIVE_STATES for state in states.values())
        return any(pid is not None for pid in (self.watcher_pid(WATCHER), self.watcher_pid(PARTNER),
                                               self.legacy_watcher_pid(ident)))

    def backstop(self) -> dict:
        """The second line of defence: the sweep timer, or the partner watcher."""
        if self._use_systemd():
            return {"kind": "systemd-sweep-timer", "unit": self.sweep_unit + ".timer",
                    "period_seconds": SWEEP_PERIOD_SECONDS, "alive": self.unit_active(self.sweep_unit + ".timer")}
        pid = self.watcher_pid(PARTNER)
        return {"kind": "partner-process", "pid": pid, "alive": pid is not None}

    def watcher_pid(self, slot: str) -> int | None:
        """The pid of this state directory's live watcher (or partner), or None."""
        pid = self._store.read_pid(slot)
        argv = process_argv(pid) if pid is not None else None
        if argv and b"wait-and-revert" in argv and f"--state-dir={self._store.directory}".encode() in argv:
            return pid
        return None

    def legacy_watcher_pid(self, ident: str) -> int | None:
        """The pid of a per-window watcher an older release started for ident (its pid file names it), or None."""
        pid = self._store.read_pid(ident)
        argv = process_argv(pid) if pid is not None else None
        if argv and b"wait-and-revert" in argv and ident.encode() in argv:
            return pid
        return None

    # ------------------------------------------------------------------ the watcher processes

    def _spawn_watcher(self, slot: str) -> int:
        """Double-fork a session leader with stdio on /dev/null that reverts the windows at their deadlines."""
        pid = self.spawn_detached(["wait-and-revert", f"--slot={slot}"])
        try:
            self._store.write_pid(slot, pid)
        except BaseException:
            _kill(pid)
            raise
        return pid

    def spawn_detached(self, command: list[str]) -> int:
        """Double-fork a session leader with stdio on /dev/null running this program's command; returns its pid."""
        read_end, write_end = os.pipe()
        first = os.fork()
        if first == 0:
            try:
                os.close(read_end)
                os.setsid()
                if os.fork() == 0:
                    devnull = os.open(os.devnull, os.O_RDWR)
                    for fd in (0, 1, 2):
                        os.dup2(devnull, fd)
                    os.chdir("/")
                    os.write(write_end, str(os.getpid()).encode())
                    os.close(write_end)
                    os.execv(self._interpreter, self._base_argv() + command)
                os._exit(0)
            except BaseException:
                os._exit(1)
        os.close(write_end)
        os.waitpid(first, 0)
        with os.fdopen(read_end, "rb") as handle:
            pid = int(handle.read().decode() or 0)
        if not pid:
            raise ConntrackModuleError(f"could not start the detached process ({command[0]})")
        return pid

    # ------------------------------------------------------------------ cancelling

    def cancel(self, ident: str) -> list[str]:
        """Cancel the timer of ident, or 0.2.0's watcher of it; the shared watcher stays for the other windows."""
        cancelled = []
        if shutil.which("systemctl") and os.path.isdir("/run/systemd/system"):
            unit = unit_name(ident)
            if run_argv(["systemctl", "stop", unit + ".timer", unit + "-retry*.timer"]).returncode == 0:
                cancelled.append(unit + ".timer")
        pid = self.legacy_watcher_pid(ident)
        if pid is not None and pid != os.getpid() and _kill(pid):
            cancelled.append(f"pid {pid}")
        self._store.remove_pid(ident)
        return cancelled

    def settle(self) -> list[str]:
        """Once no window is left: stop the sweep timer and the watchers (not the process running this code)."""
        stopped = []
        if self._store.windows():
            return stopped
        if shutil.which("systemctl") and os.path.isdir("/run/systemd/system"):
            if self.unit_active(self.sweep_unit + ".timer"):
                run_argv(["systemctl", "stop", self.sweep_unit + ".timer"])
                stopped.append(self.sweep_unit + ".timer")
        for slot in (WATCHER, PARTNER):
            pid = self.watcher_pid(slot)
            if pid is not None and pid != os.getpid() and _kill(pid):
                stopped.append(f"pid {pid}")
            if pid is None or pid != os.getpid():
                self._store.remove_pid(slot)
        return stopped


def _kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGTERM)
        return True
    except ProcessLookupError:
        return False


__all__ = ("ACTIVE_STATES", "PARTNER", "SWEEP_PERIOD_SECONDS", "UNIT_PREFIX", "WATCHER", "Scheduler", "process_argv",
           "systemd_booted", "timespan_seconds", "unit_name", "unit_states")
