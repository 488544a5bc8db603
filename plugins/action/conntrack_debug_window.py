# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Open or close a conntrack debug window on a host in one task (see plugins/modules/conntrack_debug_window.py)."""

from __future__ import annotations

import json
import typing as t

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._names import resolve_family, resolve_protocol
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_program import check_duration, validate_site
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_store import snapshot_id
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._argspecs import WINDOW_ARGUMENT_SPEC
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._window_app import WindowApp

COLLECTION = "netfilter.conntrack"


class EnableFailed(Exception):
    """A step of enable failed after the snapshot: the caller rolls back."""

    def __init__(self, step: str, result: dict[str, t.Any]) -> None:
        super().__init__(step)
        self.step = step
        self.result = result


def step_message(result: dict[str, t.Any]) -> str:
    for item in result.get("results") or []:
        if item.get("failed"):
            return str(item.get("msg"))
    return str(result.get("msg") or "unknown error")


def rollback_outcome(failure: dict[str, t.Any], rc: int, rollback: dict[str, t.Any]) -> str:
    """What the rollback achieved, in words that are true: "Rolled back" only when nothing was left changed."""
    left = {ident: one.get("left") for ident, one in (rollback.get("namespaces") or {}).items() if one.get("left")}
    if failure.get("window_gone") or any(one.get("window_gone") for one in (failure.get("namespaces") or {}).values()):
        return ("NOT ROLLED BACK: the window's snapshot was removed while enable ran, so the values this run applied"
                " stay until someone reverts them by hand (see steps)")
    if rc != 0:
        return f"ROLLBACK FAILED, check the host: {rollback.get('msg')}"
    if left:
        return ("PARTLY ROLLED BACK: values someone else changed meanwhile were left as they are:"
                f" {json.dumps(left, sort_keys=True)}")
    return "Rolled back: the host is as it was before debugging started."


