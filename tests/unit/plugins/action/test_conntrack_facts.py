# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from unittest import mock

import pytest

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.netfilter.conntrack.plugins.action.conntrack_facts import (
    PLAN_MODULE,
    ActionModule,
    attach_plans,
    compact_plan,
    log_module_args,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack_summary import FACTS_ARGUMENT_SPEC

DEFAULTS = {name: spec.get("default") for name, spec in FACTS_ARGUMENT_SPEC.items()}


def test_log_module_args():
    assert log_module_args(DEFAULTS) == {"source": "auto", "max_samples": 0, "top_peers": 5}
    assert log_module_args(dict(DEFAULTS, log_source="none")) is None
    assert log_module_args(dict(DEFAULTS, log_source="file", log_path="/x", log_since="2026-01-01T00:00:00Z")) == {
        "source": "file", "max_samples": 0, "top_peers": 5, "log_path": "/x", "since": "2026-01-01T00:00:00Z"}


def test_compact_plan_drops_the_bulk():
    plan = {"problems": [{"code": "no_logger_bound"}], "steps": {}, "blinders": [], "kernel": {}, "interfaces": [1] * 500,
            "probe": {"x": 1}, "netns": "blue"}
    assert sorted(compact_plan(plan)) == ["blinders", "kernel", "problems", "steps"]


def test_attach_plans():
    summary = {"namespaces": {"blue": {}}, "worst": {}}
    attach_plans(summary, {None: {"problems": [{"code": "log_invalid_off"}]},
                           "blue": {"problems": [{"code": "no_logger_bound"}, {"code": "log_invalid_off"}]},
                           "vanished": {"problems": [{"code": "x"}]}})
    assert summary["plan"]["problems"][0]["code"] == "log_invalid_off"
    assert summary["namespaces"]["blue"]["plan"]["problems"][0]["code"] == "no_logger_bound"
    assert summary["worst"]["plan_problems"] == ["log_invalid_off", "no_logger_bound"]


SUMMARY = {"namespaces": {"blue": {"count": 1}, "red": {"error": "gone"}}, "worst": {}}


def make_action(args, answers, has_plan=True, check_mode=False):
    """The action with _execute_module answering from ``answers`` (module name -> result, or a function)."""
    task = mock.MagicMock(args=args, check_mode=check_mode, async_val=0, action="netfilter.conntrack.conntrack_facts")
    connection = mock.MagicMock()
    connection._shell.tmpdir = "/tmp/ansible-tmp-1"
    action = ActionModule(task=task, connection=connection, play_context=mock.MagicMock(), loader=None, templar=None,
                          shared_loader_obj=None)
    action._has_module = lambda name: has_plan and name == PLAN_MODULE
    calls = []

    def execute(module_name, module_args, task_vars):
        calls.append((module_name, dict(module_args)))
        answer = answers[module_name]
        return answer(module_args) if callable(answer) else dict(answer)

    action._execute_module = execute
    action._remove_tmp_path = mock.MagicMock()
    return action, calls


def facts_answer(module_args):
    return {"changed": False, "invocation": {"module_args": module_args},
            "ansible_facts": {"conntrack_summary": {"namespaces": {k: dict(v) for k, v in SUMMARY["namespaces"].items()},
                                                    "worst": {}}}}


ANSWERS = {
    "netfilter.conntrack.conntrack_invalid_log_facts": {"ansible_facts": {"conntrack_invalid": {"total": 2, "samples": []}}},
    "netfilter.conntrack.conntrack_facts": facts_answer,
    PLAN_MODULE: {"ansible_facts": {"conntrack_plan": {"problems": [], "interfaces": []}}},
}


def run(action):
    result = action.run(task_vars={"inventory_hostname": "h1"})
    action._remove_tmp_path.assert_called_once()
    return result


def test_order_and_arguments():
    action, calls = make_action({"netns": ["blue", "red"]}, ANSWERS)
    result = run(action)
    assert [name for name, dummy in calls] == ["netfilter.conntrack.conntrack_invalid_log_facts",
                                               "netfilter.conntrack.conntrack_facts", PLAN_MODULE, PLAN_MODULE]
    facts_args = calls[1][1]
    assert facts_args["invalid_log"] == {"total": 2, "samples": []}
    assert facts_args["netns"] == ["blue", "red"]
    # The plan runs in the connection's namespace and in each one gathered, not in the one that failed.
    assert calls[2][1] == {"ruleset": True}
    assert calls[3][1] == {"ruleset": True, "netns": "blue"}
    assert "invocation" not in result
    summary = result["ansible_facts"]["conntrack_summary"]
    assert summary["plan"] == {"problems": []} and "plan" not in summary["namespaces"]["red"]


def test_no_log_no_plan():
    action, calls = make_action({"log_source": "none", "plan": False}, ANSWERS)
    run(action)
    assert [name for name, dummy in calls] == ["netfilter.conntrack.conntrack_facts"]
    assert calls[0][1]["invalid_log"] == {}


def test_plan_skipped_when_the_collection_has_no_plan_module():
    action, calls = make_action({}, ANSWERS, has_plan=False)
    run(action)
    assert PLAN_MODULE not in [name for name, dummy in calls]


def test_unreadable_log_does_not_fail_the_host():
    answers = dict(ANSWERS)
    answers["netfilter.conntrack.conntrack_invalid_log_facts"] = {"failed": True, "msg": "cannot read /dev/kmsg"}
    action, calls = make_action({"plan": False}, answers)
    result = run(action)
    assert calls[1][1]["invalid_log"] == {"error": "cannot read /dev/kmsg"}
    assert result["warnings"] == ["kernel log not read: cannot read /dev/kmsg"]


def test_module_failure_is_returned():
    answers = dict(ANSWERS)
    answers["netfilter.conntrack.conntrack_facts"] = {"failed": True, "msg": "boom"}
    action, calls = make_action({}, answers)
    result = run(action)
    assert result["failed"] and result["msg"] == "boom"
    assert PLAN_MODULE not in [name for name, dummy in calls]


@pytest.mark.parametrize("args, match", [
    ({"max_samples": -1}, "max_samples must be 0 or more"),
    ({"max_namespaces": -3}, "max_namespaces must be 0 or more"),
])
def test_refusals_before_anything_runs(args, match):
    action, calls = make_action(args, ANSWERS)
    with pytest.raises(AnsibleActionFail, match=match):
        run(action)
    assert not calls


def test_the_result_starts_from_the_base_action_s(monkeypatch):
    """What ActionBase.run() puts in the result (here a marker) stays in the action's result."""
    monkeypatch.setattr(ActionBase, "run", lambda self, tmp=None, task_vars=None: {"base_marker": True})
    action, dummy = make_action({"plan": False}, ANSWERS)
    result = run(action)
    assert result["base_marker"] is True
    assert "conntrack_summary" in result["ansible_facts"]
