# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
from unittest.mock import MagicMock

import pytest

from ansible.errors import AnsibleActionFail

from ansible_collections.netfilter.conntrack.plugins.action import conntrack_debug_report as report_action


# --- the action: one run of the host program's collect -----------------------------------------------------------

REPORT = {"host": "h1", "notes": [], "invalid_log": {"total": 3}}


class Program:
    """The host program's collect, answering one result and recording the argument lists."""

    def __init__(self, rc, answer):
        self.rc, self.answer, self.calls = rc, answer, []

    def window_app(self, action, task_vars, program_dir, install, send_with_command=True):
        assert install is False, "collect never installs the program"
        assert send_with_command is False, "the copy enable installed runs; 177 KB with every collect cost more"
        app = MagicMock()
        app.run.side_effect = lambda argv: self.calls.append(list(argv)) or (self.rc, dict(self.answer))
        return app


def run_collect(monkeypatch, program, check_mode=False, inventory_hostname="h1", **task_args):
    monkeypatch.setattr(report_action, "WindowApp", program.window_app)
    task = MagicMock()
    task.args = dict({"facts_path": "/etc/ansible/facts.d/netfilter_conntrack.fact"}, **task_args)
    task.check_mode = check_mode
    task.async_val = 0
    task.action = "netfilter.conntrack.conntrack_debug_report"
    connection = MagicMock()
    connection._shell.tmpdir = "/tmp/ansible-tmp-1"
    action = report_action.ActionModule(task=task, connection=connection, play_context=MagicMock(), loader=None,
                                        templar=None, shared_loader_obj=None)
    action._execute_module = MagicMock(side_effect=AssertionError("collect runs no module"))
    action._remove_tmp_path = MagicMock()
    result = action.run(task_vars={"inventory_hostname": inventory_hostname})
    action._remove_tmp_path.assert_called_once()
    return result


def test_collect_is_one_program_run(monkeypatch, tmp_path):
    program = Program(0, {"changed": True, "report": REPORT, "warnings": ["w"],
                          "facts_file": {"dest": "/etc/ansible/facts.d/netfilter_conntrack.fact", "written": True}})
    result = run_collect(monkeypatch, program, netns=["blue", "red"], max_samples=3, report_dir=str(tmp_path))
    assert program.calls == [["collect", "--report-host=h1", "--max-samples=3", "--log-source=auto", "--netns=blue",
                              "--netns=red", "--facts-dest=/etc/ansible/facts.d/netfilter_conntrack.fact"]]
    assert result["changed"] is True and result["warnings"] == ["w"]
    assert result["ansible_facts"] == {"conntrack_debug_report": REPORT}
    assert result["facts_file"]["written"] is True
    with open(result["report_file"], encoding="utf-8") as handle:
        assert json.load(handle) == REPORT


def test_collect_passes_containers_for_the_host_to_resolve(monkeypatch, tmp_path):
    program = Program(0, {"changed": False, "report": REPORT})
    run_collect(monkeypatch, program, netns=["blue"], containers=["web", "pod-a"], local_facts=False, report_dir=str(tmp_path))
    assert program.calls == [["collect", "--report-host=h1", "--max-samples=10", "--log-source=auto", "--netns=blue",
                              "--container=web", "--container=pod-a"]]


def test_collect_in_check_mode_writes_no_file(monkeypatch, tmp_path):
    program = Program(0, {"changed": False, "report": REPORT})
    result = run_collect(monkeypatch, program, check_mode=True, local_facts=False, log_source="file",
                         log_path="/var/log/kern.log", report_dir=str(tmp_path))
    assert program.calls == [["collect", "--report-host=h1", "--max-samples=10", "--log-source=file",
                              "--log-path=/var/log/kern.log", "--check"]]
    assert result["changed"] is False and "report_file" not in result and os.listdir(tmp_path) == []


def test_a_failed_collect_fails_the_task(monkeypatch):
    program = Program(1, {"failed": True, "msg": "network namespace blue does not exist"})
    with pytest.raises(AnsibleActionFail, match="collecting on the host failed: network namespace blue does not"):
        run_collect(monkeypatch, program, netns=["blue"])


@pytest.mark.parametrize("task_args, error", [
    ({"max_samples": -1}, "max_samples must be 0 or more"),
    ({"log_source": "file"}, "log_source is file but all of the following are missing: log_path"),
    ({"verdict_thresholds": {"no_such": 1}}, "unknown verdict threshold 'no_such'"),
    ({"fetch_captures": True}, "fetch_captures is True but all of the following are missing: report_dir"),
    ({"verdict_thresholds": {"rising_min_delta": -2}}, "verdict threshold rising_min_delta must be a number of 0 or more"),
])
def test_options_the_module_refuses_are_refused(monkeypatch, task_args, error):
    program = Program(0, {"report": REPORT})
    with pytest.raises(AnsibleActionFail, match=error):
        run_collect(monkeypatch, program, **task_args)
    assert program.calls == []


