# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""conntrack-debug-window: the host side of a debug window, runnable without the controller.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

The action plugin ``conntrack_debug_window`` ships this module and the module_utils it imports to
the host as one zip application (see ``plugins/plugin_utils/_window_app.py``) and runs it with the
host's Ansible interpreter. The same module_utils serve the modules, so the snapshot records,
and revert restores, exactly what the modules change. This file holds the command line and what
every command shares (the values, the namespaces); the commands live in ``_window_enable``,
``_window_revert``, ``_window_status`` and ``_window_shared``.

Commands (each prints one JSON object; exit status 0 on success, 1 on a refused or failed
operation with ``msg``, 2 on bad usage, 3 for ``--expect-sha256`` of another version)::

  enable   (the options of snapshot) [--check] [--diff]
                                              snapshot, apply, confirm and plan: enable's host side
  snapshot --request JSON [--no-schedule]     the options as the action sends them (``_window_request``), or:
  snapshot [--netns NS ... --container NAME ...] --duration S [--log-invalid P] [--family F ... --backend B]
           [--all-netns on|off] [--dyndbg-site JSON ...] [--capture JSON] [--no-schedule]
  confirm  --window TOKEN [--id ID ...]       last step of enable
  revert   [--netns NS ... | --id ID ... | --all] [--check]
  status   [--netns NS ... | --id ID ... | --all] [--check]
  wait-and-revert [--slot watcher|watcher-partner]
                                              the watcher where systemd is not PID 1
  sweep                                       the periodic sweep timer where it is
  capture                                     the collector of the windows on the netlink path
  discard  --id ID ...                        forget a snapshot without restoring anything
  cleanup  [--path F ...] [--program-path P] [--check]
                                              remove what the collection left on the host (no window open)
  collect  [--netns NS ...] [--report-host NAME] [--max-samples N] [--log-source SRC [--log-path F]]
           [--facts-dest PATH] [--check]      the report: windows, lists, plan, invalid log

Before any command, ``--install-to PATH`` copies the program to PATH and runs the command as that copy.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys

from ansible_collections.netfilter.conntrack.plugins.module_utils._containers import container_namespaces
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._kernel_log import SOURCES
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import ProcessHost
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl_keys import KEY_LOGGER_PREFIX
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_cleanup import CleanupCommands
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_capture import CaptureCommands
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_enable import EnableCommands
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_install import install, source_sha256, unsafe_directory
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_revert import RevertCommands
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_scheduler import PARTNER, WATCHER, Scheduler
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_shared import SharedValues
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_status import ConntrackTables, StatusCommands, make_dirs
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_store import LOCK_TIMEOUT, PROGRAM_NAME, STATE_DIR, Store

# A window this far past its deadline with no live timer, watcher or sweep is reverted by the next command that
# looks at it (status, which collect runs, and snapshot, which enable runs): the last line of defence.
OVERDUE_GRACE_SECONDS = 30


