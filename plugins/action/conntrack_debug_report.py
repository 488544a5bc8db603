# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Collect what a debug window showed on a host in one task (see plugins/modules/conntrack_debug_report.py).

The host program's ``collect`` command reads and builds the report in one remote run; the action writes the
controller's copy."""

from __future__ import annotations

import json
import os
import typing as t

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.netfilter.conntrack.plugins.module_utils._verdicts import thresholds_with
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._argspecs import REPORT_ARGUMENT_SPEC
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._builtin_actions import run_builtin_action
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._controller_file import (
    report_path,
    safe_file_name,
    write_controller_file,
)
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._role_arguments import (
    REPORT_ENTRY_POINT,
    validate_role_variables,
)
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._window_app import WindowApp


class ActionModule(ActionBase):
    # No temporary directory up front: collect never installs, and WindowApp makes one only to transfer the program.
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        if boolean(self._task.args.get("validate_role_variables", False), strict=False):
            validate_role_variables(self, task_vars, REPORT_ENTRY_POINT)
        _validation, args = self.validate_argument_spec(argument_spec=REPORT_ARGUMENT_SPEC,
                                                        required_if=[("log_source", "file", ["log_path"]),
                                                                     ("fetch_captures", True, ["report_dir"])])
        if args["max_samples"] < 0:
            raise AnsibleActionFail(f"max_samples must be 0 or more (got {args['max_samples']})")
        try:
            thresholds_with(args["verdict_thresholds"])
        except ValueError as exc:
            raise AnsibleActionFail(str(exc)) from exc
        try:
            result.update(self._collect(args, task_vars))
            return result
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

    def _collect(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        program = WindowApp(self, task_vars, args["program_dir"], install=False, send_with_command=False)
        host = task_vars.get("inventory_hostname", "")
        argv = ["collect", f"--report-host={host}", f"--max-samples={args['max_samples']}",
                f"--log-source={args['log_source']}"] + [f"--netns={name}" for name in args["netns"]]
        argv += [f"--container={name}" for name in args["containers"]]
        if args["log_path"]:
            argv.append(f"--log-path={args['log_path']}")
        if args["local_facts"]:
            argv.append(f"--facts-dest={args['facts_path']}")
        if args["verdict_thresholds"]:
            argv.append("--verdict-thresholds=" + json.dumps(args["verdict_thresholds"], sort_keys=True))
        if self._task.check_mode:
            argv.append("--check")
        rc, answer = program.run(argv)
        if rc != 0:
            raise AnsibleActionFail(f"collecting on the host failed: {answer.get('msg')}",
                                    result=dict(answer, program=program.description()))
        report = answer["report"]
        result: dict[str, t.Any] = {"changed": bool(answer.get("changed")), "program": program.description(),
                                    "ansible_facts": {"conntrack_debug_report": report}}
        if answer.get("warnings"):
            result["warnings"] = answer["warnings"]
        if "facts_file" in answer:
            result["facts_file"] = answer["facts_file"]
        if args["report_dir"] and not self._task.check_mode:
            # An inventory name such as ../../x or /abs/x must not write outside the report directory.
            try:
                path = report_path(args["report_dir"], host)
            except ValueError as exc:
                raise AnsibleActionFail(f"no report file for host {host!r}: {exc}") from exc
            write_controller_file(path, json.dumps(report, indent=4, sort_keys=True))
            result["report_file"] = path
            if args["fetch_captures"]:
                result["capture_files"], copied = self._fetch_captures(report, args["report_dir"], host, task_vars)
                result["changed"] = result["changed"] or copied
        return result

    def _fetch_captures(self, report: dict[str, t.Any], report_dir: str, host: str,
                        task_vars: dict[str, t.Any]) -> tuple[dict[str, str], bool]:
        """Each window's pcapng file, to REPORT_DIR/captures/HOST/WINDOW-ID.pcapng (see fetch_captures), and
        whether any of them was new or different."""
        fetched, changed = {}, False
        namespaces = ((report.get("capture") or {}).get("namespaces")) or {}
        for window_id, capture in sorted(namespaces.items()):
            if not capture.get("pcapng"):
                continue
            try:
                dest = report_path(os.path.join(report_dir, "captures", safe_file_name(host)), window_id, ".pcapng")
            except ValueError as exc:
                raise AnsibleActionFail(f"no capture file for host {host!r}, window {window_id!r}: {exc}") from exc
            copied = run_builtin_action(self, "ansible.builtin.fetch",
                                        {"src": capture["pcapng"], "dest": dest, "flat": True}, task_vars)
            if copied.get("failed"):
                raise AnsibleActionFail(f"bringing {capture['pcapng']} (window {window_id}) to {dest} failed:"
                                        f" {copied.get('msg')}", result={"capture_files": fetched})
            fetched[window_id] = dest
            changed = changed or bool(copied.get("changed"))
        return fetched, changed
