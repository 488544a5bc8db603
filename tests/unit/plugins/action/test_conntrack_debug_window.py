# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The window action, with the host program (WindowApp) mocked and no module allowed to run.

As ansible's test/units/plugins/action/test_gather_facts.py does: which program commands run, with which arguments,
and how their answers become the task's result and messages, for a success, a failing step, a failing confirm, check
mode and bad options. What the program does inside enable (steps, rollback, confirm) is tested against a fake
/proc/sys in tests/unit/plugins/module_utils/test__window_program.py.
"""

from __future__ import annotations

import json
import re
from unittest.mock import MagicMock

import pytest

from ansible.errors import AnsibleActionFail

from ansible_collections.netfilter.conntrack.plugins.action import conntrack_debug_window as action_module
from ansible_collections.netfilter.conntrack.plugins.action.conntrack_debug_window import ActionModule, rollback_outcome

ROLLED_BACK = "Rolled back: the host is as it was before debugging started."
VERSION = "5" * 64


def snapshot_answer(*idents, dynamic_debug=True, window="w-1"):
    return {"changed": True, "window": window, "deadline": 1795767300.0, "dynamic_debug": dynamic_debug,
            "namespaces": {ident: {"created": True, "original": {}, "dyndbg": []} for ident in idents}}


def reverted(*idents, left=None):
    return {"changed": True, "msg": "reverted",
            "namespaces": {ident: {"changed": True, "restored": {"k": {}}, "left": (left or {}).get(ident, {})}
                           for ident in idents}}


class Host:
    """The program of one host, answering from a table and recording every call in order."""

    def __init__(self, program=None):
        self.calls = []
        self.program = program or {}
        self.app_args = []

    def window_app(self, action, task_vars, program_dir, install, send_with_command=True):
        self.app_args.append({"program_dir": program_dir, "install": install, "send_with_command": send_with_command})
        app = MagicMock()
        app.path = program_dir + "/conntrack-debug-window.pyz"
        app.installed = False
        app.interpreter = "/usr/bin/python3"
        app.description.side_effect = lambda: {"path": app.path, "version": VERSION, "installed": app.installed,
                                               "interpreter": app.interpreter}
        app.run.side_effect = self.run_program
        return app

    def run_program(self, argv):
        self.calls.append(("program", list(argv)))
        answers = self.program.get(argv[0])
        if answers is None:
            raise AssertionError(f"unexpected program command {argv}")
        answer = answers.pop(0) if isinstance(answers, list) else answers
        rc, data = answer
        return rc, dict(data, program_name="conntrack-debug-window", program_version=VERSION)

    def program_calls(self, command=None):
        return [argv for kind, *rest in self.calls if kind == "program" for argv in rest
                if command is None or argv[0] == command]


@pytest.fixture
def host(monkeypatch):
    fake = Host()
    monkeypatch.setattr(action_module, "WindowApp", fake.window_app)
    return fake


def run_action(host, check_mode=False, diff=False, **task_args):
    task = MagicMock()
    task.args = task_args
    task.check_mode = check_mode
    task.diff = diff
    task.async_val = 0
    task.action = "netfilter.conntrack.conntrack_debug_window"
    connection = MagicMock()
    connection._shell.tmpdir = "/tmp/ansible-tmp-1"
    action = ActionModule(task=task, connection=connection, play_context=MagicMock(), loader=None, templar=None,
                          shared_loader_obj=None)
    action._execute_module = MagicMock(side_effect=AssertionError("enable and revert run no module"))
    action._remove_tmp_path = MagicMock()
    result = action.run(task_vars={"inventory_hostname": "h1"})
    action._remove_tmp_path.assert_called_once()
    return result


def failing_action(host, **task_args):
    with pytest.raises(AnsibleActionFail) as exc:
        run_action(host, **task_args)
    return exc.value.message, exc.value.result


# --- enable: one run of the host program -----------------------------------------------------------------------


def sent_request(host):
    """The one --request argument of the program's enable, as the host parses it."""
    (argv,) = host.program_calls("enable")
    assert argv[1].startswith("--request=")
    return json.loads(argv[1][len("--request="):]), argv[2:]


def enabled_answer(*idents, **extra):
    """What the program's enable answers on success (see test__window_program.py for how it gets there)."""
    return dict(snapshot_answer(*idents), steps=[{"step": "Log invalid packets", "netns": None, "changed": True}],
                plan={ident: {"problems": []} for ident in idents}, **extra)


