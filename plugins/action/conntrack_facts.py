# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Gather the bounded conntrack summary of a host in one task (see plugins/modules/conntrack_facts.py)."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack_summary import FACTS_ARGUMENT_SPEC

COLLECTION = "netfilter.conntrack"
PLAN_MODULE = f"{COLLECTION}.conntrack_plan_facts"
# The plan's keys kept in the summary: the per-interface list and the raw probe would grow with the host.
PLAN_KEYS = ("problems", "steps", "blinders", "kernel", "initial_namespace")


def compact_plan(plan: dict[str, t.Any]) -> dict[str, t.Any]:
    return {key: plan[key] for key in PLAN_KEYS if key in plan}


def attach_plans(summary: dict[str, t.Any], plans: dict[str | None, dict[str, t.Any]]) -> None:
    """Put each namespace's plan into the summary (None: the connection's own) and the problem codes into worst."""
    codes: set[str] = set()
    for name, plan in plans.items():
        target = summary if name is None else summary["namespaces"].get(name)
        if target is None:
            continue
        target["plan"] = plan
        codes.update(str(problem.get("code")) for problem in plan.get("problems") or [] if isinstance(problem, dict))
    summary.setdefault("worst", {})["plan_problems"] = sorted(codes)


def log_module_args(args: dict[str, t.Any]) -> dict[str, t.Any] | None:
    """conntrack_invalid_log_facts' arguments for the facts options; None when the log is not read."""
    if args["log_source"] == "none":
        return None
    log_args: dict[str, t.Any] = {"source": args["log_source"], "max_samples": args["max_samples"],
                                  "top_peers": args["top_peers"]}
    if args["log_path"]:
        log_args["log_path"] = args["log_path"]
    if args["log_since"] and args["log_since"] != "boot":
        log_args["since"] = args["log_since"]
    return log_args


class ActionModule(ActionBase):

    TRANSFERS_FILES = True
    _supports_check_mode = True

    def _has_module(self, name: str) -> bool:
        """Whether the collection installed on the controller has this module (older releases lack the plan)."""
        context = self._shared_loader_obj.module_loader.find_plugin_with_context(name)
        return bool(context.resolved)

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=FACTS_ARGUMENT_SPEC,
                                                        required_if=[("log_source", "file", ["log_path"])])
        for name in ("max_samples", "top_peers", "max_namespaces", "max_entries"):
            if args[name] < 0:
                raise AnsibleActionFail(f"{name} must be 0 or more (got {args[name]})")
        try:
            result.update(self._gather(args, task_vars))
            return result
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

    def _gather(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        invalid_log: dict[str, t.Any] = {}
        log_args = log_module_args(args)
        warnings: list[str] = []
        if log_args is not None:
            log = self._execute_module(module_name=f"{COLLECTION}.conntrack_invalid_log_facts", module_args=log_args,
                                       task_vars=task_vars)
            if log.get("failed"):
                # An unreadable kernel log must not hide the table: the summary says why it has no log part.
                invalid_log = {"error": str(log.get("msg") or "conntrack_invalid_log_facts failed")}
                warnings.append(f"kernel log not read: {invalid_log['error']}")
            else:
                invalid_log = (log.get("ansible_facts") or {}).get("conntrack_invalid") or {}
            warnings += log.get("warnings") or []
        module_args = dict(args, invalid_log=invalid_log)
        result = self._execute_module(module_name=f"{COLLECTION}.conntrack_facts", module_args=module_args,
                                      task_vars=task_vars)
        result.pop("invocation", None)
        if result.get("failed"):
            return result
        summary = (result.get("ansible_facts") or {}).get("conntrack_summary")
        if args["plan"] and summary is not None and self._has_module(PLAN_MODULE):
            plans: dict[str | None, dict[str, t.Any]] = {}
            names = [None] + [name for name, one in summary["namespaces"].items() if not one.get("error")]
            for name in names:
                plan_args: dict[str, t.Any] = {"ruleset": args["plan_ruleset"]}
                if name is not None:
                    plan_args["netns"] = name
                plan = self._execute_module(module_name=PLAN_MODULE, module_args=plan_args, task_vars=task_vars)
                if plan.get("failed"):
                    plans[name] = {"error": str(plan.get("msg"))}
                else:
                    plans[name] = compact_plan((plan.get("ansible_facts") or {}).get("conntrack_plan") or {})
            attach_plans(summary, plans)
        if warnings:
            result["warnings"] = list(result.get("warnings") or []) + warnings
        return result
