# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""conntrack-debug-window: the host side of a debug window, runnable without the controller.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

The action plugin ``conntrack_debug_window`` ships this module and the module_utils it imports to
the host as one zip application (see ``plugins/plugin_utils/_window_app.py``) and runs it with the
host's Ansible interpreter. The same module_utils serve the modules, so the snapshot records,
and revert restores, exactly what the modules change: the same name tables, sysctl I/O, namespace
entry, and the same dynamic-debug query builder and matcher.

Commands (each prints one JSON object; exit status 0 on success, 1 on a refused or failed
operation with ``msg``, 2 on bad usage, 3 for ``--expect-sha256`` of another version)::

  enable   (the options of snapshot) [--check] [--diff]
                                              snapshot, apply, confirm and plan: enable's host side
  snapshot [--netns NS ...] --duration S [--log-invalid P] [--family F ... --backend B]
           [--all-netns on|off] [--dyndbg-site JSON ...] [--no-schedule]
  confirm  --window TOKEN [--id ID ...]       last step of enable
  revert   [--netns NS ... | --id ID ... | --all] [--host-sites]
  status   [--netns NS ... | --id ID ... | --all]
  wait-and-revert --id ID                     the detached fallback
  discard  --id ID ...                        forget a snapshot without restoring anything
  collect  [--netns NS ...] [--report-host NAME] [--max-samples N] [--log-source SRC [--log-path F]]
           [--facts-dest PATH] [--check]      the report: windows, lists, plan, invalid log

