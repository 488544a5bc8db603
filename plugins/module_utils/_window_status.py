# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The host program's status and collect: what each window holds now, and the report built from it.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

A real run reverts the windows that are past their deadline with no live revert (the last line of
defence). ``--check`` changes nothing: it says loudly which windows are overdue and leaves them.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import time

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack_facts import gather
from ansible_collections.netfilter.conntrack.plugins.module_utils._debug_report import build_report, since_monotonic
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._kernel_log import read_invalid_log
from ansible_collections.netfilter.conntrack.plugins.module_utils._kmod import modprobe
from ansible_collections.netfilter.conntrack.plugins.module_utils._plan import plan_from, probe, read_outside
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl_keys import KEY_ALL_NETNS
from ansible_collections.netfilter.conntrack.plugins.module_utils._table_makeup import read_makeup
from ansible_collections.netfilter.conntrack.plugins.module_utils._verdicts import thresholds_with
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_capture import NETLINK
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_install import make_dirs
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_store import (
    SHARED_ID,
    boot_now,
    monotonic_now,
    snapshot_id,
    write_atomically,
)

# The local facts file holds packet samples from the kernel log, which dmesg_restrict hides from users.
FACTS_FILE_MODE = 0o600


class ConntrackTables:
    """What collect reads of the conntrack tables of the namespace it has entered, over ctnetlink: the facts
    (counts, lists, statistics) and the table's make-up. The unit tests give the program their own."""

    @staticmethod
    def gather(netns: str | None, load_module) -> dict:
        facts, _unused = gather(netns=netns, load_module=load_module)
        return facts

    @staticmethod
    def makeup() -> dict:
        return read_makeup()