class Program(EnableCommands, RevertCommands, StatusCommands, SharedValues, CaptureCommands, CleanupCommands):
    """The commands, bound to one state directory, to the path this program is installed at, and to a host: every
    command reaches the kernel through ``host.kernel`` (collect reads the conntrack tables through ``tables``), and
    each run that applies gets ``host.for_run``."""

    def __init__(self, store: Store, program: str, host: ProcessHost | None = None, lock_timeout: float = LOCK_TIMEOUT,
                 overdue_grace: float = OVERDUE_GRACE_SECONDS, tables: ConntrackTables | None = None) -> None:
        self.store = store
        self.lock_timeout = lock_timeout
        self.overdue_grace = overdue_grace
        self.program = program
        # How a person runs this program by hand on this host, for the hints in messages.
        self.command = f"{sys.executable} {program}"
        self.host = host or ProcessHost()
        self.kernel = self.host.kernel
        self.tables = tables or ConntrackTables()
        self.scheduler = Scheduler(store, program)

    # ------------------------------------------------------------------ values

    def same_value(self, key: str, left: str | None, right: str | None) -> bool:
        if left is None or right is None:
            return left is right
        if key.startswith(KEY_LOGGER_PREFIX):
            # The kernel matches logger names case-insensitively and prints its own spelling.
            return left.lower() == right.lower()
        return left.strip() == right.strip()

    def control(self) -> str | None:
        try:
            return self.kernel.find_control(None)[0]
        except ConntrackModuleError:
            return None

    # ------------------------------------------------------------------ namespaces

    def namespace_of(self, data: dict) -> tuple[int | None, str | None]:
        """Open the namespace a snapshot belongs to; (fd, None) or (None, why it is not that namespace any more)."""
        recorded = data["netns"]
        try:
            fd, now = self.kernel.open_namespace(recorded["spec"])
        except ConntrackModuleError as exc:
            if exc.details.get("reason") == "vanished":
                return None, f"network namespace {recorded['path']} no longer exists"
            raise
        if recorded.get("ino") is not None and (now["dev"], now["ino"]) != (recorded["dev"], recorded["ino"]):
            if fd is not None:
                os.close(fd)
            return None, (f"{recorded['path']} is now another network namespace (inode {now['ino']}, the window's was "
                          f"{recorded['ino']}): the namespace was deleted and re-created, or its process exited and"
                          " the PID was reused")
        return fd, None


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog=PROGRAM_NAME, description="Open, report and revert conntrack debug windows.")
    top.add_argument("--expect-sha256", metavar="HEX", help="exit with status 3 unless this program has that SHA-256")
    top.add_argument("--install-to", metavar="PATH",
                     help="first copy this program to PATH (atomically, mode 0700), then run the command as PATH")
    top.add_argument("--state-dir", default=os.environ.get("CONNTRACK_DEBUG_STATE_DIR", STATE_DIR),
                     help="where snapshots live (default %(default)s)")
    sub = top.add_subparsers(dest="command", required=True)
    snap = sub.add_parser("snapshot", help="record current values (once per window) and schedule the revert")
    enable = sub.add_parser("enable", help="snapshot, apply, confirm and plan in one run (rolls back on failure)")
    for cmd in (snap, enable):
        cmd.add_argument("--request", metavar="JSON",
                         help="enable's options as one JSON object (what the action sends); instead of the flags below")
        cmd.add_argument("--netns", action="append", help="namespace name or path (repeatable); default: this one")
        cmd.add_argument("--container", action="append", help="container or pod name or id (repeatable)")
        cmd.add_argument("--duration", help="whole seconds until the automatic revert")
        cmd.add_argument("--log-invalid", help="protocol enable sets in nf_conntrack_log_invalid")
        cmd.add_argument("--family", action="append", help="family whose nf_log.N enable sets (repeatable)")
        cmd.add_argument("--backend", help="logger enable binds (auto, none or a name)")
        cmd.add_argument("--all-netns", choices=["on", "off"], help="on: enable sets nf_log_all_netns=1 (off: left alone)")
        cmd.add_argument("--dyndbg-site", action="append", help="JSON dynamic_debug_sites entry (repeatable)")
        cmd.add_argument("--no-schedule", action="store_true", help="do not schedule the automatic revert")
        cmd.add_argument("--capture", help='JSON {"mode": "auto|netlink|kernel_log", "budgets": {...},'
                                           ' "samples_per_reason": N}: where the evidence goes (default kernel_log)')
    enable.add_argument("--check", action="store_true", help="predict the steps and the plan; change nothing")
    enable.add_argument("--diff", action="store_true", help="return each step's before and after")
    for name, helptext in (("revert", "compare-and-restore from the snapshot"), ("status", "show the windows")):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument("--netns", action="append")
        cmd.add_argument("--container", action="append", help="container or pod name or id (repeatable)")
        cmd.add_argument("--id", action="append")
        cmd.add_argument("--all", action="store_true")
        cmd.add_argument("--check", action="store_true", help="say what a real run would do; change nothing")
        cmd.add_argument("--scheduled", action="store_true", help=argparse.SUPPRESS)
        cmd.add_argument("--window", help=argparse.SUPPRESS if name == "status" else
                         "the token of the enable rolling itself back (removes its unconfirmed window)")
    conf = sub.add_parser("confirm", help="last step of enable: mark the window applied (undoes one taken away)")
    conf.add_argument("--netns", action="append")
    conf.add_argument("--id", action="append")
    conf.add_argument("--window", required=True, help="the token snapshot returned")
    wait = sub.add_parser("wait-and-revert", help="the watcher (no systemd): revert every window at its deadline")
    wait.add_argument("--slot", choices=[WATCHER, PARTNER], default=WATCHER, help="which of the two watchers this is")
    sub.add_parser("sweep", help="the sweep timer (systemd): revert windows past their deadline whose timer was lost")
    sub.add_parser("capture", help="the collector (run by enable): count the netlink windows' invalid packets")
    disc = sub.add_parser("discard", help="remove a snapshot without restoring anything (recovery)")
    disc.add_argument("--id", action="append", required=True)
    clean = sub.add_parser("cleanup", help="remove the state directory, the given files and the program (no window open)")
    clean.add_argument("--path", action="append", help="a file the collection wrote on the host (the local facts file)")
    clean.add_argument("--program-path", action="append", help="the installed program, removed with its directory if empty")
    clean.add_argument("--check", action="store_true", help="say what would be removed; remove nothing")
    collect = sub.add_parser("collect", help="the windows, lists, plan and invalid log as one report")
    collect.add_argument("--netns", action="append", help="namespace name or path (repeatable); default: this one")
    collect.add_argument("--container", action="append", help="container or pod name or id (repeatable)")
    collect.add_argument("--report-host", default="", help="the host's name in the report (its inventory name)")
    collect.add_argument("--max-samples", type=int, default=10, help="sample log lines kept in the report")
    collect.add_argument("--log-source", choices=SOURCES, default="auto", help="where the kernel log is read")
    collect.add_argument("--log-path", help="the log file with --log-source=file")
    collect.add_argument("--facts-dest", help="also write the report to this local facts file")
    collect.add_argument("--verdict-thresholds", metavar="JSON",
                         help="the verdicts' thresholds that differ from their defaults, as a JSON object")
    collect.add_argument("--check", action="store_true", help="load no kernel module and write no file")
    return top


