# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The host program's enable: snapshot, apply (the modules' own functions), confirm, and the plan.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

One window per namespace, each with its own token, deadline (on CLOCK_BOOTTIME) and revert. A second
enable of the same namespace with the same settings extends that window: the only way a deadline
moves. The host-wide values go to the shared record (``_window_shared``) and move no deadline.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
import uuid

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack_log_invalid import set_log_invalid
from ansible_collections.netfilter.conntrack.plugins.module_utils._containers import container_namespaces
from ansible_collections.netfilter.conntrack.plugins.module_utils._dynamic_debug import apply_site
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import ProcessHost
from ansible_collections.netfilter.conntrack.plugins.module_utils._names import load_etc_protocols
from ansible_collections.netfilter.conntrack.plugins.module_utils._nf_log import set_loggers, wanted_logger
from ansible_collections.netfilter.conntrack.plugins.module_utils._plan import intended_changes, plan_from, probe, read_outside
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl_keys import KEY_LOG_INVALID, logger_key
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_capture import NETLINK
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_request import request_of
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_revert import process_start
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_store import PROGRAM_NAME, boot_now, monotonic_now, snapshot_id


class EnableFailed(Exception):
    """A step of enable failed after the snapshot: cmd_enable rolls back."""

    def __init__(self, step: str, result: dict) -> None:
        super().__init__(step)
        self.step = step
        self.result = result

    def answer(self, steps: list) -> dict:
        return {"changed": False, "failed": True, "failed_step": self.step, "step_failure": self.result, "steps": steps,
                "msg": f"{self.step}: {self.result.get('msg') or 'unknown error'}"}


def all_netns_value(args: argparse.Namespace) -> str | None:
    return None if args.all_netns is None else ("1" if args.all_netns == "on" else "0")