class StatusCommands:
    """status and collect (mixed into Program)."""

    def cmd_status(self, args: argparse.Namespace) -> dict:
        dry_run = bool(getattr(args, "check", False))
        result = {"changed": False, "namespaces": {}, "now": time.time(), "now_monotonic": monotonic_now()}
        problems = []
        if self.store.ensure(create=False):
            if dry_run:
                problems += [f"{ident}: OVERDUE: past its deadline with no automatic revert armed; check mode leaves"
                             " it on, a real run (collect, status, enable or revert) reverts it"
                             for ident in self.overdue()]
            else:
                with self.store.lock(self.lock_timeout):
                    result["overdue"] = self.revert_overdue()
        result["order"] = self.select(args)
        problems = [f"{ident}: {one['msg']}" for ident, one in (result.get("overdue") or {}).items()] + problems
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
        shared = self.shared_status()
        if shared:
            result["shared"] = shared
        result["backstop"] = self.scheduler.backstop()
        capture = self.capture_status(problems)
        if capture:
            result["capture"] = capture
        if problems:
            result["problems"] = problems
            result["msg"] = "; ".join(problems)
        result["nf_log_all_netns"] = self.kernel.sysctl_value(KEY_ALL_NETNS)
        return result

    def shared_status(self) -> dict | None:
        try:
            data = self.store.load(SHARED_ID, self.command)
        except ConntrackModuleError as exc:
            return {"unreadable": True, "msg": exc.msg}
        if data is None:
            return None
        return {"holders": data["holders"], "dyndbg": data["dyndbg"],
                "keys": {key: dict(entry, current=self.kernel.sysctl_value(key)) for key, entry in data["keys"].items()}}

    def window_status(self, ident: str, data: dict, problems: list) -> dict:
        scheduler_alive = self.scheduler.alive(data.get("scheduler"), ident)
        remaining = data["deadline_boot"] - boot_now()
        one = {
            "active": not data.get("expired"), "expired": bool(data.get("expired")),
            "confirmed": bool(data.get("confirmed")), "netns": data["netns"]["spec"],
            "container": data["netns"].get("container"),
            "identity": {"dev": data["netns"].get("dev"), "ino": data["netns"].get("ino")},
            "enabled_at": data["created"], "enabled_at_monotonic": data["created_monotonic"],
            # The deadline is kept on CLOCK_BOOTTIME; its wall-clock time is only shown, as of now.
            "deadline": time.time() + remaining, "remaining_seconds": max(0, round(remaining)),
            "scheduler": dict(data.get("scheduler") or {}, alive=scheduler_alive),
            "dyndbg": data.get("dyndbg", []), "stats_baseline": data.get("stats_baseline") or {},
            "format_read": data.get("upgraded_from", 3),
            "capture": data.get("capture") or {"path": "kernel_log", "why": "opened without a capture"},
        }
        if not scheduler_alive:
            backstop = self.scheduler.backstop()
            later = (f"; the {backstop['kind']} reverts it at most {backstop['period_seconds']} s after the deadline"
                     if backstop["alive"] and "period_seconds" in backstop else "")
            problems.append(f"{ident}: the automatic revert is NOT armed (its timer or watcher is gone){later}: run"
                            " enable again to re-arm it, or revert now")
        fd, gone = self.namespace_of(data)
        if gone is not None:
            problems.append(f"{ident}: {gone}; revert drops its snapshot ({self.command} discard --id {ident})")
            one.update(vanished=True, keys={k: dict(v, current=None) for k, v in data["keys"].items()},
                       stats_now=None, stats_delta={})
            return one
        try:
            with self.kernel.entered(fd, data["netns"]["path"]):
                current = {key: self.kernel.sysctl_value(key) for key in data["keys"]}
                stats = self.kernel.read_stats()
        finally:
            if fd is not None:
                os.close(fd)
        baseline = one["stats_baseline"]
        one["keys"] = {k: dict(v, current=current[k]) for k, v in data["keys"].items()}
        one["stats_now"] = stats
        one["stats_delta"] = {k: v - baseline.get(k, 0) for k, v in (stats or {}).items() if k not in ("entries", "count")}
        return one

    def cmd_collect(self, args: argparse.Namespace) -> dict:
        """Everything collect reads on the host, in one run: the windows (the status, with its overdue sweep), the
        conntrack lists and the plan of every namespace, and the invalid-packet log since the earliest enable; the
        report built from them, written to the local facts file with --facts-dest (not with --check)."""
        host = self.host.for_run(check_mode=args.check)
        capture_since = self.ask_for_write()
        status = self.cmd_status(args)
        lists, plans, outside = [], {}, read_outside(host.kernel)

        def load(name: str) -> bool:
            if args.check:
                return False
            modprobe(host, name, dry_run=False)
            return True

        makeups = {}
        for spec in args.netns or [None]:
            with self.entered(spec, None) as identity:
                facts = self.tables.gather(identity["path"] if spec else None, load)
                plans[snapshot_id(spec)] = plan_from(probe(host, spec, outside), {})
                if facts.get("loaded"):
                    # What the table is made of (unreplied share, protocols, ports, timeouts): the table-full and
                    # stale-UDP verdicts read it.
                    makeups[snapshot_id(spec)] = self.tables.makeup()
            lists.append(facts)
        start = since_monotonic(status)
        invalid_log = read_invalid_log(
            host, source=args.log_source, log_path=args.log_path, since="boot" if start is None else None,
            since_monotonic=start, max_samples=args.max_samples,
            interfaces={label: plan["interfaces"] for label, plan in plans.items()})
        capture, captured_reasons = self.capture_report(since=capture_since)
        # The capture files outlive their windows: an earlier window's capture is not the evidence of a window now
        # open that writes to the kernel log.
        logging_now = {label for label, one in (status.get("namespaces") or {}).items()
                       if one.get("active") and (one.get("capture") or {}).get("path") != NETLINK}
        captured_reasons = {label: reasons for label, reasons in captured_reasons.items() if label not in logging_now}
        thresholds = thresholds_with(json.loads(args.verdict_thresholds)) if args.verdict_thresholds else None
        captured = {label: {"events": one.get("events") or 0, "events_lost": (one.get("loss_detail") or {}).get("events_lost")}
                    for label, one in ((capture or {}).get("namespaces") or {}).items() if label in captured_reasons}
        report = build_report(args.report_host, status, lists, invalid_log, acting_in_netns=bool(args.netns),
                              plans=plans, captures=captured_reasons, thresholds=thresholds, makeups=makeups,
                              captured=captured)
        if capture is not None:
            report["capture"] = dict(capture, collector=(status.get("capture") or {}).get("collector", "stopped"))
        result = {"changed": False, "report": report}
        if args.facts_dest:
            written = False
            if not args.check:
                text = json.dumps(report, sort_keys=True, indent=1) + "\n"
                written = bool(write_file(args.facts_dest, text.encode("utf-8"), FACTS_FILE_MODE)["changed"])
            result.update(changed=written, facts_file={"dest": args.facts_dest, "written": written})
        # A dead automatic revert or a vanished namespace is said on every collect until someone acts.
        warnings = list(dict.fromkeys((status.get("problems") or []) + host.warnings))
        if warnings:
            result["warnings"] = warnings
        return result


def write_file(dest: str, payload: bytes, mode: int) -> dict:
    """Write dest atomically (a temporary file in its directory, renamed); unchanged content is not rewritten."""
    try:
        fd = os.open(dest, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == mode and handle.read() == payload:
                return {"changed": False, "dest": dest}
    except OSError:
        pass
    make_dirs(os.path.dirname(dest))
    write_atomically(dest, payload, mode)
    return {"changed": True, "dest": dest}


__all__ = ("ConntrackTables", "FACTS_FILE_MODE", "StatusCommands", "make_dirs", "write_file")