def failed_answer(step, failure, rollback=None, steps=()):
    answer = {"changed": False, "failed": True, "failed_step": step, "step_failure": failure, "steps": list(steps),
              "msg": f"{step}: {failure.get('msg')}"}
    if rollback is not None:
        answer["rollback"] = rollback
    return answer


def test_enable_is_one_program_run_and_no_module(host):
    host.program = {"enable": (0, enabled_answer("init", warnings=["w"], diff=[{"before": "a", "after": "b"}]))}
    result = run_action(host, duration=900, protocol="tcp")
    assert host.app_args == [{"program_dir": "/usr/local/libexec/netfilter-conntrack", "install": True, "send_with_command": True}]
    assert len(host.calls) == 1
    assert sent_request(host) == ({"duration": 900, "protocol": "tcp", "families": ["ipv4", "ipv6"], "backend": "auto",
                                   "all_netns": False, "netns": [], "containers": [], "dynamic_debug_sites": [],
                                   "capture": {"mode": "auto", "budgets": {}, "samples_per_reason": 20}}, [])
    assert result["changed"] is True and not result.get("failed")
    assert [step["step"] for step in result["steps"]] == ["Log invalid packets"]
    assert result["plan"] == {"init": {"problems": []}}
    assert result["warnings"] == ["w"] and result["diff"] == [{"before": "a", "after": "b"}]
    assert result["program"] == {"path": "/usr/local/libexec/netfilter-conntrack/conntrack-debug-window.pyz",
                                 "version": VERSION, "installed": False, "interpreter": "/usr/bin/python3"}


def test_enable_passes_namespaces_all_netns_sites_and_diff(host):
    host.program = {"enable": (0, enabled_answer("init", "netns-a"))}
    site = {"file": "nf_conntrack_proto_tcp.c", "format": "Invalid dir=%i index=%u ostate=%u\\012",
            "require_match": False, "func": None}
    run_action(host, duration="600", netns=["a", "/proc/1/ns/net"], containers=["web", "k8s/coredns"], all_netns=True,
               dynamic_debug_sites=[site], diff=True)
    request, flags = sent_request(host)
    assert flags == ["--diff"]
    assert request["duration"] == 600 and request["all_netns"] is True
    assert request["netns"] == ["a", "/proc/1/ns/net"] and request["containers"] == ["web", "k8s/coredns"]
    # The entry as given, without its null options: the host parses it with the same rules.
    assert request["dynamic_debug_sites"] == [{"file": "nf_conntrack_proto_tcp.c", "require_match": False,
                                               "format": "Invalid dir=%i index=%u ostate=%u\\012"}]


def test_enable_passes_the_capture_as_one_json_argument(host):
    host.program = {"enable": (0, enabled_answer("netns-a"))}
    run_action(host, duration=600, netns=["a"], capture="auto", capture_budget={"max_packets": 5000, "max_rate": None},
               samples_per_reason=3)
    assert sent_request(host)[0]["capture"] == {"mode": "auto", "budgets": {"max_packets": 5000, "max_rate": None},
                                                "samples_per_reason": 3}


# --- failure and rollback: the program's answer, told truthfully -----------------------------------------------


def test_a_failing_step_names_the_step_and_the_rollback(host):
    idents = ("init", "netns-a")
    host.program = {"enable": (1, failed_answer("Bind the loggers", {"failed": True, "msg": "the kernel said no"},
                                                reverted(*idents), steps=[{"step": "Bind the loggers"}]))}
    msg, result = failing_action(host, duration=900, netns=["a"], all_netns=True)
    assert msg == f"enable failed at 'Bind the loggers': the kernel said no. {ROLLED_BACK}"
    assert result["rollback"]["namespaces"].keys() == set(idents)
    assert result["steps"] == [{"step": "Bind the loggers"}]
    assert len(host.calls) == 1, "the rollback ran inside the same program run"


def test_a_window_gone_at_confirm_is_not_called_rolled_back(host):
    confirm = {"changed": False, "failed": True, "msg": "init: the window of init was reverted or replaced",
               "namespaces": {"init": {"failed": True, "window_gone": True, "changed": False}}}
    host.program = {"enable": (1, failed_answer("Confirm the window is applied", confirm,
                                                {"changed": False, "msg": "nothing to revert", "namespaces": {}}))}
    msg, _result = failing_action(host, duration=900)
    assert msg.startswith("enable failed at 'Confirm the window is applied': init: the window of init was reverted")
    assert "NOT ROLLED BACK: the window's snapshot was removed while enable ran" in msg
    assert "Rolled back" not in msg