class EnableCommands:
    """snapshot, enable and confirm (mixed into Program)."""

    def wanted_keys(self, args: argparse.Namespace, ident: str | None = None) -> dict:
        """{key: applied value} for what enable sets in the current namespace (same tables as the modules); a
        namespace on the netlink capture path binds nfnetlink_log."""
        request = request_of(args)
        keys = {}
        if request.protocol is not None:
            keys[KEY_LOG_INVALID] = str(request.protocol)
        backend = self.backend_for(args, ident)
        for number, logger in request.loggers.items():
            # A namespace on the netlink capture path binds its own logger instead of the one asked for.
            keys[logger_key(number)] = logger if backend == request.backend else wanted_logger(backend, number)
        return keys

    def window_specs(self, args: argparse.Namespace) -> list:
        """The namespaces of this run, once per run (kept on args): netns as given, then each container's, resolved
        through its runtime; [None], the connection's namespace, when neither is given."""
        if getattr(args, "specs", None) is None:
            request = request_of(args)
            args.containers_at, args.container_warnings = container_namespaces(self.host, request.containers,
                                                                               request.netns)
            args.specs = list(request.netns) + list(args.containers_at) or [None]
        return args.specs

    def open_window_namespace(self, args: argparse.Namespace, spec: str | None) -> tuple:
        """(spec, fd, identity) of one namespace of this run; a container's identity carries its names."""
        fd, identity = self.kernel.open_namespace(spec)
        if spec in args.containers_at:
            identity["container"] = args.containers_at[spec]
        return spec, fd, identity

    def refuse_conflict(self, ident: str, existing: dict | None, wanted: dict, identity: dict) -> None:
        """A second enable may extend an open window, not change what it set: revert would lose track."""
        for other in self.store.windows():
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

    def plan_windows(self, args: argparse.Namespace, opened: dict, result: dict) -> dict:
        """Per namespace: (spec, fd, identity, wanted keys, the open window or None), refusing conflicts."""
        plan = {}
        for ident, (spec, fd, identity) in opened.items():
            with self.kernel.entered(fd, identity["path"]):
                wanted = self.wanted_keys(args)
            existing = self.store.load(ident, self.command)
            if existing is not None and not self.same_namespace(existing, identity):
                result.setdefault("dropped", {})[ident] = (
                    f"the window recorded for {identity['path']} belonged to a namespace that no longer exists"
                    " (deleted and re-created): its snapshot was dropped without restoring anything")
                self.forget(ident)
                existing = None
            if existing is not None and existing.get("expired"):
                # A window reverted (or run out) before its enable confirmed: finish that revert, then open this one
                # from the values as they are now.
                result.setdefault("finished", {})[ident] = self.revert_one(ident)
                existing = None
            with self.kernel.entered(fd, identity["path"]):
                capture = self.choose_path(args.capture_request, existing)
            args.capture_paths[ident] = capture
            if capture["path"] == NETLINK:
                wanted = self.wanted_keys(args, ident)
            self.refuse_conflict(ident, existing, wanted, identity)
            plan[ident] = (spec, fd, identity, wanted, existing, capture)
        if args.capture_request and args.all_netns == "on" and all(
                capture["path"] == NETLINK for capture in args.capture_paths.values()):
            # Only the kernel-log logger reads it: the netlink capture sees every namespace without it.
            args.all_netns = None
            result.setdefault("warnings", []).append(
                "nf_log_all_netns was not set: every namespace is captured over netlink, which does not need it")
        return plan

    def cmd_snapshot(self, args: argparse.Namespace, enabler: dict | None = None) -> dict:
        request = request_of(args)
        args.capture_request = request.capture
        args.capture_paths = {}
        queries = [(site.parsed.query, site.parsed.op, site.parsed.flags) for site in request.sites]
        control = self.control() if queries else None
        result = {"changed": False, "namespaces": {}, "dynamic_debug": bool(control), "state_dir": self.store.directory}
        created = []
        with self.store.lock(self.lock_timeout):
            self.migrate_legacy()
            result["overdue"] = self.revert_overdue()
            opened = {}
            try:
                # Bad names and missing namespaces are refused here, before anything is written.
                for spec in self.window_specs(args):
                    opened[snapshot_id(spec)] = self.open_window_namespace(args, spec)
                plan = self.plan_windows(args, opened, result)
                window = next((p[4]["window"] for p in plan.values() if p[4] is not None), uuid.uuid4().hex)
                shared = self.acquire_shared(list(plan), all_netns_value(args), queries, control)
                if shared:
                    result["shared"] = shared
                    result["changed"] = result["changed"] or bool(shared["recorded"])
                for ident, entry in plan.items():
                    one = self.save_window(ident, entry, window, request.duration, enabler, args.no_schedule)
                    if one["created"]:
                        created.append(ident)
                    if entry[2].get("container"):
                        one["container"] = entry[2]["container"]
                    result["namespaces"][ident] = one
                    result["changed"] = result["changed"] or one["created"] or bool(one["recorded"]) or one["rearmed"]
                    if one["rearmed"]:
                        result.setdefault("warnings", []).append(
                            f"{ident}: the automatic revert of this window was NOT armed (its timer or watcher was"
                            " gone): armed again")
            except BaseException:
                # A failure half-way (a full state filesystem, a scheduler that cannot start) leaves no new
                # snapshot and no armed revert behind.
                for ident in created:
                    self.forget(ident)
                self.prune_shared()
                self.store.remove_if_empty()
                raise
            finally:
                for _spec, fd, _identity in opened.values():
                    if fd is not None:
                        os.close(fd)
        result["window"] = window
        result["deadline"] = max(ns["deadline"] for ns in result["namespaces"].values())
        return result

    def save_window(self, ident: str, entry: tuple, window: str, duration: float, enabler: dict | None,
                    no_schedule: bool) -> dict:
        """Record (or extend) one namespace's window and arm its revert; returns what the answer says of it."""
        spec, fd, identity, wanted, existing, capture = entry
        now, now_boot = time.time(), boot_now()
        data = existing or {"id": ident, "netns": identity, "created": now, "created_monotonic": monotonic_now(),
                            "keys": {}, "dyndbg": [], "window": window, "capture": capture}
        new_keys = []
        with self.kernel.entered(fd, identity["path"]):
            if existing is None:
                data["stats_baseline"] = self.kernel.read_stats()
            for key, applied in wanted.items():
                if key not in data["keys"]:
                    data["keys"][key] = {"original": self.kernel.sysctl_value(key), "applied": applied}
                    new_keys.append(key)
                else:
                    data["keys"][key]["applied"] = applied
        asked = now_boot + duration
        extended = existing is not None and asked > existing["deadline_boot"]
        # Its timer or watcher died (stopped, killed, its unit lost): arming it again below changes what the host
        # does at the deadline, so it counts as a change and is said.
        rearmed = existing is not None and not no_schedule and not self.scheduler.alive(existing.get("scheduler"), ident)
        data["deadline_boot"] = max(asked, (existing or {}).get("deadline_boot", 0))
        data["deadline"] = now + (data["deadline_boot"] - now_boot)
        data.update(window=window, written_by=PROGRAM_NAME, confirmed=False, scheduler={"kind": "none"})
        if enabler:
            data["enabler"] = enabler
        self.store.save(data)
        if not no_schedule:
            data["scheduler"] = self.scheduler.arm(ident, data["deadline_boot"])
            self.store.save(data)
        return {"netns": spec, "identity": {"dev": identity["dev"], "ino": identity["ino"]},
                "snapshot": self.store.path(ident), "created": existing is None, "recorded": new_keys,
                "deadline": data["deadline"], "deadline_extended": extended, "rearmed": rearmed,
                "enabled_at": data["created"], "enabled_at_monotonic": data["created_monotonic"],
                "scheduler": data["scheduler"], "capture": capture,
                "original": {k: v["original"] for k, v in data["keys"].items()}}

    # ------------------------------------------------------------------ enable in one run

    def cmd_enable(self, args: argparse.Namespace) -> dict:
        """Snapshot, apply (the modules' own functions), confirm and plan: the whole host side of enable.

        A failing step or confirm reverts exactly the snapshots this enable took or extended, and the answer says
        which step failed (``failed_step``, ``step_failure``) and what the rollback did (``rollback``). ``--check``
        takes no snapshot and only predicts the steps (not the dynamic-debug sites) and the plan.
        """
        host = self.host.for_run(check_mode=args.check, diff=args.diff)
        sites = request_of(args).sites
        self.window_specs(args)
        steps, diffs = [], []
        if args.check:
            try:
                self.predict_capture(args)
                self.apply(args, host, steps, diffs, [], None)
            except EnableFailed as failure:
                return failure.answer(steps)
            # Each namespace's capture path as a real run would choose it (the log group is not probed).
            return self.enabled({"changed": any(step["changed"] for step in steps), "capture": args.capture_paths},
                                args, host, steps, diffs)
        # Without its start time a dead enabler could not be told from a live one: record none, the confirm decides.
        started = process_start(os.getpid())
        snapshot = self.cmd_snapshot(args, enabler={"pid": os.getpid(), "start": started} if started else None)
        # Exactly the windows this enable opened or extended.
        ids, window = list(snapshot["namespaces"]), snapshot["window"]
        try:
            # Before the loggers are bound, so that no message finds nobody listening.
            self.capture_step(args, steps, snapshot)
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
                    window=window, id=ids, netns=None, all=False, scheduled=False, check=False))
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
        for warning in getattr(args, "container_warnings", None) or []:
            host.warn(warning)
        intended = {}
        if args.check:
            request = request_of(args)
            intended = intended_changes(None if request.protocol is None else str(request.protocol),
                                        request.backend.lower() == "auto", args.all_netns == "on")
        plans, outside = {}, read_outside(host.kernel)
        for spec in self.window_specs(args):
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
        fd, identity = self.kernel.open_namespace(spec)
        try:
            recorded = ((snapshot or {}).get("namespaces", {}).get(snapshot_id(spec)) or {}).get("identity")
            if recorded and (recorded["dev"], recorded["ino"]) != (identity["dev"], identity["ino"]):
                raise ConntrackModuleError(f"{identity['path']} is no longer the network namespace enable recorded"
                                           " (deleted and re-created while enable ran)")
            with self.kernel.entered(fd, identity["path"]):
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
        request = request_of(args)
        specs = self.window_specs(args)
        etc_protocols = load_etc_protocols()
        loaded = False
        for spec in specs if request.protocol is not None else []:
            result = self.step(steps, diffs, "Log invalid packets", spec, snapshot, lambda: set_log_invalid(
                host, request.protocol, True, etc_protocols))
            loaded = loaded or bool(result.get("loaded_module"))
        for spec in specs:
            all_netns = True if spec is None and args.all_netns == "on" else None
            backend = self.backend_for(args, snapshot_id(spec))
            self.step(steps, diffs, "Bind the loggers", spec, snapshot, lambda spec=spec, all_netns=all_netns,
                      backend=backend: set_loggers(host, request.families or None, backend, all_netns, True,
                                                   in_netns=spec is not None))
        if args.all_netns == "on" and specs != [None]:
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
            parsed = site.parsed._replace(control_path=control)
            result = self.step(steps, diffs, "Switch the dynamic-debug sites on", None, snapshot,
                               lambda parsed=parsed: apply_site(host, parsed))
            steps[-1]["matched"] = len(result.get("sites") or [])
            if not result.get("sites"):
                # Only reachable with require_match=false (the role's default): say so rather than report a window
                # whose dynamic-debug part does nothing.
                host.warn(f"dynamic_debug_sites entry {site.shown()} matches no site on this"
                          " kernel: nothing was switched on for it")
        return snapshot

    def predict_capture(self, args: argparse.Namespace) -> None:
        """Check mode: each namespace's capture path as enable would choose it (the log group is not probed)."""
        args.capture_request = request_of(args).capture
        args.capture_paths = {}
        for spec in self.window_specs(args):
            with self.entered(spec, None):
                existing = self.store.load(snapshot_id(spec), self.command) if self.store.ensure(create=False) else None
                args.capture_paths[snapshot_id(spec)] = self.choose_path(args.capture_request, existing, probe_group=False)
        if args.capture_request and args.all_netns == "on" and all(
                capture["path"] == NETLINK for capture in args.capture_paths.values()):
            args.all_netns = None

    def capture_step(self, args: argparse.Namespace, steps: list, snapshot: dict) -> None:
        """Start (or re-arm, or change) the collector of the state directory for the windows on the netlink path."""
        if not any(one.get("capture", {}).get("path") == NETLINK for one in snapshot["namespaces"].values()):
            return
        entry = {"step": "Start the capture collector", "netns": None, "changed": False}
        steps.append(entry)
        try:
            with self.store.lock(self.lock_timeout):
                collector = self.ensure_collector(args.capture_request)
        except (ConntrackModuleError, OSError) as exc:
            raise EnableFailed(entry["step"], {"failed": True, "msg": getattr(exc, "msg", None) or str(exc)}) from None
        # "kind" says how a collector was started by this run; one already running for the same namespaces has none.
        entry.update(changed="kind" in collector, collector=collector)
        if collector.get("rearmed"):
            snapshot.setdefault("warnings", []).append(
                "the capture collector was NOT running (killed or failed): started again, its counts carry on")
        taken = [f"{label}: {status}" for label, status in (collector.get("namespaces") or {}).items()
                 if status != "capturing"]
        if taken:
            raise EnableFailed(entry["step"], {"failed": True, "msg": "the collector cannot capture "
                                               + "; ".join(taken)})

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
                one.pop("shared", None)
                result["namespaces"][ident] = one
                result["changed"] = result["changed"] or one["changed"]
            if any(one.get("expired") for one in result["namespaces"].values()):
                self.scheduler.settle()
                self.store.remove_if_empty()
        failures = [f"{ident}: {one['msg']}" for ident, one in result["namespaces"].items() if one.get("failed")]
        if failures:
            result.update(failed=True, msg="; ".join(failures))
        return result