def test_verdict_thresholds_go_to_the_program_as_json(monkeypatch):
    program = Program(0, {"changed": False, "report": REPORT})
    run_collect(monkeypatch, program, local_facts=False, verdict_thresholds={"table_usage_percent": 80, "rising_min_delta": 2})
    assert program.calls == [["collect", "--report-host=h1", "--max-samples=10", "--log-source=auto",
                              '--verdict-thresholds={"rising_min_delta": 2, "table_usage_percent": 80}']]


# --- fetch_captures: ansible.builtin.fetch, run by the action for each window's pcapng -----------------------------

CAPTURED = dict(REPORT, capture={"namespaces": {
    "init": {"pcapng": "/run/netfilter-conntrack-capture/init.pcapng", "events": 3},
    "netns-blue": {"pcapng": "/run/netfilter-conntrack-capture/netns-blue.pcapng", "events": 1},
    "netns-red": {"pcapng": None, "events": 0}}})


@pytest.fixture
def fetch(monkeypatch):
    """ansible.builtin.fetch as run_builtin_action runs it: records the calls, answers from a list."""
    calls, answers = [], []

    def run_builtin_action(action, name, args, task_vars):
        calls.append((name, args))
        return answers.pop(0) if answers else {"changed": True}
    monkeypatch.setattr(report_action, "run_builtin_action", run_builtin_action)
    return calls, answers


def test_fetch_captures_brings_each_pcapng_under_the_host_directory(monkeypatch, tmp_path, fetch):
    calls, answers = fetch
    answers.extend([{"changed": False}, {"changed": True}])
    program = Program(0, {"changed": False, "report": CAPTURED})
    result = run_collect(monkeypatch, program, local_facts=False, report_dir=str(tmp_path), fetch_captures=True)
    expected = {"init": f"{tmp_path}/captures/h1/init.pcapng", "netns-blue": f"{tmp_path}/captures/h1/netns-blue.pcapng"}
    assert calls == [("ansible.builtin.fetch", {"src": "/run/netfilter-conntrack-capture/init.pcapng",
                                                "dest": expected["init"], "flat": True}),
                     ("ansible.builtin.fetch", {"src": "/run/netfilter-conntrack-capture/netns-blue.pcapng",
                                                "dest": expected["netns-blue"], "flat": True})]
    assert result["capture_files"] == expected and result["changed"] is True


def test_fetched_captures_stay_inside_the_report_directory(monkeypatch, tmp_path, fetch):
    calls, _answers = fetch
    program = Program(0, {"changed": False, "report": CAPTURED})
    run_collect(monkeypatch, program, local_facts=False, report_dir=str(tmp_path), fetch_captures=True,
                inventory_hostname="../x")
    assert [args["dest"] for _name, args in calls] == [f"{tmp_path}/captures/%2E.%2Fx/init.pcapng",
                                                       f"{tmp_path}/captures/%2E.%2Fx/netns-blue.pcapng"]


def test_unchanged_captures_leave_the_task_unchanged(monkeypatch, tmp_path, fetch):
    _calls, answers = fetch
    answers.extend([{"changed": False}, {"changed": False}])
    program = Program(0, {"changed": False, "report": CAPTURED})
    (tmp_path / "h1.json").write_text(json.dumps(CAPTURED, indent=4, sort_keys=True), encoding="utf-8")
    result = run_collect(monkeypatch, program, local_facts=False, report_dir=str(tmp_path), fetch_captures=True)
    assert result["changed"] is False and len(result["capture_files"]) == 2


def test_a_failed_fetch_fails_the_task_naming_the_file(monkeypatch, tmp_path, fetch):
    _calls, answers = fetch
    answers.extend([{"changed": True}, {"failed": True, "msg": "file not found"}])
    program = Program(0, {"changed": False, "report": CAPTURED})
    with pytest.raises(AnsibleActionFail) as exc:
        run_collect(monkeypatch, program, local_facts=False, report_dir=str(tmp_path), fetch_captures=True)
    assert exc.value.message == (f"bringing /run/netfilter-conntrack-capture/netns-blue.pcapng (window netns-blue) to"
                                 f" {tmp_path}/captures/h1/netns-blue.pcapng failed: file not found")
    assert exc.value.result["capture_files"] == {"init": f"{tmp_path}/captures/h1/init.pcapng"}


def test_nothing_is_fetched_in_check_mode(monkeypatch, tmp_path, fetch):
    calls, _answers = fetch
    program = Program(0, {"changed": False, "report": CAPTURED})
    result = run_collect(monkeypatch, program, check_mode=True, local_facts=False, report_dir=str(tmp_path),
                         fetch_captures=True)
    assert calls == [] and "capture_files" not in result