def test_someone_elses_value_left_is_in_the_message(host):
    rollback = reverted("init", left={"init": {"net.netfilter.nf_conntrack_log_invalid": {}}})
    host.program = {"enable": (1, failed_answer("Bind the loggers", {"failed": True, "msg": "no logger"}, rollback))}
    msg, _result = failing_action(host, duration=900)
    assert "PARTLY ROLLED BACK" in msg and "Rolled back" not in msg


def test_a_failed_rollback_says_so(host):
    rollback = {"changed": False, "failed": True, "msg": "init: could not restore net.x"}
    host.program = {"enable": (1, failed_answer("Log invalid packets", {"failed": True, "msg": "EROFS"}, rollback))}
    msg, _result = failing_action(host, duration=900)
    assert msg.endswith("ROLLBACK FAILED, check the host: init: could not restore net.x")


def test_a_refused_snapshot_changes_nothing(host):
    host.program = {"enable": (1, {"failed": True, "msg": "a debug window with other settings is open in init"})}
    msg, _result = failing_action(host, duration=900)
    assert msg == "Refusing to enable: a debug window with other settings is open in init"


OUTCOMES = [
    ("all restored", {}, 0, reverted("init"), ROLLED_BACK),
    ("someone else's value left", {}, 0, reverted("init", left={"init": {"net.x": {"current": "17"}}}),
     'PARTLY ROLLED BACK: values someone else changed meanwhile were left as they are: {"init": {"net.x": {"current": "17"}}}'),
    ("revert failed", {}, 1, {"failed": True, "msg": "init: could not restore net.x"},
     "ROLLBACK FAILED, check the host: init: could not restore net.x"),
    ("window gone", {"window_gone": True}, 0, reverted("init"), "NOT ROLLED BACK"),
]


@pytest.mark.parametrize("failure, rc, rollback, text", [c[1:] for c in OUTCOMES], ids=[c[0] for c in OUTCOMES])
def test_rollback_outcome_says_rolled_back_only_when_nothing_is_left(failure, rc, rollback, text):
    outcome = rollback_outcome(failure, rc, rollback)
    assert outcome.startswith(text)
    assert ("Rolled back" in outcome) is (outcome == ROLLED_BACK)


# --- check mode -----------------------------------------------------------------------------------------------


def test_check_mode_enable_predicts_with_the_program_and_installs_nothing(host):
    host.program = {"enable": (0, {"changed": True, "steps": [], "plan": {"init": {"problems": []}}})}
    result = run_action(host, check_mode=True, duration=900, dynamic_debug_sites=[{"func": "tcp_new"}])
    assert host.app_args == [{"program_dir": "/usr/local/libexec/netfilter-conntrack", "install": False, "send_with_command": True}]
    assert host.program_calls("enable")[0][-1] == "--check"
    assert result["changed"] is True and result["plan"] == {"init": {"problems": []}}
    assert result["msg"].startswith("check mode: no snapshot was taken")
    assert result["program"]["installed"] is False and result["program"]["version"] == VERSION


def test_check_mode_enable_reports_a_step_that_would_fail(host):
    host.program = {"enable": (1, failed_answer("Bind the loggers", {"failed": True, "msg": "no such logger"}))}
    with pytest.raises(AnsibleActionFail, match="enable would fail at 'Bind the loggers': no such logger"):
        run_action(host, check_mode=True, duration=900)


def test_check_mode_revert_runs_the_programs_own_check_mode(host):
    """Only the named windows, with --check: the program says what a real revert would do and changes nothing."""
    answer = {"changed": True, "msg": "check mode: would revert netns-b; nothing was changed",
              "namespaces": {"netns-a": {"changed": False, "check_mode": True},
                             "netns-b": {"changed": True, "check_mode": True,
                                         "restored": {"net.netfilter.nf_conntrack_log_invalid": {"from": "6", "to": "0"}}}}}
    host.program = {"revert": (0, answer)}
    result = run_action(host, check_mode=True, state="reverted", netns=["a", "b"])
    assert host.program_calls() == [["revert", "--netns=a", "--netns=b", "--check"]]
    assert host.program_calls("status") == [], "no status: a status run may revert an overdue window"
    assert host.app_args == [{"program_dir": "/usr/local/libexec/netfilter-conntrack", "install": False, "send_with_command": False}]
    assert result["changed"] is True and result["namespaces"] == answer["namespaces"]
    assert result["msg"] == "check mode: would revert netns-b; nothing was changed"


