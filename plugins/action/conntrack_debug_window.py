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
from ansible_collections.netfilter.conntrack.plugins.module_utils._names import resolve_family
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_capture import parse_request
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_request import check_duration, validate_site
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._argspecs import WINDOW_ARGUMENT_SPEC
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._window_app import WindowApp


def capture_argument(args: dict[str, t.Any]) -> str:
    """The host program's --capture: the mode, the budgets given and the samples, as one JSON argument."""
    return json.dumps({"mode": args["capture"], "budgets": args["capture_budget"] or {},
                       "samples_per_reason": args["samples_per_reason"]}, sort_keys=True)


def step_message(result: dict[str, t.Any]) -> str:
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
        try:
            if args["state"] == "reverted":
                return self._revert(args)
            if args["state"] == "absent":
                return self._cleanup(args)
            return self._enable(args)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

    # ------------------------------------------------------------------ enable

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
        try:
            parse_request(capture_argument(args))
        except ConntrackModuleError as exc:
            errors.append(exc.msg)
        if errors:
            raise AnsibleActionFail("Refusing to enable: " + "; ".join(errors))
        return sites

    def _enable_argv(self, args: dict[str, t.Any], sites: list[dict[str, t.Any]]) -> list[str]:
        argv = ["enable", f"--duration={check_duration(args['duration']):g}", f"--log-invalid={args['protocol']}",
                f"--backend={args['backend']}"]
        argv += [f"--family={family}" for family in args["families"]]
        argv += [f"--netns={name}" for name in args["netns"]]
        if args["all_netns"]:
            argv.append("--all-netns=on")
        argv += ["--dyndbg-site=" + json.dumps(site, sort_keys=True) for site in sites]
        if args["capture"] != "kernel_log":
            # The program's default is the kernel log, where no collector runs and budgets do not apply.
            argv.append("--capture=" + capture_argument(args))
        if self._task.check_mode:
            argv.append("--check")
        if self._task.diff:
            argv.append("--diff")
        return argv

    def _enable(self, args: dict[str, t.Any]) -> dict[str, t.Any]:
        """One run of the host program: snapshot, apply, confirm and plan (check mode: the steps and the plan only)."""
        sites = self._validate_enable(args)
        check_mode = self._task.check_mode
        # Check mode runs the controller's copy when the installed one is missing or stale, and installs nothing.
        program = WindowApp(self, self._vars, args["program_dir"], install=not check_mode)
        rc, answer = program.run(self._enable_argv(args, sites))
        if rc != 0 and "failed_step" not in answer:
            raise AnsibleActionFail(f"Refusing to enable: {answer.get('msg')}", result={"program": answer})
        if rc != 0:
            failure = answer["step_failure"]
            if check_mode:
                raise AnsibleActionFail(f"enable would fail at '{answer['failed_step']}': {step_message(failure)}",
                                        result={"steps": answer.get("steps")})
            rollback = answer.get("rollback") or {}
            rb_rc = 1 if rollback.get("failed") else 0
            raise AnsibleActionFail(f"enable failed at '{answer['failed_step']}': {step_message(failure)}. "
                                    f"{rollback_outcome(failure, rb_rc, rollback)}",
                                    result={"rollback": rollback, "steps": answer.get("steps")})
        result = dict(answer)
        if check_mode:
            result["msg"] = "check mode: no snapshot was taken and no revert scheduled; dynamic-debug sites not predicted"
            return result
        result["changed"] = bool(answer.get("changed")) or program.installed
        result["program"] = {"path": program.path, "installed": program.installed, "interpreter": program.interpreter}
        return result

    # ------------------------------------------------------------------ revert

    def _revert(self, args: dict[str, t.Any]) -> dict[str, t.Any]:
        if args["revert_scope"] == "all":
            if args["netns"]:
                raise AnsibleActionFail(
                    f"revert_scope=all reverts every namespace; it contradicts netns ({args['netns']}): set one or the other")
            ids = ["--all"]
        else:
            # The host-wide values (nf_log_all_netns, the sites) are restored with the last window that holds them:
            # naming the host's window here would end a window of its own that is open beside these.
            ids = [f"--netns={name}" for name in args["netns"]] or ["--id=init"]
        program = WindowApp(self, self._vars, args["program_dir"], install=False)
        if self._task.check_mode:
            # The program's own check mode: what a real revert would restore, for exactly these windows; nothing
            # is changed, not even an overdue window of another namespace.
            ids.append("--check")
        rc, reverted = program.run(["revert"] + ids)
        if rc != 0:
            raise AnsibleActionFail(reverted.get("msg") or "revert failed", result=reverted)
        return reverted

    # ------------------------------------------------------------------ cleanup

    def _cleanup(self, args: dict[str, t.Any]) -> dict[str, t.Any]:
        program = WindowApp(self, self._vars, args["program_dir"], install=False)
        argv = ["cleanup", f"--path={args['facts_path']}", f"--program-path={program.path}"]
        if self._task.check_mode:
            argv.append("--check")
        rc, cleaned = program.run(argv)
        if rc != 0:
            raise AnsibleActionFail(cleaned.get("msg") or "cleanup failed", result=cleaned)
        return cleaned