class ActionModule(ActionBase):
    TRANSFERS_FILES = True
    _supports_check_mode = True

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(
            argument_spec=WINDOW_ARGUMENT_SPEC,
            required_if=[("state", "enabled", ["duration"])],
        )
        self._vars = task_vars
        self._diffs: list[dict[str, t.Any]] = []
        self._warnings: list[str] = []
        try:
            if args["state"] == "reverted":
                return self._revert(args)
            return self._enable(args)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

    # ------------------------------------------------------------------ helpers

    def _module(self, name: str, module_args: dict[str, t.Any]) -> dict[str, t.Any]:
        result = self._execute_module(module_name=f"{COLLECTION}.{name}", module_args=module_args, task_vars=self._vars)
        if result.get("diff"):
            self._diffs.append(result["diff"])
        return result

    @staticmethod
    def _validate_enable(args: dict[str, t.Any]) -> list[dict[str, t.Any]]:
        """Refuse bad or contradictory options before anything is touched, with the modules' own rules."""
        errors = []
        try:
            check_duration(args["duration"])
        except ConntrackModuleError as exc:
            errors.append(exc.msg)
        if str(args["protocol"]).strip().lower() in ("none", "0"):
            errors.append("protocol none switches logging off: use state=reverted instead")
        if not args["families"]:
            errors.append("families is empty: nothing would be logged")
        for family in args["families"]:
            try:
                resolve_family(family)
            except ConntrackModuleError as exc:
                errors.append(exc.msg)
        if str(args["backend"]).strip().lower() == "none":
            errors.append("backend none unbinds the logger while logging is switched on: nothing would be logged")
        sites = []
        for site in args["dynamic_debug_sites"]:
            cleaned = {key: value for key, value in site.items() if value is not None} if isinstance(site, dict) else site
            try:
                validate_site(cleaned)
            except ConntrackModuleError as exc:
                errors.append(f"dynamic_debug_sites entry {json.dumps(cleaned, sort_keys=True)}: {exc.msg}")
            sites.append(cleaned)
        if errors:
            raise AnsibleActionFail("Refusing to enable: " + "; ".join(errors))
        return sites

    def _plans(self, args: dict[str, t.Any], predict: bool) -> dict[str, t.Any]:
        """conntrack_plan_facts per namespace, keyed by window id; ``predict`` plans with what enable would set.

        The plan only informs: a namespace whose plan cannot be read gets a warning, not a failed enable.
        """
        plans: dict[str, t.Any] = {}
        for name in args["netns"] or [None]:
            module_args: dict[str, t.Any] = {"netns": name} if name else {}
            if predict:
                try:
                    module_args["log_invalid"] = str(resolve_protocol(args["protocol"]))
                except ConntrackModuleError:
                    pass
                module_args["bind"] = str(args["backend"]).strip().lower() == "auto"
                module_args["all_netns"] = bool(args["all_netns"])
            result = self._execute_module(module_name=f"{COLLECTION}.conntrack_plan_facts", module_args=module_args,
                                          task_vars=self._vars)
            plan = (result.get("ansible_facts") or {}).get("conntrack_plan")
            if result.get("failed") or plan is None:
                self._warnings.append(f"no plan for {name or 'this namespace'}: {result.get('msg')}")
                continue
            plans[snapshot_id(name)] = plan
        return plans

    # ------------------------------------------------------------------ enable

    def _snapshot_argv(self, args: dict[str, t.Any], sites: list[dict[str, t.Any]]) -> list[str]:
        argv = ["snapshot", f"--duration={check_duration(args['duration']):g}", f"--log-invalid={args['protocol']}",
                f"--backend={args['backend']}"]
        argv += [f"--family={family}" for family in args["families"]]
        argv += [f"--netns={name}" for name in args["netns"]]
        if args["all_netns"]:
            argv.append("--all-netns=on")
        # The program records what a query matches; flags and state tell it what enable will write.
        argv += ["--dyndbg-site=" + json.dumps({k: v for k, v in site.items() if k != "require_match"}, sort_keys=True)
                 for site in sites]
        return argv

    def _apply(self, args: dict[str, t.Any], sites: list[dict[str, t.Any]], dynamic_debug: bool,
               resnapshot: t.Callable[[], None]) -> list[dict[str, t.Any]]:
        """Run the collection's modules in order; raises EnableFailed naming the step that failed."""
        steps: list[dict[str, t.Any]] = []

        def record(step: str, netns: str | None, result: dict[str, t.Any]) -> dict[str, t.Any]:
            entry = {"step": step, "netns": netns, "changed": bool(result.get("changed"))}
            loaded = result.get("loaded_module") or result.get("loaded_modules")
            if loaded:
                entry["loaded"] = loaded
            steps.append(entry)
            if result.get("failed"):
                raise EnableFailed(step, result)
            return result

        namespaces = args["netns"] or [None]
        loaded = False
        for name in namespaces:
            result = record("Log invalid packets", name, self._module("conntrack_log_invalid", {
                "protocol": args["protocol"], **({"netns": name} if name else {})}))
            loaded = loaded or bool(result.get("loaded_module"))
        for name in namespaces:
            module_args: dict[str, t.Any] = {"family": args["families"], "backend": args["backend"]}
            if name:
                module_args["netns"] = name
            elif args["all_netns"]:
                module_args["all_netns"] = True
            record("Bind the loggers", name, self._module("nf_log_backend", module_args))
        if args["all_netns"] and args["netns"]:
            record("Let log lines of other namespaces reach the kernel log", None,
                   self._module("nf_log_backend", {"all_netns": True}))
        if sites and dynamic_debug:
            if loaded and not self._task.check_mode:
                # nf_conntrack was loaded by this enable, after the snapshot: its sites exist only now.
                resnapshot()
            for site in sites:
                result = record("Switch the dynamic-debug sites on", None, self._module("dynamic_debug_site", {
                    "flags": "p", "state": "enabled", **site}))
                steps[-1]["matched"] = len(result.get("sites") or [])
                if not result.get("sites"):
                    # Only reachable with require_match=false (the role's default): say so rather than report a
                    # window whose dynamic-debug part does nothing.
                    self._warnings.append(f"dynamic_debug_sites entry {json.dumps(site, sort_keys=True)} matches no"
                                          " site on this kernel: nothing was switched on for it")
        return steps

    def _enable(self, args: dict[str, t.Any]) -> dict[str, t.Any]:
        sites = self._validate_enable(args)
        if self._task.check_mode:
            steps = self._check_mode_apply(args, sites)
            predicted = {"changed": any(step["changed"] for step in steps), "steps": steps, "diff": self._diffs,
                         "msg": "check mode: no snapshot was taken and no revert scheduled; dynamic-debug sites not predicted",
                         "plan": self._plans(args, predict=True)}
            if self._warnings:
                predicted["warnings"] = self._warnings
            return predicted

        program = WindowApp(self, self._vars, args["program_dir"], install=True)
        snapshot_argv = self._snapshot_argv(args, sites)
        rc, snapshot = program.run(snapshot_argv)
        if rc != 0:
            raise AnsibleActionFail(f"Refusing to enable: {snapshot.get('msg')}", result={"program": snapshot})
        # Exactly the snapshots this enable created or extended (the host's one holds nf_log_all_netns and the
        # dynamic-debug sites).
        ids = [f"--id={ident}" for ident in snapshot["namespaces"]]
        window = f"--window={snapshot['window']}"

        def resnapshot() -> None:
            nonlocal snapshot
            again_rc, again = program.run(snapshot_argv)
            if again_rc != 0:
                raise EnableFailed("Record the dynamic-debug sites", again)
            snapshot = again

        try:
            steps = self._apply(args, sites, snapshot.get("dynamic_debug", False), resnapshot)
            # The revert was armed before the settings were applied; a window that ran out meanwhile (a short
            # duration across a large fleet) is reverted here instead of being left half-done.
            rc, confirm = program.run(["confirm", window] + ids)
            if rc != 0:
                raise EnableFailed("Confirm the window is applied", confirm)
        except EnableFailed as failure:
            try:
                rb_rc, rollback = program.run(["revert", window] + ids)
            except AnsibleActionFail as exc:
                rb_rc, rollback = 1, {"msg": f"the program did not answer the rollback: {exc.message}"}
            raise AnsibleActionFail(f"enable failed at '{failure.step}': {step_message(failure.result)}. "
                                    f"{rollback_outcome(failure.result, rb_rc, rollback)}",
                                    result={"rollback": rollback, "steps": failure.result.get("steps")}) from None

        result = dict(snapshot)
        result["changed"] = bool(snapshot.get("changed")) or program.installed or any(step["changed"] for step in steps)
        result["program"] = {"path": program.path, "installed": program.installed, "interpreter": program.interpreter}
        result["steps"] = steps
        result["plan"] = self._plans(args, predict=False)
        if self._diffs:
            result["diff"] = self._diffs
        if sites and not snapshot.get("dynamic_debug"):
            self._warnings.append("this kernel has no dynamic debug: dynamic_debug_sites were skipped")
        if self._warnings:
            result["warnings"] = self._warnings
        return result

    def _check_mode_apply(self, args: dict[str, t.Any], sites: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
        try:
            return self._apply(args, [], False, lambda: None)
        except EnableFailed as failure:
            raise AnsibleActionFail(f"enable would fail at '{failure.step}': {step_message(failure.result)}") from None

    # ------------------------------------------------------------------ revert

    def _revert(self, args: dict[str, t.Any]) -> dict[str, t.Any]:
        if args["revert_scope"] == "all":
            if args["netns"]:
                raise AnsibleActionFail(
                    f"revert_scope=all reverts every namespace; it contradicts netns ({args['netns']}): set one or the other")
            ids = ["--all"]
        else:
            ids = [f"--netns={name}" for name in args["netns"]]
            if not args["netns"] or args["all_netns"]:
                ids.append("--id=init")
            if args["dynamic_debug_sites"]:
                ids.append("--host-sites")
        program = WindowApp(self, self._vars, args["program_dir"], install=False)
        if self._task.check_mode:
            rc, status = program.run(["status"] + ids)
            if rc != 0:
                raise AnsibleActionFail(f"reading the debug window failed: {status.get('msg')}", result=status)
            active = [ident for ident, one in status.get("namespaces", {}).items() if one.get("active") or one.get("expired")]
            return {"changed": bool(active), "namespaces": {ident: {"would_revert": True} for ident in active},
                    "msg": f"check mode: would revert {', '.join(active) or 'nothing'}"}
        rc, reverted = program.run(["revert"] + ids)
        if rc != 0:
            raise AnsibleActionFail(reverted.get("msg") or "revert failed", result=reverted)
        return reverted