def test_check_mode_revert_of_the_connections_namespace(host):
    host.program = {"revert": (0, {"changed": False, "namespaces": {}, "msg": "check mode: would revert nothing"})}
    result = run_action(host, check_mode=True, state="reverted")
    assert host.program_calls() == [["revert", "--id=init", "--check"]]
    assert result["changed"] is False


def test_check_mode_revert_honours_the_program_exit_status(host):
    host.program = {"revert": (1, {"failed": True, "msg": "init: snapshot init.json fails its checksum"})}
    with pytest.raises(AnsibleActionFail, match="init: snapshot init.json fails its checksum"):
        run_action(host, check_mode=True, state="reverted")
    assert host.program_calls() == [["revert", "--id=init", "--check"]]


# --- revert ---------------------------------------------------------------------------------------------------

REVERT_IDS = [
    ("connection's namespace", {}, ["--id=init"]),
    ("namespaces", {"netns": ["a", "b"]}, ["--netns=a", "--netns=b"]),
    # The host-wide values go with the last window holding them: naming the host's window would end its own window.
    ("namespaces with nf_log_all_netns: not the host's window", {"netns": ["a"], "all_netns": True}, ["--netns=a"]),
    ("namespaces with sites: not the host's window", {"netns": ["a"], "dynamic_debug_sites": [{"func": "x"}]},
     ["--netns=a"]),
    ("containers, resolved by the program", {"netns": ["a"], "containers": ["web"]}, ["--netns=a", "--container=web"]),
    ("every snapshot", {"revert_scope": "all"}, ["--all"]),
]


@pytest.mark.parametrize("task_args, ids", [c[1:] for c in REVERT_IDS], ids=[c[0] for c in REVERT_IDS])
def test_revert_selects(host, task_args, ids):
    host.program = {"revert": (0, reverted("init"))}
    result = run_action(host, state="reverted", **task_args)
    assert host.program_calls() == [["revert"] + ids]
    assert result["changed"] is True


def test_revert_failure_fails_the_task(host):
    host.program = {"revert": (1, {"failed": True, "msg": "init: could not restore net.x"})}
    with pytest.raises(AnsibleActionFail, match="init: could not restore net.x"):
        run_action(host, state="reverted")


def test_revert_scope_all_with_netns_is_refused(host):
    message = "revert_scope=all reverts every namespace; it contradicts netns (['a'])"
    with pytest.raises(AnsibleActionFail, match=re.escape(message)):
        run_action(host, state="reverted", revert_scope="all", netns=["a"])
    with pytest.raises(AnsibleActionFail, match="it contradicts containers \\(\\['web'\\]\\)"):
        run_action(host, state="reverted", revert_scope="all", containers=["web"])
    assert host.calls == []


# --- validation before anything runs --------------------------------------------------------------------------

BAD_OPTIONS = [
    ("duration true", {"duration": True}, "duration True is not a whole number of seconds"),
    ("duration 2**63", {"duration": 2**63}, "is out of range: give 1 to 604800 seconds"),
    ("duration 0", {"duration": 0}, "is out of range"),
    ("protocol none", {"duration": 900, "protocol": "none"}, "use state=reverted instead ('none' is protocol 0)"),
    ("protocol 0", {"duration": 900, "protocol": "0"}, "use state=reverted instead ('0' is protocol 0)"),
    ("protocol 00", {"duration": 900, "protocol": "00"}, "use state=reverted instead ('00' is protocol 0)"),
    ("protocol 256", {"duration": 900, "protocol": "256"}, "protocol 256 is out of range"),
    ("bad namespace name", {"duration": 900, "netns": ["../x"]}, "netns '../x' is not a valid namespace name"),
    ("bad container name", {"duration": 900, "containers": ["-x"]}, "'-x' is not a container or pod name or id"),
    ("no families", {"duration": 900, "families": []}, "families is empty"),
    ("unknown family", {"duration": 900, "families": ["ipv5"]}, "unknown family 'ipv5'"),
    ("backend none", {"duration": 900, "backend": "NONE"}, "backend none unbinds the logger"),
    ("site with a bad flag", {"duration": 900, "dynamic_debug_sites": [{"func": "tcp_new", "flags": "x"}]},
     'dynamic_debug_sites entry {"flags": "x", "func": "tcp_new"}: unknown dynamic debug flag'),
    ("site with an unknown key", {"duration": 900, "dynamic_debug_sites": [{"funk": "tcp_new"}]}, "unknown key(s) funk"),
    ("site with an injection", {"duration": 900, "dynamic_debug_sites": [{"func": "a +p;file * "}]}, "would end the value"),
    ("site that selects nothing", {"duration": 900, "dynamic_debug_sites": [{"flags": "p"}]}, "give at least one of"),
    ("negative budget", {"duration": 900, "capture": "auto", "capture_budget": {"max_rate": -1}},
     "budget max_rate must be positive or null, not -1"),
    ("unknown budget", {"duration": 900, "capture": "netlink", "capture_budget": {"max_pakets": 5}},
     "budgets must be an object with some of"),
    ("too many samples", {"duration": 900, "capture": "auto", "samples_per_reason": 10001},
     "samples_per_reason must be an integer from 0 to 10000"),
]


