# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Collect what a debug window showed on a host in one task (see plugins/modules/conntrack_debug_report.py)."""

from __future__ import annotations

import json
import os
import time
import typing as t

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.netfilter.conntrack.plugins.module_utils._plan import diagnose
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_store import snapshot_id
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._argspecs import REPORT_ARGUMENT_SPEC
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._window_app import WindowApp

COLLECTION = "netfilter.conntrack"

NO_WINDOW_NOTE = "No debug window is active (enable was not run, or it was reverted): the log was read since boot."
CHILD_NAMESPACE_NOTE = (
    "Acting in a child network namespace and nothing was logged: lines of non-initial namespaces reach the "
    "kernel log only with net.netfilter.nf_log_all_netns=1 on the host (conntrack_debug_all_netns: true).")


def build_report(host: str, status: dict[str, t.Any], lists: list[dict[str, t.Any]], invalid_log: dict[str, t.Any],
                 acting_in_netns: bool, plans: dict[str, dict[str, t.Any]] | None = None) -> dict[str, t.Any]:
    """The per-host report from the program's status, one conntrack_lists_facts result per namespace of
    status["order"], the conntrack_invalid_log_facts summary and, with ``plans`` (conntrack_plan_facts per
    namespace id), the plan and the diagnosis (plan problems, counters reconciled with the log, table-full)."""
    windows = status.get("namespaces") or {}
    active = [window for window in windows.values() if window.get("active")]
    # nf_log_all_netns exists only in the initial namespace: None means the connection is in a child one.
    in_child = status.get("nf_log_all_netns") is None or acting_in_netns
    notes = [] if active else [NO_WINDOW_NOTE]
    if in_child and (status.get("nf_log_all_netns") or "0") != "1" and invalid_log.get("total", 0) == 0:
        notes.append(CHILD_NAMESPACE_NOTE)
    notes += status.get("problems") or []
    codes: list[str] = []
    for facts in lists:
        for finding in (facts.get("discrepancy") or {}).get("findings") or []:
            if finding.get("code") not in codes:
                codes.append(finding.get("code"))
    report = {
        "host": host,
        "collected_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(status.get("now") or 0))),
        "window_active": bool(active),
        "windows": windows,
        "conntrack": dict(zip(status.get("order") or [], lists)),
        "invalid_log": invalid_log,
        "discrepancy": codes,
        "notes": notes,
    }
    if plans is not None:
        report["plan"] = {label: {k: v for k, v in plan.items() if k != "probe"} for label, plan in plans.items()}
        report["diagnosis"] = diagnose(plans, windows, invalid_log, dict(zip(plans, lists)))
    return report


def since_monotonic(status: dict[str, t.Any]) -> float | None:
    """The earliest enable time of the active windows (CLOCK_MONOTONIC), None without one."""
    starts = [window["enabled_at_monotonic"] for window in (status.get("namespaces") or {}).values()
              if window.get("active") and window.get("enabled_at_monotonic") is not None]
    return min(starts) if starts else None


def write_controller_file(path: str, text: str) -> bool:
    """Write text to path on the controller (directory 0750, file 0640) unless it already holds it."""
    os.makedirs(os.path.dirname(path), mode=0o750, exist_ok=True)
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return False
    except OSError:
        pass
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return True


class ActionModule(ActionBase):
    TRANSFERS_FILES = True
    _supports_check_mode = True

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=REPORT_ARGUMENT_SPEC,
                                                        required_if=[("log_source", "file", ["log_path"])])
        if args["max_samples"] < 0:
            raise AnsibleActionFail(f"max_samples must be 0 or more (got {args['max_samples']})")
        try:
            return self._collect(args, task_vars)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

    def _module(self, name: str, module_args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        result = self._execute_module(module_name=f"{COLLECTION}.{name}", module_args=module_args, task_vars=task_vars)
        if result.get("failed"):
            raise AnsibleActionFail(f"{name}: {result.get('msg')}", result={"module": name, "module_result": result})
        return result

    def _collect(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        program = WindowApp(self, task_vars, args["program_dir"], install=False)
        rc, status = program.run(["status"] + [f"--netns={name}" for name in args["netns"]])
        if rc != 0:
            raise AnsibleActionFail(f"reading the debug window failed: {status.get('msg')}", result={"program": status})

        lists = []
        plans = {}
        for name in args["netns"] or [None]:
            facts = self._module("conntrack_lists_facts", {"netns": name} if name else {}, task_vars)
            lists.append(facts["ansible_facts"]["conntrack"])
            plan = self._module("conntrack_plan_facts", {"netns": name} if name else {}, task_vars)
            plans[snapshot_id(name)] = plan["ansible_facts"]["conntrack_plan"]
        start = since_monotonic(status)
        log_args: dict[str, t.Any] = {"max_samples": args["max_samples"], "source": args["log_source"],
                                      "interfaces": {label: plan["interfaces"] for label, plan in plans.items()}}
        if args["log_path"]:
            log_args["log_path"] = args["log_path"]
        if start is None:
            log_args["since"] = "boot"
        else:
            log_args["since_monotonic"] = start
        invalid_log = self._module("conntrack_invalid_log_facts", log_args, task_vars)["ansible_facts"]["conntrack_invalid"]

        host = task_vars.get("inventory_hostname", "")
        report = build_report(host, status, lists, invalid_log, acting_in_netns=bool(args["netns"]), plans=plans)
        result: dict[str, t.Any] = {"changed": False, "ansible_facts": {"conntrack_debug_report": report}}
        if status.get("problems"):
            # A dead automatic revert, a vanished namespace: said on every collect until someone acts.
            result["warnings"] = list(status["problems"])

        if args["local_facts"]:
            if self._task.check_mode:
                result["facts_file"] = {"dest": args["facts_path"], "written": False}
            else:
                source = program.put_data("report.json", json.dumps(report, sort_keys=True))
                rc, written = program.run(["write-fact", f"--dest={args['facts_path']}", f"--src={source}"])
                if rc != 0:
                    raise AnsibleActionFail(f"writing {args['facts_path']} failed: {written.get('msg')}")
                result["changed"] = bool(written.get("changed"))
                result["facts_file"] = {"dest": args["facts_path"], "written": bool(written.get("changed"))}
        if args["report_dir"] and not self._task.check_mode:
            path = os.path.join(os.path.abspath(args["report_dir"]), f"{host}.json")
            write_controller_file(path, json.dumps(report, indent=4, sort_keys=True))
            result["report_file"] = path
        return result