def emit(result: dict, code: int, version: str) -> int:
    """Print an answer: program_name marks it as this program's, program_version is the SHA-256 of the shipped program
    that runs (the controller's check of what it installed)."""
    result.update(program_name=PROGRAM_NAME, program_version=version)
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()
    return code


def os_error_message(exc: OSError) -> str:
    message = f"{exc.filename}: {exc.strerror or exc}" if exc.filename else str(exc.strerror or exc)
    if exc.errno in (errno.EACCES, errno.EPERM) and os.geteuid() != 0:
        message += f" (running as uid {os.geteuid()}: the program needs root)"
    return message


def main(argv: list[str] | None = None, program: str | None = None) -> int:
    program = os.path.abspath(program or sys.argv[0])
    args = parser().parse_args(argv)
    version = source_sha256(program)
    if args.expect_sha256 and args.expect_sha256.lower() != version:
        return emit({"changed": False, "failed": True, "stale_program": True,
                     "msg": f"{program} is not the expected version (SHA-256 {args.expect_sha256})"}, 3, version)
    os.umask(0o077)
    if args.install_to:
        # The command runs as the installed copy: the automatic revert it arms names that path, not this one.
        program, failure = install(program, os.path.abspath(args.install_to))
        if failure:
            return emit(failure, 1, version)
    # The environment (inherited by the detached watcher) shortens the waits for the fault tests.
    runner = Program(Store(args.state_dir), program,
                     lock_timeout=float(os.environ.get("CONNTRACK_DEBUG_LOCK_TIMEOUT", LOCK_TIMEOUT)),
                     overdue_grace=float(os.environ.get("CONNTRACK_DEBUG_OVERDUE_GRACE", OVERDUE_GRACE_SECONDS)))
    command = getattr(runner, "cmd_" + args.command.replace("-", "_"))
    try:
        if args.command in ("revert", "status", "collect") and args.container:
            # Their windows are found by namespace: each name is resolved once, here (enable resolves its own).
            found, _unanswered = container_namespaces(runner.host, args.container)
            args.netns = (args.netns or []) + list(found)
        result = command(args)
    except ConntrackModuleError as exc:
        return emit({"changed": False, "failed": True, "msg": exc.msg}, 1, version)
    except OSError as exc:
        return emit({"changed": False, "failed": True, "msg": os_error_message(exc)}, 1, version)
    return emit(result, 1 if result.get("failed") else 0, version)


__all__ = ("OVERDUE_GRACE_SECONDS", "PROGRAM_NAME", "Program", "main", "make_dirs", "parser", "unsafe_directory")