@pytest.mark.parametrize("task_args, message", [c[1:] for c in BAD_OPTIONS], ids=[c[0] for c in BAD_OPTIONS])
@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
def test_bad_options_are_refused_before_anything(host, task_args, message, check_mode):
    with pytest.raises(AnsibleActionFail, match=re.escape(message)) as exc:
        run_action(host, check_mode=check_mode, **task_args)
    assert exc.value.message.startswith("Refusing to enable: ")
    assert host.calls == [] and host.app_args == []


def test_all_errors_are_listed_at_once(host):
    with pytest.raises(AnsibleActionFail) as exc:
        run_action(host, duration=True, protocol="none", families=[])
    assert exc.value.message.count(";") == 2


@pytest.mark.parametrize("duration", ["soon", 1.5, "1.5"])
def test_a_duration_that_is_not_whole_seconds_fails_the_argument_spec(host, duration):
    """The module's and the role's argument specs both say int: the same values pass both."""
    with pytest.raises(Exception, match="duration"):
        run_action(host, duration=duration)
    assert host.calls == []


def test_duration_is_required_to_enable(host):
    with pytest.raises(AnsibleActionFail, match="state is enabled but all of the following are missing: duration"):
        run_action(host)
    assert host.calls == []


# --- install_tools: ansible.builtin.package, run by the action once the window is open --------------------------


@pytest.fixture
def package(monkeypatch):
    """ansible.builtin.package as run_builtin_action runs it: records the calls, answers what the test sets."""
    calls, answer = [], {"changed": True}

    def run_builtin_action(action, name, args, task_vars):
        calls.append((name, args, action._task.check_mode))
        return dict(answer)
    monkeypatch.setattr(action_module, "run_builtin_action", run_builtin_action)
    return calls, answer


def test_install_tools_runs_the_package_action_after_the_window(host, package):
    calls, _answer = package
    host.program = {"enable": (0, dict(enabled_answer("init"), changed=False))}
    result = run_action(host, duration=900, install_tools=True)
    assert calls == [("ansible.builtin.package", {"name": "conntrack", "state": "present"}, False)]
    assert result["tools"] == {"name": "conntrack", "changed": True}
    assert result["changed"] is True, "the install alone changes the host"


def test_install_tools_in_check_mode_asks_the_package_action_in_check_mode(host, package):
    calls, answer = package
    answer["changed"] = False
    host.program = {"enable": (0, {"changed": False, "steps": [], "plan": {"init": {"problems": []}}})}
    result = run_action(host, check_mode=True, duration=900, install_tools=True)
    assert calls == [("ansible.builtin.package", {"name": "conntrack", "state": "present"}, True)]
    assert result["tools"] == {"name": "conntrack", "changed": False} and result["changed"] is False


def test_a_failed_install_fails_the_task_and_says_the_window_is_open(host, package):
    _calls, answer = package
    answer.update(failed=True, msg="No package matching 'conntrack' is available")
    host.program = {"enable": (0, enabled_answer("init"))}
    message, result = failing_action(host, duration=900, install_tools=True)
    assert message == ("the window is open (it reverts by itself at its deadline, or run revert), but installing"
                       " conntrack failed: No package matching 'conntrack' is available")
    assert result["deadline"] == 1795767300.0 and result["tools"]["msg"].startswith("No package")


def test_no_install_without_install_tools(host, package):
    calls, _answer = package
    host.program = {"enable": (0, enabled_answer("init"))}
    assert "tools" not in run_action(host, duration=900)
    assert calls == []


@pytest.mark.parametrize("state", ["reverted", "absent"])
def test_install_tools_is_refused_outside_enable(host, package, state):
    message, _result = failing_action(host, state=state, install_tools=True)
    assert message == f"install_tools installs conntrack-tools with state=enabled only (state={state})"
    assert host.calls == [] and package[0] == []
