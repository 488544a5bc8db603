# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The host program's revert: compare-and-restore one window, the automatic revert, and its check mode.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

Revert restores a value only where it still holds what enable set: a value someone else changed
meanwhile is left as it is, and said. ``--check`` (``dry_run``) reports what a real run would restore
and changes nothing: no value, no snapshot, no timer. The automatic revert (a timer, the watcher, the
sweep) and real runs are what keep the revert guarantee.
"""

from __future__ import annotations

import argparse
import os
import signal
import time

from ansible_collections.netfilter.conntrack.plugins.module_utils._capture_aggregate import process_start_ticks
from ansible_collections.netfilter.conntrack.plugins.module_utils._dynamic_debug import read_control
from ansible_collections.netfilter.conntrack.plugins.module_utils._dynamic_debug_model import parse_flags
from ansible_collections.netfilter.conntrack.plugins.module_utils._dynamic_debug_query import build_query, make_query
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl_keys import KEY_LOG_INVALID
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_scheduler import WATCHER
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_store import SHARED_ID, boot_now, check_id, snapshot_id

# A window reverted before its enable confirmed keeps its snapshot (as "expired") so that the confirm undoes what
# that enable applies late; once the enabling process is gone it is removed at once, else a last sweep this much later.
SWEEP_SECONDS = 600
RETRY_SLEEP_SECONDS = 5.0


def empty_report() -> dict:
    return {"restored": {}, "left": {}, "unchanged": [], "errors": {}}


def process_start(pid: int) -> str | None:
    """The start time of pid, as recorded in a window's enabler: a pid reused by another process has another."""
    ticks = process_start_ticks(pid)
    return None if ticks is None else str(ticks)


