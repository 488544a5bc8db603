# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Open or close a conntrack debug window on a host in one task (see plugins/modules/conntrack_debug_window.py)."""

from __future__ import annotations

import json
import typing as t

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._names import load_etc_protocols
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_request import (
    REQUEST_FIELDS,
    WindowRequest,
    parse_window_request,
)
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._argspecs import WINDOW_ARGUMENT_SPEC
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._builtin_actions import run_builtin_action
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._role_arguments import (
    WINDOW_ENTRY_POINTS,
    validate_role_variables,
)
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._window_app import WindowApp


# The package the role's enable has installed since 0.1.0 (Debian's name; conntrack-tools elsewhere).
TOOLS_PACKAGE = "conntrack"


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
    # No temporary directory up front: over a pipelining connection the program goes on stdin, and WindowApp
    # makes the directory itself only when it has to transfer the program.
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        # Before this action's own options, which the role's tasks template from those variables: a bad value is
        # then reported under the variable's name, as the role's validation task would.
        entry_point = WINDOW_ENTRY_POINTS.get(str(self._task.args.get("state")))
        if entry_point and boolean(self._task.args.get("validate_role_variables", False), strict=False):
            validate_role_variables(self, task_vars, entry_point)
        _validation, args = self.validate_argument_spec(
            argument_spec=WINDOW_ARGUMENT_SPEC,
            required_if=[("state", "enabled", ["duration"])],
        )
        if args["install_tools"] and args["state"] != "enabled":
            raise AnsibleActionFail("install_tools installs conntrack-tools with state=enabled only"
                                    f" (state={args['state']})")
        self._vars = task_vars
        try:
            if args["state"] == "reverted":
                result.update(self._revert(args))
            elif args["state"] == "absent":
                result.update(self._cleanup(args))
            else:
                result.update(self._enable(args))
            return result
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

    # ------------------------------------------------------------------ enable

    @staticmethod
    def _request(args: dict[str, t.Any]) -> WindowRequest:
        """Refuse bad or contradictory options before anything is touched, with the request type the host uses."""
        options = {name: args[name] for name in REQUEST_FIELDS if name != "capture"}
        options["capture"] = {"mode": args["capture"], "budgets": args["capture_budget"] or {},
                              "samples_per_reason": args["samples_per_reason"]}
        try:
            return parse_window_request(options, load_etc_protocols(), on_controller=True)
        except ConntrackModuleError as exc:
            raise AnsibleActionFail(f"Refusing to enable: {exc.msg}") from None

    def _enable_argv(self, request: WindowRequest) -> list[str]:
        argv = ["enable", "--request=" + request.argument()]
        if self._task.check_mode:
            argv.append("--check")
        if self._task.diff:
            argv.append("--diff")
        return argv

    def _enable(self, args: dict[str, t.Any]) -> dict[str, t.Any]:
        """One run of the host program: snapshot, apply, confirm and plan (check mode: the steps and the plan only)."""
        request = self._request(args)
        check_mode = self._task.check_mode
        # Check mode runs the controller's copy when the installed one is missing or stale, and installs nothing.
        program = WindowApp(self, self._vars, args["program_dir"], install=not check_mode)
        rc, answer = program.run(self._enable_argv(request))
        if rc != 0 and "failed_step" not in answer:
            raise AnsibleActionFail(f"Refusing to enable: {answer.get('msg')}",
                                    result=dict(answer, program=program.description()))
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
        result = dict(answer, program=program.description())
        if check_mode:
            result["msg"] = "check mode: no snapshot was taken and no revert scheduled; dynamic-debug sites not predicted"
        else:
            result["changed"] = bool(answer.get("changed")) or program.installed
        if args["install_tools"]:
            self._install_tools(result)
        return result

    def _install_tools(self, result: dict[str, t.Any]) -> None:
        """conntrack-tools, once the window is open (see install_tools); a failure fails the task, window kept."""
        installed = run_builtin_action(self, "ansible.builtin.package", {"name": TOOLS_PACKAGE, "state": "present"},
                                       self._vars)
        result["tools"] = {"name": TOOLS_PACKAGE, "changed": bool(installed.get("changed"))}
        if installed.get("failed"):
            result["tools"]["msg"] = installed.get("msg")
            state = ("check mode" if self._task.check_mode else
                     "the window is open (it reverts by itself at its deadline, or run revert)")
            raise AnsibleActionFail(f"{state}, but installing {TOOLS_PACKAGE} failed: {installed.get('msg')}",
                                    result=result)
        result["changed"] = bool(result.get("changed")) or result["tools"]["changed"]

    # ------------------------------------------------------------------ revert

    def _revert(self, args: dict[str, t.Any]) -> dict[str, t.Any]:
        if args["revert_scope"] == "all":
            given = [name for name in ("netns", "containers") if args[name]]
            if given:
                raise AnsibleActionFail(
                    f"revert_scope=all reverts every namespace; it contradicts {' and '.join(given)}"
                    f" ({args['netns'] + args['containers']}): set one or the other")
            ids = ["--all"]
        else:
            # The host-wide values (nf_log_all_netns, the sites) are restored with the last window that holds them:
            # naming the host's window here would end a window of its own that is open beside these.
            ids = ([f"--netns={name}" for name in args["netns"]] + [f"--container={name}" for name in args["containers"]]
                   or ["--id=init"])
        program = WindowApp(self, self._vars, args["program_dir"], install=False, send_with_command=False)
        if self._task.check_mode:
            # The program's own check mode: what a real revert would restore, for exactly these windows; nothing
            # is changed, not even an overdue window of another namespace.
            ids.append("--check")
        rc, reverted = program.run(["revert"] + ids)
        result = dict(reverted, program=program.description())
        if rc != 0:
            raise AnsibleActionFail(reverted.get("msg") or "revert failed", result=result)
        return result

    # ------------------------------------------------------------------ cleanup

    def _cleanup(self, args: dict[str, t.Any]) -> dict[str, t.Any]:
        program = WindowApp(self, self._vars, args["program_dir"], install=False, send_with_command=False)
        argv = ["cleanup", f"--path={args['facts_path']}", f"--program-path={program.path}"]
        if self._task.check_mode:
            argv.append("--check")
        rc, cleaned = program.run(argv)
        result = dict(cleaned, program=program.description())
        if rc != 0:
            raise AnsibleActionFail(cleaned.get("msg") or "cleanup failed", result=result)
        return result