Before any command, ``--install-to PATH`` copies the program to PATH and runs the command as that copy.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import signal
import stat
import sys
import time
import uuid

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack_facts import gather
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack_log_invalid import set_log_invalid
from ansible_collections.netfilter.conntrack.plugins.module_utils._debug_report import build_report, since_monotonic
from ansible_collections.netfilter.conntrack.plugins.module_utils._dynamic_debug import (
    OPERATIONS,
    Site,
    apply_flags,
    build_query,
    find_control,
    make_query,
    parse_flags,
    read_control,
    set_site,
    site_matches,
    write_control,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import ProcessHost
from ansible_collections.netfilter.conntrack.plugins.module_utils._kernel_log import SOURCES, read_invalid_log
from ansible_collections.netfilter.conntrack.plugins.module_utils._kmod import modprobe
from ansible_collections.netfilter.conntrack.plugins.module_utils._names import (
    load_etc_protocols,
    resolve_family,
    resolve_protocol,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._netns import (
    InNetns,
    identity_of_fd,
    open_netns,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._nf_log import set_loggers, wanted_logger
from ansible_collections.netfilter.conntrack.plugins.module_utils._plan import intended_changes, plan_from, probe, read_outside
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl import key_exists, read_key, write_key
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_scheduler import Scheduler
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_store import (
    LOCK_TIMEOUT,
    STATE_DIR,
    Store,
    check_id,
    snapshot_id,
    write_atomically,
)

PROGRAM_NAME = "conntrack-debug-window"
# The longest window enable accepts: a debug window of weeks is already a forgotten one.
MAX_DURATION = 7 * 24 * 3600
# A timer that fires before the confirm restores what was applied at once but keeps the snapshot as
# "expired": if the enable was only slow, its confirm finds the window over and reverts what it applied
# late; should that controller die too, a last sweep SWEEP_SECONDS later does it.
SWEEP_SECONDS = 600
# A window this far past its deadline with no live timer or watcher is reverted by the next command
# that looks at it (status, which collect runs, and snapshot, which enable runs): the second line of
# defence when the scheduler died. Nothing runs it by itself: until someone collects, enables or
# reverts, a window whose timer or watcher died stays on.
OVERDUE_GRACE_SECONDS = 30
RETRY_SLEEP_SECONDS = 5.0

KEY_LOG_INVALID = "net.netfilter.nf_conntrack_log_invalid"
KEY_ALL_NETNS = "net.netfilter.nf_log_all_netns"
KEY_COUNT = "net.netfilter.nf_conntrack_count"
STATS_FILE = "/proc/net/stat/nf_conntrack"
# /proc/net/stat/nf_conntrack columns whose ctnetlink name (the one conntrack_lists_facts and `conntrack -S`
# use) differs: one vocabulary for the same counters in every report.
PROC_STAT_NAMES = {"clashres": "clash_resolve", "icmp_error": "error", "chainlength": "chaintoolong"}
SITE_FIELDS = ("file", "func", "module", "format", "line", "class", "flags", "state")


class EnableFailed(Exception):
    """A step of enable failed after the snapshot: cmd_enable rolls back."""

    def __init__(self, step: str, result: dict) -> None:
        super().__init__(step)
        self.step = step
        self.result = result

    def answer(self, steps: list) -> dict:
        return {"changed": False, "failed": True, "failed_step": self.step, "step_failure": self.result, "steps": steps,
                "msg": f"{self.step}: {self.result.get('msg') or 'unknown error'}"}


class Program:
    """The commands, bound to one state directory and to the path this program is installed at."""

    def __init__(self, store: Store, program: str, proc_sys: str = "/proc/sys",
                 control_finder=find_control, lock_timeout: float = LOCK_TIMEOUT,
                 overdue_grace: float = OVERDUE_GRACE_SECONDS) -> None:
        self.store = store
        self.lock_timeout = lock_timeout
        self.overdue_grace = overdue_grace
        self.program = program
        # How a person runs this program by hand on this host, for the hints in messages.
        self.command = f"{sys.executable} {program}"
        self.proc_sys = proc_sys
        self.scheduler = Scheduler(store, program)
        self._find_control = control_finder

    # ------------------------------------------------------------------ values

    def read(self, key: str) -> str | None:
        if not key_exists(key, self.proc_sys):
            return None
        return read_key(key, self.proc_sys)

    def same_value(self, key: str, left: str | None, right: str | None) -> bool:
        if left is None or right is None:
            return left is right
        if key.startswith("net.netfilter.nf_log."):
            # The kernel matches logger names case-insensitively and prints its own spelling.
            return left.lower() == right.lower()
        return left.strip() == right.strip()

    def read_stats(self) -> dict | None:
        """/proc/net/stat/nf_conntrack summed over CPUs, in ctnetlink's names; None without conntrack."""
        try:
            with open(STATS_FILE, encoding="ascii") as handle:
                rows = [line.split() for line in handle if line.strip()]
        except OSError:
            return None
        if not rows:
            return None
        names, totals = [PROC_STAT_NAMES.get(name, name) for name in rows[0]], {}
        for row in rows[1:]:
            for name, value in zip(names, row):
                number = int(value, 16)
                totals[name] = number if name == "entries" else totals.get(name, 0) + number
        count = self.read(KEY_COUNT)
        if count is not None:
            totals["count"] = int(count)
        return totals

    def control(self) -> str | None:
        try:
            return self._find_control(None)[0]
        except ConntrackModuleError:
            return None

    # ------------------------------------------------------------------ namespaces

    def open_namespace(self, spec: str | None) -> tuple[int | None, dict]:
        """Open a namespace; returns (fd or None for this one, its description with identity)."""
        if spec in (None, ""):
            fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                dev, ino = identity_of_fd(fd)
            finally:
                os.close(fd)
            return None, {"spec": None, "path": "/proc/self/ns/net", "dev": dev, "ino": ino}
        fd, path = open_netns(spec)
        dev, ino = identity_of_fd(fd)
        return fd, {"spec": spec, "path": path, "dev": dev, "ino": ino}

    def namespace_of(self, data: dict) -> tuple[int | None, str | None]:
        """Open the namespace a snapshot belongs to; (fd, None) or (None, why it is not that namespace any more)."""
        recorded = data["netns"]
        try:
            fd, now = self.open_namespace(recorded["spec"])
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

    # ------------------------------------------------------------------ enable

    def wanted_keys(self, args: argparse.Namespace, spec: str | None) -> dict:
        """{key: applied value} for what enable sets in namespace spec (same tables as the modules)."""
        keys = {}
        if args.log_invalid is not None:
            keys[KEY_LOG_INVALID] = str(resolve_protocol(args.log_invalid, load_etc_protocols()))
        if args.backend is not None:
            for family in args.family or []:
                number = resolve_family(family)
                keys[f"net.netfilter.nf_log.{number}"] = wanted_logger(str(args.backend).strip(), number)
        if args.all_netns is not None and spec in (None, ""):
            keys[KEY_ALL_NETNS] = "1" if args.all_netns == "on" else "0"
        return keys

    def refuse_conflict(self, ident: str, existing: dict | None, wanted: dict, identity: dict) -> None:
        """A second enable may extend an open window, not change what it set: revert would lose track."""
        for other in self.store.ids():
            if other == ident:
                continue
            try:
                data = self.store.load(other, self.command)
            except ConntrackModuleError:
                # A damaged snapshot of another window is that window's problem (status and revert report it);
                # it must not block enabling this one.
                continue
            recorded = data["netns"] if data else None
            if recorded and recorded.get("ino") is not None and (recorded["dev"], recorded["ino"]) == (
                    identity["dev"], identity["ino"]):
                raise ConntrackModuleError(
                    f"{identity['path']} is the namespace of the open window {other} ({recorded['path']}): give the"
                    " namespace the same way as when the window was opened, or revert that window first")
        if existing is None:
            return
        conflicts = [f"{key}={existing['keys'][key]['applied']} (now asked: {value})" for key, value in wanted.items()
                     if key in existing["keys"] and not self.same_value(key, existing["keys"][key]["applied"], value)]
        if conflicts:
            raise ConntrackModuleError(f"a debug window with other settings is open in {ident}: {', '.join(conflicts)};"
                                       " revert it first, or enable with the same settings to extend it")

    def record_sites(self, data: dict, queries: list, control: str) -> list[str]:
        """Add every site the queries select (the module's matcher) with its flags before and after."""
        by_key = {site_key(record): record for record in data["dyndbg"]}
        added = []
        for site in read_control(control):
            for query, op, flags in queries:
                if not site_matches(query, site):
                    continue
                record = by_key.get(site_key(site_record(site)))
                if record is None:
                    record = site_record(site)
                    record["original"] = record["applied"] = site.flags
                    data["dyndbg"].append(record)
                    by_key[site_key(record)] = record
                    added.append(f"dyndbg {site.filename}:{site.lineno}")
                record["applied"] = apply_flags(record["applied"], op, flags)
        return added

    def cmd_snapshot(self, args: argparse.Namespace) -> dict:
        duration = check_duration(args.duration)
        queries = [site_query(text) for text in args.dyndbg_site or []]
        specs = args.netns or [None]
        control = self.control() if queries else None
        if (args.all_netns is not None or control) and None not in specs:
            # nf_log_all_netns and the dynamic-debug sites are host-wide: they live in the initial namespace's snapshot.
            specs = [None] + specs
        now = time.time()
        deadline = now + duration
        result = {"changed": False, "deadline": deadline, "namespaces": {}, "dynamic_debug": bool(control),
                  "state_dir": self.store.directory, "program": self.program}
        created = []
        with self.store.lock(self.lock_timeout):
            result["overdue"] = self.revert_overdue()
            opened = {}
            try:
                # Bad names and missing namespaces are refused here, before anything is written.
                for spec in specs:
                    opened[snapshot_id(spec)] = (spec,) + self.open_namespace(spec)
                plan = {}
                for ident, (spec, fd, identity) in opened.items():
                    with InNetns(fd, identity["path"]):
                        wanted = self.wanted_keys(args, spec)
                    if spec is None and args.netns:
                        # The host's snapshot is here only for what is host-wide (nf_log_all_netns, the sites):
                        # enable does not touch the host's own log_invalid and loggers, so neither may revert.
                        wanted = {key: value for key, value in wanted.items() if key == KEY_ALL_NETNS}
                    existing = self.store.load(ident, self.command)
                    if existing is not None and not self.same_namespace(existing, identity):
                        result.setdefault("dropped", {})[ident] = (
                            f"the window recorded for {identity['path']} belonged to a namespace that no longer exists"
                            " (deleted and re-created): its snapshot was dropped without restoring anything")
                        self.scheduler.cancel(ident)
                        self.store.remove(ident)
                        existing = None
                    if existing is not None and existing.get("expired"):
                        # A window reverted (or run out) before its enable confirmed: finish that revert, then
                        # open this one from the values as they are now.
                        result.setdefault("finished", {})[ident] = self.revert_one(ident)
                        existing = None
                    self.refuse_conflict(ident, existing, wanted, identity)
                    plan[ident] = (spec, fd, identity, wanted, existing)
                window = next((p[4]["window"] for p in plan.values() if p[4] is not None), uuid.uuid4().hex)
                links = ["init"] if None in specs and len(specs) > 1 else []
                for ident, (spec, fd, identity, wanted, existing) in plan.items():
                    data = existing or {"id": ident, "netns": identity, "created": now,
                                        "created_monotonic": monotonic_now(), "keys": {}, "dyndbg": [],
                                        "links": [], "window": window}
                    new_keys = []
                    with InNetns(fd, identity["path"]):
                        if existing is None:
                            data["stats_baseline"] = self.read_stats()
                        for key, applied in wanted.items():
                            entry = data["keys"].get(key)
                            if entry is None:
                                data["keys"][key] = {"original": self.read(key), "applied": applied}
                                new_keys.append(key)
                            else:
                                entry["applied"] = applied
                    if spec is None and control:
                        new_keys += self.record_sites(data, queries, control)
                    if ident != "init":
                        data["links"] = sorted(set(data.get("links") or []) | set(links))
                    extended = existing is not None and deadline > existing.get("deadline", 0)
                    # Its timer or watcher died (stopped, killed, its unit lost): arming it again below changes what
                    # the host does at the deadline, so it counts as a change and is said.
                    rearmed = (existing is not None and not args.no_schedule
                               and not self.scheduler.alive(existing.get("scheduler"), ident))
                    data["deadline"] = max(deadline, (existing or {}).get("deadline", 0))
                    data["window"] = window
                    data["written_by"] = PROGRAM_NAME
                    data["confirmed"] = False   # until this enable's confirm
                    data["scheduler"] = {"kind": "none"}
                    if existing is None:
                        created.append(ident)
                    self.store.save(data)
                    if not args.no_schedule:
                        data["scheduler"] = self.scheduler.arm(ident, data["deadline"])
                        self.store.save(data)
                    result["changed"] = result["changed"] or existing is None or bool(new_keys) or rearmed
                    if rearmed:
                        result.setdefault("warnings", []).append(
                            f"{ident}: the automatic revert of this window was NOT armed (its timer or watcher was"
                            " gone): armed again")
                    result["namespaces"][ident] = {
                        "netns": spec, "identity": {"dev": identity["dev"], "ino": identity["ino"]},
                        "snapshot": self.store.path(ident), "created": existing is None, "recorded": new_keys,
                        "deadline": data["deadline"], "deadline_extended": extended, "rearmed": rearmed,
                        "enabled_at": data["created"],
                        "enabled_at_monotonic": data["created_monotonic"], "scheduler": data["scheduler"],
                        "original": {k: v["original"] for k, v in data["keys"].items()},
                        "dyndbg": data["dyndbg"],
                    }
            except BaseException:
                # A failure half-way (a full state filesystem, a scheduler that cannot start) leaves no new
                # snapshot and no armed revert behind.
                for ident in created:
                    self.scheduler.cancel(ident)
                    self.store.remove(ident)
                self.store.remove_if_empty()
                raise
            finally:
                for _spec, fd, _identity in opened.values():
                    if fd is not None:
                        os.close(fd)
        result["window"] = window
        result["deadline"] = max(ns["deadline"] for ns in result["namespaces"].values())
        return result

    # ------------------------------------------------------------------ enable in one run

    def cmd_enable(self, args: argparse.Namespace) -> dict:
        """Snapshot, apply (the modules' own functions), confirm and plan: the whole host side of enable.

        A failing step or confirm reverts exactly the snapshots this enable took or extended, and the answer says
        which step failed (``failed_step``, ``step_failure``) and what the rollback did (``rollback``). ``--check``
        takes no snapshot and only predicts the steps (not the dynamic-debug sites) and the plan.
        """
        host = ProcessHost(check_mode=args.check, diff=args.diff)
        sites = [json.loads(text) for text in args.dyndbg_site or []]
        steps, diffs = [], []
        if args.check:
            try:
                self.apply(args, host, steps, diffs, [], None)
            except EnableFailed as failure:
                return failure.answer(steps)
            return self.enabled({"changed": any(step["changed"] for step in steps)}, args, host, steps, diffs)
        snapshot = self.cmd_snapshot(args)
        # Exactly the snapshots this enable created or extended (the host's one holds nf_log_all_netns and the sites).
        ids, window = list(snapshot["namespaces"]), snapshot["window"]
        try:
            snapshot = self.apply(args, host, steps, diffs, sites, snapshot)
            # The revert was armed before the settings were applied; a window that ran out meanwhile (a short
            # duration across a large fleet) is reverted here instead of being left half-done.
            try:
                confirm = self.cmd_confirm(argparse.Namespace(window=window, id=ids, netns=None))
            except (ConntrackModuleError, OSError) as exc:
                confirm = {"failed": True, "msg": getattr(exc, "msg", None) or str(exc)}
            if confirm.get("failed"):
                raise EnableFailed("Confirm the window is applied", confirm)
        except EnableFailed as failure:
            answer = failure.answer(steps)
            try:
                answer["rollback"] = self.cmd_revert(argparse.Namespace(
                    window=window, id=ids, netns=None, all=False, scheduled=False, host_sites=False))
            except (ConntrackModuleError, OSError) as exc:
                answer["rollback"] = {"changed": False, "failed": True, "msg": getattr(exc, "msg", None) or str(exc)}
            return answer
        if sites and not snapshot.get("dynamic_debug"):
            host.warn("this kernel has no dynamic debug: dynamic_debug_sites were skipped")
        result = dict(snapshot, changed=bool(snapshot.get("changed")) or any(step["changed"] for step in steps))
        return self.enabled(result, args, host, steps, diffs)

    def enabled(self, result: dict, args: argparse.Namespace, host: ProcessHost, steps: list, diffs: list) -> dict:
        """Add the steps, the diffs, the plan of every namespace (what enable would set, in check mode) and the
        warnings. The plan only informs: a namespace whose plan cannot be made gets a warning, not a failed enable."""
        intended = {}
        if args.check:
            try:
                protocol = str(resolve_protocol(args.log_invalid, load_etc_protocols()))
            except ConntrackModuleError:
                protocol = None
            intended = intended_changes(protocol, str(args.backend).strip().lower() == "auto", args.all_netns == "on")
        plans, outside = {}, read_outside()
        for spec in args.netns or [None]:
            try:
                with self.entered(spec, None):
                    plans[snapshot_id(spec)] = plan_from(probe(host, spec, outside), intended)
            except ConntrackModuleError as exc:
                host.warn(f"no plan for {spec or 'this namespace'}: {exc.msg}")
        result.update(steps=steps, plan=plans)
        if diffs:
            result["diff"] = diffs
        # The snapshot's own warnings (a re-armed revert) come first; the steps' and the plan's follow.
        warnings = list(dict.fromkeys((result.get("warnings") or []) + host.warnings))
        if warnings:
            result["warnings"] = warnings
        return result

    @contextlib.contextmanager
    def entered(self, spec: str | None, snapshot: dict | None):
        """Run a block in namespace spec; with the snapshot, only if it is still the namespace that was recorded."""
        fd, identity = self.open_namespace(spec)
        try:
            recorded = ((snapshot or {}).get("namespaces", {}).get(snapshot_id(spec)) or {}).get("identity")
            if recorded and (recorded["dev"], recorded["ino"]) != (identity["dev"], identity["ino"]):
                raise ConntrackModuleError(f"{identity['path']} is no longer the network namespace enable recorded"
                                           " (deleted and re-created while enable ran)")
            with InNetns(fd, identity["path"]):
                yield identity
        finally:
            if fd is not None:
                os.close(fd)

    def step(self, steps: list, diffs: list, name: str, spec: str | None, snapshot: dict | None, apply) -> dict:
        """One step, recorded as the action reports it; a failure raises EnableFailed naming the step."""
        entry = {"step": name, "netns": spec, "changed": False}
        steps.append(entry)
        try:
            with self.entered(spec, snapshot):
                result = apply()
        except ConntrackModuleError as exc:
            raise EnableFailed(name, dict(exc.details, failed=True, msg=exc.msg)) from None
        except Exception as exc:  # pylint: disable=broad-exception-caught
            # Whatever breaks after the snapshot must still end in the rollback, not in a traceback.
            raise EnableFailed(name, {"failed": True, "msg": f"{type(exc).__name__}: {exc}"}) from None
        entry["changed"] = bool(result.get("changed"))
        loaded = result.get("loaded_module") or result.get("loaded_modules")
        if loaded:
            entry["loaded"] = loaded
        if result.get("diff"):
            diffs.append(result["diff"])
        return result

    def apply(self, args: argparse.Namespace, host: ProcessHost, steps: list, diffs: list, sites: list,
              snapshot: dict | None) -> dict | None:
        """The steps of enable in order, as the modules would run them; returns the snapshot (taken again when
        this enable loaded nf_conntrack: its dynamic-debug sites exist only now)."""
        specs = args.netns or [None]
        etc_protocols = load_etc_protocols()
        loaded = False
        for spec in specs:
            result = self.step(steps, diffs, "Log invalid packets", spec, snapshot, lambda: set_log_invalid(
                host, resolve_protocol(args.log_invalid, etc_protocols), True, etc_protocols))
            loaded = loaded or bool(result.get("loaded_module"))
        for spec in specs:
            all_netns = True if spec is None and args.all_netns == "on" else None
            self.step(steps, diffs, "Bind the loggers", spec, snapshot, lambda spec=spec, all_netns=all_netns: set_loggers(
                host, args.family, args.backend, all_netns, True, in_netns=spec is not None))
        if args.all_netns == "on" and args.netns:
            self.step(steps, diffs, "Let log lines of other namespaces reach the kernel log", None, snapshot,
                      lambda: set_loggers(host, None, None, True, True, in_netns=False))
        if not sites or not (snapshot or {}).get("dynamic_debug"):
            return snapshot
        if loaded:
            try:
                snapshot = self.cmd_snapshot(args)
            except (ConntrackModuleError, OSError) as exc:
                raise EnableFailed("Record the dynamic-debug sites",
                                   {"failed": True, "msg": getattr(exc, "msg", None) or str(exc)}) from None
        # The control file the snapshot read the sites from.
        control = self.control()
        for site in sites:
            options = dict({"flags": "p", "state": "enabled"}, control_path=control, **site)
            result = self.step(steps, diffs, "Switch the dynamic-debug sites on", None, snapshot,
                               lambda options=options: set_site(host, options))
            steps[-1]["matched"] = len(result.get("sites") or [])
            if not result.get("sites"):
                # Only reachable with require_match=false (the role's default): say so rather than report a window
                # whose dynamic-debug part does nothing.
                host.warn(f"dynamic_debug_sites entry {json.dumps(site, sort_keys=True)} matches no site on this"
                          " kernel: nothing was switched on for it")
        return snapshot

    def same_namespace(self, data: dict, identity: dict) -> bool:
        recorded = data["netns"]
        return recorded.get("ino") is None or (recorded["dev"], recorded["ino"]) == (identity["dev"], identity["ino"])

    def cmd_confirm(self, args: argparse.Namespace) -> dict:
        """The last step of enable. A window taken away meanwhile (reverted, expired) is undone here, and said so."""
        result = {"changed": False, "namespaces": {}}
        with self.store.lock(self.lock_timeout):
            for ident in self.select(args):
                data = self.store.load(ident, self.command)
                if data is None or data.get("window") != args.window:
                    one = {"changed": False, "failed": True, "window_gone": True,
                           "msg": f"the window of {ident} was reverted or replaced while enable was running"}
                elif data.get("expired"):
                    one = self.revert_one(ident)
                    one.update(failed=True, expired=True,
                               msg=f"the debug window ended (or was reverted) before enable had finished on this host, so"
                                   f" everything was reverted ({one['msg']}): use a longer duration, or do not revert"
                                   " while enable runs")
                else:
                    one = {"changed": False, "deadline": data["deadline"]}
                    if not data.get("confirmed"):
                        data["confirmed"] = True
                        self.store.save(data)
                result["namespaces"][ident] = one
                result["changed"] = result["changed"] or one["changed"]
        failures = [f"{ident}: {one['msg']}" for ident, one in result["namespaces"].items() if one.get("failed")]
        if failures:
            result.update(failed=True, msg="; ".join(failures))
        return result

    # ------------------------------------------------------------------ revert

    def restore_sites(self, records: list, report: dict) -> None:
        control = self.control()
        if control is None:
            report["unchanged"] += [f"dyndbg {r['filename']}:{r['lineno']}" for r in records]
            return
        current = {}
        for site in read_control(control):
            current.setdefault((site.filename, site.lineno), []).append(site)
        for record in records:
            name = f"dyndbg {record['filename']}:{record['lineno']}"
            candidates = [site for site in current.get((record["filename"], record["lineno"]), [])
                          if record.get("function") in (None, site.function)
                          and record.get("format") in (None, site.format)]
            if not candidates:
                report["unchanged"].append(name)
                continue
            flags = candidates[0].flags
            if flags == record["original"]:
                report["unchanged"].append(name)
            elif flags == record["applied"]:
                # Two pr_debug calls on one source line share file, line and function: the whole format (anchored,
                # backslashes kept literal) keeps the write from resetting a site this window did not record.
                text = record.get("format")
                exact = "^" + text.replace("\\", "\\\\") if text and text.isascii() and "\0" not in text else None
                try:
                    query = make_query(file=record["filename"], line=str(record["lineno"]),
                                       func=record.get("function"), format=exact, class_name=record.get("class"))
                    write_control(control, build_query(query, "=", parse_flags(record["original"])))
                    report["restored"][name] = {"from": flags, "to": record["original"]}
                except ConntrackModuleError as exc:
                    report["errors"][name] = exc.msg
            else:
                report["left"][name] = {"current": flags, "set_by_enable": record["applied"],
                                        "original": record["original"],
                                        "reason": "changed by someone else during the debug window: left as it is"}

    def restore_keys(self, data: dict, report: dict) -> None:
        for key, entry in data["keys"].items():
            original, applied = entry["original"], entry["applied"]
            target = original if original is not None else ("0" if key == KEY_LOG_INVALID else None)
            current = self.read(key)
            if current is None or target is None or self.same_value(key, current, target):
                report["unchanged"].append(key)
            elif self.same_value(key, current, applied):
                try:
                    write_key(key, target, self.proc_sys)
                    back = self.read(key)
                    if not self.same_value(key, back, target):
                        raise ConntrackModuleError(f"the kernel reads back {back!r}")
                    report["restored"][key] = {"from": current, "to": target}
                except ConntrackModuleError as exc:
                    report["errors"][key] = f"cannot write {target!r}: {exc.msg}"
            else:
                report["left"][key] = {"current": current, "set_by_enable": applied, "original": original,
                                       "reason": "changed by someone else during the debug window: left as it is"}

    def still_linked(self, ident: str, leaving: list[str]) -> list[str]:
        """The open windows, other than ``leaving``, that link to snapshot ``ident`` (the host's)."""
        holders = []
        for other in self.store.ids():
            if other in leaving or other == ident:
                continue
            try:
                data = self.store.load(other, self.command)
            except ConntrackModuleError:
                continue
            if data is not None and not data.get("expired") and ident in (data.get("links") or []):
                holders.append(other)
        return holders

    def revert_one(self, ident: str, scheduled: bool = False, window: str | None = None,
                   holders: tuple[str, ...] = ()) -> dict:
        """Compare-and-restore one snapshot. ``window`` is the token of the enable that rolls itself back: its
        unconfirmed window is removed at once instead of being kept for that enable's confirm.

        ``holders`` are the open windows of other namespaces that link to this (the host's) snapshot.
        nf_log_all_netns and the dynamic-debug sites are host-wide: restoring them now would silence those
        windows (a child namespace logs nothing without nf_log_all_netns). They stay recorded, with the timer of
        the latest deadline, and are restored when the last of those windows ends.
        """
        data = self.store.load(ident, self.command)
        if data is None:
            return {"changed": False, "msg": "nothing to revert", "restored": {}, "left": {}}
        report = {"restored": {}, "left": {}, "unchanged": [], "errors": {}}
        fd, gone = self.namespace_of(data)
        if gone is not None:
            # Its values died with it; writing them anywhere else would change an unrelated namespace.
            self.scheduler.cancel(ident)
            self.store.remove(ident)
            return {"changed": True, "dropped": True, "restored": {}, "left": {}, "netns": data["netns"]["spec"],
                    "msg": f"{gone}: nothing was restored and the window's snapshot was dropped"}
        shared = {key: entry for key, entry in data["keys"].items() if holders and key == KEY_ALL_NETNS}
        try:
            with InNetns(fd, data["netns"]["path"]):
                self.restore_keys(dict(data, keys={k: e for k, e in data["keys"].items() if k not in shared}), report)
        finally:
            if fd is not None:
                os.close(fd)
        if data.get("dyndbg") and not holders:
            self.restore_sites(data["dyndbg"], report)
        if report["errors"]:
            return {"changed": bool(report["restored"]), "failed": True, **report,
                    "msg": f"could not restore {', '.join(report['errors'])}; the snapshot {self.store.path(ident)} is"
                           " kept so a later revert can retry"}
        if holders:
            data["keys"] = shared
            self.store.save(data)
            kept = sorted(shared) + [f"{len(data['dyndbg'])} dynamic-debug site(s)"] * bool(data.get("dyndbg"))
            return {"changed": bool(report["restored"]), **report, "netns": data["netns"]["spec"],
                    "kept": {"values": kept, "for": list(holders)},
                    "msg": f"reverted {len(report['restored'])} value(s); kept {' and '.join(kept) or 'nothing else'}:"
                           f" the window(s) of {', '.join(holders)} still need them, they are restored when the last"
                           " of those ends"}
        rolling_back = window is not None and window == data.get("window")
        if not data.get("confirmed") and not data.get("expired") and not rolling_back:
            # The enable that opened this window has not confirmed yet (it is still applying, or its controller
            # died): keep the snapshot as expired, so that its confirm undoes whatever it applies after this.
            data["expired"] = True
            data["deadline"] = time.time() + SWEEP_SECONDS
            data["scheduler"] = self.scheduler.arm(ident, data["deadline"], retry=scheduled)
            self.store.save(data)
            return {"changed": bool(report["restored"]), **report, "netns": data["netns"]["spec"], "expired": True,
                    "msg": f"reverted {len(report['restored'])} value(s) before enable confirmed; the snapshot stays"
                           f" until enable's confirm or a last sweep in {SWEEP_SECONDS} s"}
        cancelled = self.scheduler.cancel(ident)
        self.store.remove(ident)
        # Removing the record of a window that already ended at its deadline restores nothing.
        return {"changed": bool(report["restored"]) or not data.get("expired"), **report, "cancelled": cancelled,
                "netns": data["netns"]["spec"],
                "msg": f"reverted {len(report['restored'])} value(s), left {len(report['left'])} changed by others"}

    def select(self, args: argparse.Namespace) -> list[str]:
        """The snapshots a command acts on: --all, else every --netns and --id, plus the snapshots they link."""
        if getattr(args, "all", False):
            return self.store.ids()
        netns = getattr(args, "netns", None)
        ids = [check_id(ident) for ident in getattr(args, "id", None) or []]
        if netns or not ids:
            ids = [snapshot_id(spec) for spec in (netns or [None])] + ids
        for ident in list(ids):
            try:
                data = self.store.load(ident, self.command)
            except ConntrackModuleError:
                continue
            ids += (data or {}).get("links") or []
        if getattr(args, "host_sites", False) and "init" not in ids:
            host = self.store.load("init", self.command)
            if host is not None and host.get("dyndbg"):
                ids.append("init")
        return list(dict.fromkeys(ids))

    def cmd_revert(self, args: argparse.Namespace) -> dict:
        result = {"changed": False, "namespaces": {}}
        if not self.store.ensure(create=False):
            result["namespaces"] = {ident: {"changed": False, "msg": "nothing to revert"} for ident in self.select(args)}
            result["msg"] = "nothing to revert"
            return result
        with self.lock_for(args):
            selected = self.select(args)
            for ident in selected:
                try:
                    holders = () if getattr(args, "all", False) else tuple(self.still_linked(ident, selected))
                    one = self.revert_one(ident, scheduled=args.scheduled, window=getattr(args, "window", None),
                                          holders=holders)
                except ConntrackModuleError as exc:
                    one = {"changed": False, "failed": True, "msg": exc.msg}
                result["namespaces"][ident] = one
                result["changed"] = result["changed"] or one["changed"]
            self.store.remove_if_empty()
        failures = [f"{i}: {r['msg']}" for i, r in result["namespaces"].items() if r.get("failed")]
        dropped = [f"{i}: {r['msg']}" for i, r in result["namespaces"].items() if r.get("dropped")]
        if failures:
            result.update(failed=True, msg="; ".join(failures))
        elif dropped:
            result["msg"] = "; ".join(dropped)
        elif not result["changed"]:
            result["msg"] = "nothing to revert"
        return result

    def lock_for(self, args: argparse.Namespace):
        """The automatic revert waits for the lock as long as its snapshots exist; anyone else up to LOCK_TIMEOUT."""
        if not args.scheduled:
            return self.store.lock(self.lock_timeout)
        ids = [check_id(ident) for ident in args.id or []]
        return self.store.lock(self.lock_timeout, keep_waiting=lambda: any(self.store.exists(ident) for ident in ids))

    def revert_overdue(self) -> dict:
        """Revert windows past their deadline whose timer or watcher is gone; called with the lock held."""
        reverted = {}
        for ident in self.store.ids():
            try:
                data = self.store.load(ident, self.command)
            except ConntrackModuleError:
                continue
            if data is None or time.time() < data["deadline"] + self.overdue_grace:
                continue
            if self.scheduler.alive(data.get("scheduler"), ident):
                continue
            one = self.revert_one(ident, scheduled=True)
            reverted[ident] = dict(one, msg="the automatic revert did not run (its timer or watcher is gone): reverted"
                                            f" now, {one['msg']}")
        return reverted

    # ------------------------------------------------------------------ status and the rest

    def cmd_status(self, args: argparse.Namespace) -> dict:
        result = {"changed": False, "namespaces": {}, "now": time.time(), "now_monotonic": monotonic_now()}
        if self.store.ensure(create=False):
            with self.store.lock(self.lock_timeout):
                result["overdue"] = self.revert_overdue()
        result["order"] = self.select(args)
        problems = [f"{ident}: {one['msg']}" for ident, one in (result.get("overdue") or {}).items()]
        for ident in result["order"]:
            try:
                data = self.store.load(ident, self.command)
            except ConntrackModuleError as exc:
                result["namespaces"][ident] = {"active": False, "netns": None, "unreadable": True, "msg": exc.msg}
                problems.append(f"{ident}: {exc.msg}")
                continue
            if data is None:
                result["namespaces"][ident] = {"active": False, "netns": None}
                continue
            result["namespaces"][ident] = self.window_status(ident, data, problems)
        if problems:
            result["problems"] = problems
            result["msg"] = "; ".join(problems)
        result["nf_log_all_netns"] = self.read(KEY_ALL_NETNS)
        return result

    def window_status(self, ident: str, data: dict, problems: list) -> dict:
        scheduler_alive = self.scheduler.alive(data.get("scheduler"), ident)
        one = {
            "active": not data.get("expired"), "expired": bool(data.get("expired")),
            "confirmed": bool(data.get("confirmed")), "netns": data["netns"]["spec"],
            "identity": {"dev": data["netns"].get("dev"), "ino": data["netns"].get("ino")},
            "enabled_at": data["created"], "enabled_at_monotonic": data["created_monotonic"],
            "deadline": data["deadline"], "remaining_seconds": max(0, round(data["deadline"] - time.time())),
            "scheduler": dict(data.get("scheduler") or {}, alive=scheduler_alive),
            "dyndbg": data.get("dyndbg", []), "stats_baseline": data.get("stats_baseline") or {},
            "format_read": data.get("upgraded_from", 2),
        }
        if not scheduler_alive:
            problems.append(f"{ident}: the automatic revert is NOT armed (its timer or watcher is gone): run enable"
                            " again to re-arm it, or revert now")
        fd, gone = self.namespace_of(data)
        if gone is not None:
            problems.append(f"{ident}: {gone}; revert drops its snapshot ({self.command} discard --id {ident})")
            one.update(vanished=True, keys={k: dict(v, current=None) for k, v in data["keys"].items()},
                       stats_now=None, stats_delta={})
            return one
        try:
            with InNetns(fd, data["netns"]["path"]):
                current = {key: self.read(key) for key in data["keys"]}
                stats = self.read_stats()
        finally:
            if fd is not None:
                os.close(fd)
        baseline = one["stats_baseline"]
        one["keys"] = {k: dict(v, current=current[k]) for k, v in data["keys"].items()}
        one["stats_now"] = stats
        one["stats_delta"] = {k: v - baseline.get(k, 0) for k, v in (stats or {}).items() if k not in ("entries", "count")}
        return one

    def cmd_wait_and_revert(self, args: argparse.Namespace) -> dict:
        """Sleep until the snapshot's deadline (re-read: a second enable extends it, a revert before confirm sets
        the last sweep), then revert; retry until the snapshot is gone."""
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        ident = check_id(args.id[0])
        args.scheduled, args.netns, args.all, args.host_sites = True, None, False, False
        while True:
            try:
                data = self.store.load(ident, self.command)
            except ConntrackModuleError as exc:
                return {"changed": False, "failed": True, "msg": f"snapshot unreadable, not reverting: {exc.msg}"}
            if data is None:
                return {"changed": False, "msg": "nothing to revert"}
            remaining = data["deadline"] - time.time()
            if remaining > 0:
                time.sleep(min(remaining, RETRY_SLEEP_SECONDS))
                continue
            try:
                result = self.cmd_revert(args)
            except ConntrackModuleError:
                result = {"failed": True}
            if result.get("failed"):
                time.sleep(RETRY_SLEEP_SECONDS)

    def cmd_discard(self, args: argparse.Namespace) -> dict:
        with self.store.lock(self.lock_timeout):
            for ident in args.id:
                self.store.remove(check_id(ident))
                self.scheduler.cancel(ident)
            self.store.remove_if_empty()
        return {"changed": True, "msg": f"removed snapshot(s) {', '.join(args.id)} without restoring anything"}

    def cmd_collect(self, args: argparse.Namespace) -> dict:
        """Everything collect reads on the host, in one run: the windows (the status, with its overdue sweep), the
        conntrack lists and the plan of every namespace, and the invalid-packet log since the earliest enable; the
        report built from them, written to the local facts file with --facts-dest (not with --check)."""
        host = ProcessHost(check_mode=args.check)
        status = self.cmd_status(args)
        lists, plans, outside = [], {}, read_outside()

        def load(name: str) -> bool:
            if args.check:
                return False
            modprobe(host, name, dry_run=False)
            return True

        for spec in args.netns or [None]:
            with self.entered(spec, None) as identity:
                facts, dummy = gather(netns=identity["path"] if spec else None, load_module=load)
                plans[snapshot_id(spec)] = plan_from(probe(host, spec, outside), {})
            lists.append(facts)
        start = since_monotonic(status)
        invalid_log = read_invalid_log(
            host, source=args.log_source, log_path=args.log_path, since="boot" if start is None else None,
            since_monotonic=start, max_samples=args.max_samples,
            interfaces={label: plan["interfaces"] for label, plan in plans.items()})
        report = build_report(args.report_host, status, lists, invalid_log, acting_in_netns=bool(args.netns),
                              plans=plans)
        result = {"changed": False, "report": report}
        if args.facts_dest:
            written = False
            if not args.check:
                text = json.dumps(report, sort_keys=True, indent=1) + "\n"
                written = bool(write_file(args.facts_dest, text.encode("utf-8"), 0o644)["changed"])
            result.update(changed=written, facts_file={"dest": args.facts_dest, "written": written})
        # A dead automatic revert or a vanished namespace is said on every collect until someone acts.
        warnings = list(dict.fromkeys((status.get("problems") or []) + host.warnings))
        if warnings:
            result["warnings"] = warnings
        return result


def make_dirs(directory: str) -> None:
    """Create missing parents with the usual 0755 of system directories, whatever the umask."""
    missing = []
    while directory and not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for path in reversed(missing):
        os.mkdir(path)
        os.chmod(path, 0o755)


def write_file(dest: str, payload: bytes, mode: int) -> dict:
    """Write dest atomically (a temporary file in its directory, renamed); unchanged content is not rewritten."""
    try:
        with open(dest, "rb") as handle:
            if handle.read() == payload and stat.S_IMODE(os.fstat(handle.fileno()).st_mode) == mode:
                return {"changed": False, "dest": dest}
    except OSError:
        pass
    make_dirs(os.path.dirname(dest))
    write_atomically(dest, payload, mode)
    return {"changed": True, "dest": dest}


def monotonic_now() -> float:
    return round(time.clock_gettime(time.CLOCK_MONOTONIC), 3)


def check_duration(value: object) -> float:
    """A duration in seconds, 0 < duration <= MAX_DURATION; booleans and non-numbers are refused."""
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, (int, float)) or math.isnan(number):
        raise ConntrackModuleError(f"duration {value!r} is not a number of seconds")
    value = number
    if value < 1 or value > MAX_DURATION:
        raise ConntrackModuleError(
            f"duration {value!r} is out of range: give 1 to {MAX_DURATION} seconds ({MAX_DURATION // 86400} days)")
    return float(value)


def site_query(text: str) -> tuple:
    """A --dyndbg-site JSON entry as (Query, op, flags), validated by the module's own query builder."""
    try:
        entry = json.loads(text)
    except ValueError:
        raise ConntrackModuleError(f"--dyndbg-site {text!r} is not JSON") from None
    return validate_site(entry)


def validate_site(entry: object) -> tuple:
    """The rules dynamic_debug_site applies to its options, for one dynamic_debug_sites entry."""
    if not isinstance(entry, dict):
        raise ConntrackModuleError(f"dynamic_debug_sites entry {entry!r} is not a dictionary")
    unknown = sorted(set(entry) - set(SITE_FIELDS) - {"require_match"})
    if unknown:
        raise ConntrackModuleError(f"dynamic_debug_sites entry {entry!r}: unknown key(s) {', '.join(unknown)}")
    # Only a missing (or null) option takes the module's default: the module refuses an empty flags or state.
    state = "enabled" if entry.get("state") is None else entry["state"]
    if state not in OPERATIONS:
        raise ConntrackModuleError(f"dynamic_debug_sites entry {entry!r}: state must be one of {', '.join(OPERATIONS)}")
    line = entry.get("line")
    if line is not None and (isinstance(line, bool) or not isinstance(line, (int, str))):
        raise ConntrackModuleError(f"line must be a number or a range such as 100-200, not {line!r}")
    try:
        flags = parse_flags("p" if entry.get("flags") is None else entry["flags"])
    except ValueError as exc:
        raise ConntrackModuleError(str(exc)) from exc
    query = make_query(file=entry.get("file"), func=entry.get("func"), module=entry.get("module"),
                       format=entry.get("format"), line=None if line is None else str(line),
                       class_name=entry.get("class"))
    build_query(query, OPERATIONS[state], flags)
    return query, OPERATIONS[state], flags


def site_record(site: Site) -> dict:
    return {"filename": site.filename, "lineno": site.lineno, "module": site.module, "function": site.function,
            "format": site.format, "class": site.class_name}


def site_key(record: dict) -> tuple:
    return (record["filename"], record["lineno"], record.get("function"), record.get("format"))


def own_sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


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
        cmd.add_argument("--netns", action="append", help="namespace name or path (repeatable); default: this one")
        cmd.add_argument("--duration", type=float, help="seconds until the automatic revert")
        cmd.add_argument("--log-invalid", help="protocol enable sets in nf_conntrack_log_invalid")
        cmd.add_argument("--family", action="append", help="family whose nf_log.N enable sets (repeatable)")
        cmd.add_argument("--backend", help="logger enable binds (auto, none or a name)")
        cmd.add_argument("--all-netns", choices=["on", "off"], help="value enable sets in nf_log_all_netns")
        cmd.add_argument("--dyndbg-site", action="append", help="JSON dynamic_debug_sites entry (repeatable)")
        cmd.add_argument("--no-schedule", action="store_true", help="do not schedule the automatic revert")
    enable.add_argument("--check", action="store_true", help="predict the steps and the plan; change nothing")
    enable.add_argument("--diff", action="store_true", help="return each step's before and after")
    for name, helptext in (("revert", "compare-and-restore from the snapshot"), ("status", "show the windows")):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument("--netns", action="append")
        cmd.add_argument("--id", action="append")
        cmd.add_argument("--all", action="store_true")
        cmd.add_argument("--scheduled", action="store_true", help=argparse.SUPPRESS)
        cmd.add_argument("--host-sites", action="store_true",
                         help="also the initial namespace's snapshot when it records dynamic-debug sites")
        cmd.add_argument("--window", help=argparse.SUPPRESS if name == "status" else
                         "the token of the enable rolling itself back (removes its unconfirmed window)")
    conf = sub.add_parser("confirm", help="last step of enable: mark the window applied (undoes one taken away)")
    conf.add_argument("--netns", action="append")
    conf.add_argument("--id", action="append")
    conf.add_argument("--window", required=True, help="the token snapshot returned")
    wait = sub.add_parser("wait-and-revert", help="detached fallback: sleep until the deadline, then revert")
    wait.add_argument("--id", action="append", required=True)
    disc = sub.add_parser("discard", help="remove a snapshot without restoring anything (recovery)")
    disc.add_argument("--id", action="append", required=True)
    collect = sub.add_parser("collect", help="the windows, lists, plan and invalid log as one report")
    collect.add_argument("--netns", action="append", help="namespace name or path (repeatable); default: this one")
    collect.add_argument("--report-host", default="", help="the host's name in the report (its inventory name)")
    collect.add_argument("--max-samples", type=int, default=10, help="sample log lines kept in the report")
    collect.add_argument("--log-source", choices=SOURCES, default="auto", help="where the kernel log is read")
    collect.add_argument("--log-path", help="the log file with --log-source=file")
    collect.add_argument("--facts-dest", help="also write the report to this local facts file")
    collect.add_argument("--check", action="store_true", help="load no kernel module and write no file")
    return top


def install(program: str, dest: str) -> tuple[str, dict | None]:
    """Copy the running program to dest; returns (dest, None), or (program, the failed answer)."""
    try:
        with open(program, "rb") as handle:
            write_file(dest, handle.read(), 0o700)
    except OSError as exc:
        return program, {"changed": False, "failed": True, "install_failed": True,
                         "msg": f"cannot install {dest}: {exc.strerror or exc}"}
    return dest, None


def emit(result: dict, code: int = 0) -> int:
    result["program_version"] = PROGRAM_NAME
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()
    return code


def main(argv: list[str] | None = None, program: str | None = None) -> int:
    program = os.path.abspath(program or sys.argv[0])
    args = parser().parse_args(argv)
    if args.expect_sha256 and args.expect_sha256.lower() != own_sha256(program):
        return emit({"changed": False, "failed": True, "stale_program": True,
                     "msg": f"{program} is not the expected version (SHA-256 {args.expect_sha256})"}, 3)
    os.umask(0o077)
    if args.install_to:
        # The command runs as the installed copy: the automatic revert it arms names that path, not this one.
        program, failure = install(program, os.path.abspath(args.install_to))
        if failure:
            return emit(failure, 1)
    # The environment (inherited by the detached watcher) shortens the waits for the fault tests.
    runner = Program(Store(args.state_dir), program,
                     lock_timeout=float(os.environ.get("CONNTRACK_DEBUG_LOCK_TIMEOUT", LOCK_TIMEOUT)),
                     overdue_grace=float(os.environ.get("CONNTRACK_DEBUG_OVERDUE_GRACE", OVERDUE_GRACE_SECONDS)))
    command = getattr(runner, "cmd_" + args.command.replace("-", "_"))
    try:
        result = command(args)
    except ConntrackModuleError as exc:
        return emit({"changed": False, "failed": True, "msg": exc.msg}, 1)
    except OSError as exc:
        return emit({"changed": False, "failed": True, "msg": f"{exc.filename or ''} {exc.strerror or exc}".strip()}, 1)
    return emit(result, 1 if result.get("failed") else 0)


__all__ = ("MAX_DURATION", "PROGRAM_NAME", "Program", "check_duration", "main", "parser", "validate_site")