class RevertCommands:
    """revert, wait-and-revert, sweep and discard (mixed into Program)."""

    # ------------------------------------------------------------------ restoring

    def restore_sites(self, records: list, report: dict, dry_run: bool = False) -> None:
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
            flags = candidates[0].flags if candidates else None
            if flags is None or flags == record["original"]:
                report["unchanged"].append(name)
            elif flags != record["applied"]:
                report["left"][name] = {"current": flags, "set_by_enable": record["applied"],
                                        "original": record["original"],
                                        "reason": "changed by someone else during the debug window: left as it is"}
            elif dry_run:
                report["restored"][name] = {"from": flags, "to": record["original"]}
            else:
                self._write_site(control, record, flags, report, name)

    def _write_site(self, control: str, record: dict, flags: str, report: dict, name: str) -> None:
        # Two pr_debug calls on one source line share file, line and function: the whole format (anchored,
        # backslashes kept literal) keeps the write from resetting a site this window did not record.
        text = record.get("format")
        exact = "^" + text.replace("\\", "\\\\") if text and text.isascii() and "\0" not in text else None
        try:
            query = make_query(file=record["filename"], line=str(record["lineno"]),
                               func=record.get("function"), format=exact, class_name=record.get("class"))
            self.kernel.write_control(control, build_query(query, "=", parse_flags(record["original"])))
            report["restored"][name] = {"from": flags, "to": record["original"]}
        except ConntrackModuleError as exc:
            report["errors"][name] = exc.msg

    def restore_keys(self, keys: dict, report: dict, dry_run: bool = False) -> None:
        for key, entry in keys.items():
            original, applied = entry["original"], entry["applied"]
            target = original if original is not None else ("0" if key == KEY_LOG_INVALID else None)
            current = self.kernel.sysctl_value(key)
            if current is None or target is None or self.same_value(key, current, target):
                report["unchanged"].append(key)
            elif not self.same_value(key, current, applied):
                report["left"][key] = {"current": current, "set_by_enable": applied, "original": original,
                                       "reason": "changed by someone else during the debug window: left as it is"}
            elif dry_run:
                report["restored"][key] = {"from": current, "to": target}
            else:
                try:
                    self.kernel.sysctl_write(key, target)
                    back = self.kernel.sysctl_value(key)
                    if not self.same_value(key, back, target):
                        raise ConntrackModuleError(f"the kernel reads back {back!r}")
                    report["restored"][key] = {"from": current, "to": target}
                except ConntrackModuleError as exc:
                    report["errors"][key] = f"cannot write {target!r}: {exc.msg}"

    # ------------------------------------------------------------------ one window

    def enabler_running(self, data: dict) -> bool:
        """Whether the enable that opened an unconfirmed window may still apply something (and confirm)."""
        enabler = data.get("enabler")
        if not enabler:
            # Opened by a separate snapshot command (or an older release): its confirm may still come.
            return True
        return process_start(enabler["pid"]) == enabler.get("start")

    def forget(self, ident: str) -> dict | None:
        """Remove a window's snapshot and its timer, and give up its hold on the host-wide values."""
        self.scheduler.cancel(ident)
        self.store.remove(ident)
        return self.release_shared(ident)

    def revert_one(self, ident: str, scheduled: bool = False, window: str | None = None, dry_run: bool = False,
                   leaving: tuple = ()) -> dict:
        """Compare-and-restore one window. ``window`` is the token of the enable that rolls itself back: its
        unconfirmed window is removed at once instead of being kept for that enable's confirm. ``leaving`` (check
        mode) are the windows the same revert ends."""
        data = self.store.load(ident, self.command)
        if data is None:
            return {"changed": False, "msg": "nothing to revert", "restored": {}, "left": {}}
        fd, gone = self.namespace_of(data)
        if gone is not None:
            # Its values died with it; writing them anywhere else would change an unrelated namespace.
            one = {"changed": True, "dropped": True, "restored": {}, "left": {}, "netns": data["netns"]["spec"],
                   "msg": f"{gone}: nothing was restored and the window's snapshot was dropped"}
            if dry_run:
                return dict(one, msg=f"{gone}: a real run drops the window's snapshot")
            return dict(one, shared=self.forget(ident))
        report = empty_report()
        try:
            with self.kernel.entered(fd, data["netns"]["path"]):
                self.restore_keys(data["keys"], report, dry_run)
        finally:
            if fd is not None:
                os.close(fd)
        if data.get("dyndbg"):
            # Only a host snapshot of an older release records sites of its own; they are its to restore.
            self.restore_sites(data["dyndbg"], report, dry_run)
        if report["errors"]:
            return {"changed": bool(report["restored"]), "failed": True, **report,
                    "msg": f"could not restore {', '.join(report['errors'])}; the snapshot {self.store.path(ident)} is"
                           " kept so a later revert can retry"}
        if dry_run:
            return {"changed": bool(report["restored"]) or not data.get("expired"), **report, "check_mode": True,
                    "netns": data["netns"]["spec"], "shared": self.release_shared(ident, dry_run=True, leaving=leaving),
                    "msg": f"would revert {len(report['restored'])} value(s), leave {len(report['left'])} changed by"
                           " others"}
        rolling_back = window is not None and window == data.get("window")
        if not data.get("confirmed") and not data.get("expired") and not rolling_back and self.enabler_running(data):
            return self.keep_expired(ident, data, report, scheduled)
        cancelled = self.scheduler.cancel(ident)
        self.store.remove(ident)
        shared = self.release_shared(ident)
        # Removing the record of a window that already ended at its deadline restores nothing.
        one = {"changed": bool(report["restored"]) or not data.get("expired"), **report, "cancelled": cancelled,
               "netns": data["netns"]["spec"],
               "msg": f"reverted {len(report['restored'])} value(s), left {len(report['left'])} changed by others"}
        if shared is not None:
            one["shared"] = shared
        return one

    def keep_expired(self, ident: str, data: dict, report: dict, scheduled: bool) -> dict:
        """The enable that opened this window is still applying: keep the snapshot, so that its confirm undoes
        whatever it applies after this, and a last sweep does it should that enable die without confirming."""
        data["expired"] = True
        data["deadline_boot"] = boot_now() + SWEEP_SECONDS
        data["deadline"] = time.time() + SWEEP_SECONDS
        data["scheduler"] = self.scheduler.arm(ident, data["deadline_boot"], retry=scheduled, expired=True)
        self.store.save(data)
        return {"changed": bool(report["restored"]), **report, "netns": data["netns"]["spec"], "expired": True,
                "msg": f"reverted {len(report['restored'])} value(s) before enable confirmed; the snapshot stays"
                       f" until enable's confirm, or at most {SWEEP_SECONDS} s"}

    # ------------------------------------------------------------------ the command

    def select(self, args: argparse.Namespace) -> list[str]:
        """The windows a command acts on: --all, else every --netns and --id (this namespace's when none is given)."""
        if getattr(args, "all", False):
            return self.store.windows()
        netns = getattr(args, "netns", None)
        ids = [check_id(ident) for ident in getattr(args, "id", None) or []]
        if SHARED_ID in ids:
            raise ConntrackModuleError("the shared record is not a window: it is restored when its last window ends")
        if netns or not ids:
            ids = [snapshot_id(spec) for spec in (netns or [None])] + ids
        return list(dict.fromkeys(ids))

    def cmd_revert(self, args: argparse.Namespace) -> dict:
        dry_run = bool(getattr(args, "check", False))
        result = {"changed": False, "namespaces": {}}
        if not self.store.ensure(create=False):
            result["namespaces"] = {ident: {"changed": False, "msg": "nothing to revert"} for ident in self.select(args)}
            result["msg"] = "nothing to revert"
            return result
        with self.lock_for(args):
            if not dry_run:
                self.migrate_legacy()
            selected = self.select(args)
            for ident in selected:
                try:
                    one = self.revert_one(ident, scheduled=args.scheduled, window=getattr(args, "window", None),
                                          dry_run=dry_run, leaving=tuple(selected))
                except ConntrackModuleError as exc:
                    one = {"changed": False, "failed": True, "msg": exc.msg}
                result["namespaces"][ident] = one
                result["changed"] = result["changed"] or one["changed"]
            self.add_shared_outcome(result)
            if not dry_run:
                self.prune_shared()
                self.scheduler.settle()
                self.settle_capture(result)
                self.store.remove_if_empty()
        return self.revert_summary(result, dry_run)

    def settle_capture(self, result: dict) -> None:
        """Stop the collector with its last window (or start it again for the windows still open); its files stay."""
        try:
            collector = self.ensure_collector()
        except (ConntrackModuleError, OSError) as exc:
            result.setdefault("warnings", []).append(f"the capture collector: {getattr(exc, 'msg', None) or exc}")
            return
        if collector is None and os.path.isdir(self.capture_directory):
            result["captures"] = self.capture_directory

    @staticmethod
    def add_shared_outcome(result: dict) -> None:
        """What happened to the host-wide values, as one more entry (the last holder's release restores them)."""
        outcomes = [one.pop("shared") for one in result["namespaces"].values() if one.get("shared")]
        if outcomes:
            final = next((outcome for outcome in outcomes if "kept" not in outcome), outcomes[-1])
            result["namespaces"][SHARED_ID] = final
            result["changed"] = result["changed"] or final["changed"]

    @staticmethod
    def revert_summary(result: dict, dry_run: bool) -> dict:
        failures = [f"{i}: {r['msg']}" for i, r in result["namespaces"].items() if r.get("failed")]
        dropped = [f"{i}: {r['msg']}" for i, r in result["namespaces"].items() if r.get("dropped")]
        if failures:
            result.update(failed=True, msg="; ".join(failures))
        elif dry_run:
            would = [ident for ident, one in result["namespaces"].items() if one.get("changed")]
            result["msg"] = f"check mode: would revert {', '.join(would) or 'nothing'}; nothing was changed"
        elif dropped:
            result["msg"] = "; ".join(dropped)
        elif not result["changed"]:
            result["msg"] = "nothing to revert"
        return result

    def lock_for(self, args: argparse.Namespace):
        """The automatic revert waits for the lock as long as its snapshots exist; anyone else up to LOCK_TIMEOUT."""
        if not getattr(args, "scheduled", False):
            return self.store.lock(self.lock_timeout)
        ids = [check_id(ident) for ident in args.id or []]
        return self.store.lock(self.lock_timeout, keep_waiting=lambda: any(self.store.exists(ident) for ident in ids))

    # ------------------------------------------------------------------ the automatic revert and its backstops

    def due_windows(self, grace: float = 0.0) -> tuple[list[str], float]:
        """The windows past their deadline by more than grace, or expired with their enable gone; and the seconds
        until the next deadline."""
        due, next_in, now = [], RETRY_SLEEP_SECONDS, boot_now()
        for ident in self.store.windows():
            try:
                data = self.store.load(ident, self.command)
            except ConntrackModuleError:
                continue
            if data is None:
                continue
            remaining = data["deadline_boot"] - now
            if remaining + grace <= 0 or (data.get("expired") and not self.enabler_running(data)):
                due.append(ident)
            else:
                next_in = min(next_in, remaining + grace)
        return due, next_in

    def revert_due(self, due: list[str]) -> dict:
        return self.cmd_revert(argparse.Namespace(id=due, netns=None, all=False, scheduled=True, window=None, check=False))

    def revert_overdue(self) -> dict:
        """Revert windows past their deadline with no live timer, watcher or sweep; called with the lock held."""
        reverted = {}
        if self.scheduler.backstop()["alive"]:
            return reverted
        for ident in self.overdue():
            one = self.revert_one(ident, scheduled=True)
            reverted[ident] = dict(one, msg="the automatic revert did not run (its timer or watcher is gone): reverted"
                                            f" now, {one['msg']}")
        return reverted

    def overdue(self) -> list[str]:
        """The windows more than the grace past their deadline whose own revert is not armed."""
        due, _next = self.due_windows(self.overdue_grace)
        found = []
        for ident in due:
            data = self.store.load(ident, self.command)
            if data is not None and not self.scheduler.alive(data.get("scheduler"), ident):
                found.append(ident)
        return found

    def cmd_wait_and_revert(self, args: argparse.Namespace) -> dict:
        """The watcher (no systemd): revert every window of the state directory at its deadline, keep the partner
        alive, and exit when no window is left."""
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        slot = args.slot or WATCHER
        while not self.exit_if_idle(slot):
            try:
                due, next_in = self.due_windows()
                if due and self.revert_due(due).get("failed"):
                    next_in = RETRY_SLEEP_SECONDS
                if self.store.windows():
                    self.scheduler.ensure_watchers(own_slot=slot)
            except (ConntrackModuleError, OSError):
                next_in = RETRY_SLEEP_SECONDS
            if self.store.windows():
                time.sleep(max(0.05, min(next_in, RETRY_SLEEP_SECONDS)))
        return {"changed": False, "msg": "no window left"}

    def exit_if_idle(self, slot: str) -> bool:
        """With no window left, give up this watcher's pid file and the state directory; decided under the lock, so
        that an enable arming a window meanwhile (and seeing this watcher alive) is never left without one."""
        if self.store.windows():
            return False
        if not os.path.isdir(os.path.dirname(os.path.abspath(self.store.directory))):
            # The state directory went with its parent (a test's scratch directory): nothing is left to watch, and
            # taking the lock would only fail to re-create it, forever.
            return True
        try:
            with self.store.lock(self.lock_timeout):
                if self.store.windows():
                    return False
                if self.store.read_pid(slot) == os.getpid():
                    self.store.remove_pid(slot)
                self.store.remove_if_empty()
        except (ConntrackModuleError, OSError):
            return False
        return True

    def cmd_sweep(self, args: argparse.Namespace) -> dict:
        """The periodic sweep timer (systemd): revert the windows past their deadline whose own timer was lost or
        fired late, release what no window holds, and stop the sweep once no window is left."""
        del args
        result = {"changed": False, "namespaces": {}}
        if self.store.ensure(create=False):
            due, _next = self.due_windows()
            if due:
                result = self.revert_due(due)
            else:
                with self.store.lock(self.lock_timeout):
                    self.prune_shared()
                    self.scheduler.settle()
                    self.store.remove_if_empty()
        return result

    def cmd_discard(self, args: argparse.Namespace) -> dict:
        with self.store.lock(self.lock_timeout):
            for ident in args.id:
                self.store.remove(check_id(ident))
                self.scheduler.cancel(ident)
            self.prune_shared()
            self.scheduler.settle()
            result = {"changed": True, "msg": f"removed snapshot(s) {', '.join(args.id)} without restoring anything"}
            self.settle_capture(result)
            self.store.remove_if_empty()
        return result


__all__ = ("RETRY_SLEEP_SECONDS", "SWEEP_SECONDS", "RevertCommands", "empty_report", "process_start")
