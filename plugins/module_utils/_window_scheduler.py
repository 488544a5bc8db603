# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Arm, inspect and cancel the automatic revert of a debug window.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

Where systemd is PID 1 the revert is a transient timer (``systemd-run --on-active``); elsewhere it
is a detached session leader that sleeps until the snapshot's deadline. Both run the program with
the interpreter that runs this code (``sys.executable``): the one Ansible uses for the host, so a
host without ``/usr/bin/python3`` reverts as well as any other.

Unit names and pid files are the ones release 0.2.0 used, so cancelling a window cancels the
automatic revert that an older release armed for it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import sys
import time
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import run_argv
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_store import Store

UNIT_PREFIX = "netfilter-conntrack-revert-"


def unit_name(ident: str) -> str:
    safe = ident if re.match(r"^[A-Za-z0-9_.-]+$", ident) else "h" + hashlib.sha256(ident.encode()).hexdigest()[:16]
    return UNIT_PREFIX + safe


def systemd_booted() -> bool:
    return os.path.isdir("/run/systemd/system") and shutil.which("systemd-run") is not None


class Scheduler:
    """The automatic revert of each snapshot of one state directory, run as ``interpreter program``."""

    def __init__(self, store: Store, program: str, interpreter: str = sys.executable,
                 use_systemd: t.Callable[[], bool] = systemd_booted) -> None:
        self._store = store
        self._program = program
        self._interpreter = interpreter
        self._use_systemd = use_systemd

    def revert_command(self, ident: str) -> list[str]:
        return [self._interpreter, self._program, f"--state-dir={self._store.directory}", "revert", "--id", ident,
                "--scheduled"]

    def arm(self, ident: str, deadline: float, retry: bool = False) -> dict:
        """Arrange for the revert of ident at deadline, replacing an earlier arrangement; describes it.

        A retry (from inside the running revert unit) needs a unit name of its own: the current one is busy.
        """
        delay = max(1, int(round(deadline - time.time())))
        if self._use_systemd():
            unit = unit_name(ident) + (f"-retry{int(time.time())}" if retry else "")
            if not retry:
                run_argv(["systemctl", "stop", unit + ".timer", unit + "-retry*.timer"])
                run_argv(["systemctl", "reset-failed", unit + ".timer", unit + ".service"])
            proc = run_argv(["systemd-run", "--quiet", "--collect", f"--unit={unit}", f"--on-active={delay}s",
                             "--timer-property=AccuracySec=1s"] + self.revert_command(ident))
            if proc.returncode != 0:
                raise ConntrackModuleError(f"systemd-run could not schedule the automatic revert: {proc.stderr.strip()}")
            return {"kind": "systemd-timer", "unit": unit + ".timer", "in_seconds": delay,
                    "interpreter": self._interpreter}
        pid = self.watcher_pid(ident)
        if pid is not None and pid != os.getpid():
            # Replace it, as systemd-run replaces the timer above: it may run another program (release 0.2.0's
            # conntrack-debug-revert), which cannot read the snapshot just saved and would exit at its next look.
            _kill(pid)
            pid = None
        if pid is None:
            pid = self._spawn_watcher(ident)
        return {"kind": "detached-process", "pid": pid, "in_seconds": delay, "interpreter": self._interpreter}

    def alive(self, scheduler: dict | None, ident: str) -> bool:
        """Whether something will still run the revert of ident (a live timer or watcher)."""
        if not scheduler:
            return False
        if scheduler.get("kind") == "systemd-timer":
            if not shutil.which("systemctl"):
                return False
            base = scheduler["unit"][:-len(".timer")]
            units = [scheduler["unit"], base + ".service"] + [line.split()[0] for line in run_argv(
                ["systemctl", "list-units", "--all", "--plain", "--no-legend", unit_name(ident) + "-retry*.timer"]
            ).stdout.splitlines() if line.strip()]
            return any(run_argv(["systemctl", "is-active", "--quiet", unit]).returncode == 0 for unit in units)
        return self.watcher_pid(ident) is not None

    def watcher_pid(self, ident: str) -> int | None:
        """The pid of a live wait-and-revert process for ident, or None."""
        pid = self._store.read_pid(ident)
        if pid is None:
            return None
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            return None
        if b"wait-and-revert" in argv and ident.encode() in argv:
            return pid
        return None

    def _spawn_watcher(self, ident: str) -> int:
        """Double-fork a session leader with stdio on /dev/null that reverts at the snapshot's deadline."""
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
                    argv = [self._interpreter, self._program, f"--state-dir={self._store.directory}",
                            "wait-and-revert", "--id", ident]
                    os.execv(self._interpreter, argv)
                os._exit(0)
            except BaseException:
                os._exit(1)
        os.close(write_end)
        os.waitpid(first, 0)
        with os.fdopen(read_end, "rb") as handle:
            pid = int(handle.read().decode() or 0)
        if not pid:
            raise ConntrackModuleError("could not start the detached revert process")
        try:
            self._store.write_pid(ident, pid)
        except BaseException:
            _kill(pid)
            raise
        return pid

    def cancel(self, ident: str) -> list[str]:
        """Cancel the timer or the detached process of ident (not the process running this code)."""
        cancelled = []
        if shutil.which("systemctl") and os.path.isdir("/run/systemd/system"):
            unit = unit_name(ident)
            if run_argv(["systemctl", "stop", unit + ".timer", unit + "-retry*.timer"]).returncode == 0:
                cancelled.append(unit + ".timer")
        pid = self.watcher_pid(ident)
        if pid is not None and pid != os.getpid() and _kill(pid):
            cancelled.append(f"pid {pid}")
        self._store.remove_pid(ident)
        return cancelled


def _kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGTERM)
        return True
    except ProcessLookupError:
        return False


__all__ = ("UNIT_PREFIX", "Scheduler", "systemd_booted", "unit_name")
