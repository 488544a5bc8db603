# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The window action's orchestration, with the modules (_execute_module) and the host program (WindowApp) mocked.

As ansible's test/units/plugins/action/test_gather_facts.py does: which modules and program commands run, with which
arguments, in which order, for a success, a failing step, a failing confirm, check mode and bad options.
"""

from __future__ import annotations

import re
from unittest.mock import MagicMock

import pytest

from ansible.errors import AnsibleActionFail

from ansible_collections.netfilter.conntrack.plugins.action import conntrack_debug_window as action_module
from ansible_collections.netfilter.conntrack.plugins.action.conntrack_debug_window import ActionModule, rollback_outcome

ROLLED_BACK = "Rolled back: the host is as it was before debugging started."


def snapshot_answer(*idents, dynamic_debug=True, window="w-1"):
    return {"changed": True, "window": window, "deadline": 1795767300.0, "dynamic_debug": dynamic_debug,
            "program_version": "conntrack-debug-window",
            "namespaces": {ident: {"created": True, "original": {}, "dyndbg": []} for ident in idents}}


def reverted(*idents, left=None):
    return {"changed": True, "program_version": "conntrack-debug-window", "msg": "reverted",
            "namespaces": {ident: {"changed": True, "restored": {"k": {}}, "left": (left or {}).get(ident, {})}
                           for ident in idents}}


# What a module answers unless a test says otherwise (conntrack_plan_facts, run after every enable, changes nothing).
DEFAULT_ANSWERS = {"conntrack_plan_facts": {"changed": False, "ansible_facts": {"conntrack_plan": {"problems": []}}}}


class Host:
    """The modules and the program of one host, answering from tables and recording every call in order."""

    def __init__(self, modules=None, program=None):
        self.calls = []
        self.modules = modules or {}
        self.program = program or {}
        self.app_args = []

    def execute_module(self, module_name, module_args, task_vars):
        name = module_name.rsplit(".", 1)[-1]
        self.calls.append(("module", name, dict(module_args)))
        answer = self.modules.get(name, DEFAULT_ANSWERS.get(name, {"changed": True}))
        return dict(answer(module_args) if callable(answer) else answer)

    def window_app(self, action, task_vars, program_dir, install):
        self.app_args.append({"program_dir": program_dir, "install": install})
        app = MagicMock()
        app.path = program_dir + "/conntrack-debug-window.pyz"
        app.installed = False
        app.interpreter = "/usr/bin/python3"
        app.run.side_effect = self.run_program
        return app

    def run_program(self, argv):
        self.calls.append(("program", list(argv)))
        answers = self.program.get(argv[0])
        if answers is None:
            raise AssertionError(f"unexpected program command {argv}")
        answer = answers.pop(0) if isinstance(answers, list) else answers
        rc, data = answer
        return rc, dict(data, program_version="conntrack-debug-window")

    def program_calls(self, command=None):
        return [argv for kind, *rest in self.calls if kind == "program" for argv in rest
                if command is None or argv[0] == command]

    def module_calls(self):
        return [(name, args) for kind, *rest in self.calls if kind == "module" for name, args in [rest]]


@pytest.fixture
def host(monkeypatch):
    fake = Host()
    monkeypatch.setattr(action_module, "WindowApp", fake.window_app)
    return fake


def run_action(host, check_mode=False, **task_args):
    task = MagicMock()
    task.args = task_args
    task.check_mode = check_mode
    task.async_val = 0
    task.action = "netfilter.conntrack.conntrack_debug_window"
    connection = MagicMock()
    connection._shell.tmpdir = "/tmp/ansible-tmp-1"
    action = ActionModule(task=task, connection=connection, play_context=MagicMock(), loader=None, templar=None,
                          shared_loader_obj=None)
    action._execute_module = MagicMock(side_effect=host.execute_module)
    action._remove_tmp_path = MagicMock()
    result = action.run(task_vars={"inventory_hostname": "h1"})
    action._remove_tmp_path.assert_called_once()
    return result


def failing_action(host, **task_args):
    with pytest.raises(AnsibleActionFail) as exc:
        run_action(host, **task_args)
    return exc.value.message, exc.value.result


# --- success --------------------------------------------------------------------------------------------------


def test_enable_runs_snapshot_modules_confirm_in_order(host):
    host.program = {"snapshot": (0, snapshot_answer("init")), "confirm": (0, {"changed": False, "namespaces": {}})}
    result = run_action(host, duration=900, protocol="tcp")
    assert host.app_args == [{"program_dir": "/usr/local/libexec/netfilter-conntrack", "install": True}]
    assert host.calls == [
        ("program", ["snapshot", "--duration=900", "--log-invalid=tcp", "--backend=auto", "--family=ipv4",
                     "--family=ipv6"]),
        ("module", "conntrack_log_invalid", {"protocol": "tcp"}),
        ("module", "nf_log_backend", {"family": ["ipv4", "ipv6"], "backend": "auto"}),
        ("program", ["confirm", "--window=w-1", "--id=init"]),
        ("module", "conntrack_plan_facts", {}),
    ]
    assert result["changed"] is True and not result.get("failed")
    assert [step["step"] for step in result["steps"]] == ["Log invalid packets", "Bind the loggers"]
    assert result["program"]["interpreter"] == "/usr/bin/python3"


def test_enable_in_namespaces_with_all_netns(host):
    idents = ("init", "netns-a", "path-0123456789abcdef")
    host.program = {"snapshot": (0, snapshot_answer(*idents)), "confirm": (0, {"changed": False, "namespaces": {}})}
    run_action(host, duration="600", netns=["a", "/proc/1/ns/net"], all_netns=True)
    assert host.program_calls("snapshot")[0][-3:] == ["--netns=a", "--netns=/proc/1/ns/net", "--all-netns=on"]
    assert host.module_calls() == [
        ("conntrack_log_invalid", {"protocol": "all", "netns": "a"}),
        ("conntrack_log_invalid", {"protocol": "all", "netns": "/proc/1/ns/net"}),
        ("nf_log_backend", {"family": ["ipv4", "ipv6"], "backend": "auto", "netns": "a"}),
        ("nf_log_backend", {"family": ["ipv4", "ipv6"], "backend": "auto", "netns": "/proc/1/ns/net"}),
        ("nf_log_backend", {"all_netns": True}),
        ("conntrack_plan_facts", {"netns": "a"}),
        ("conntrack_plan_facts", {"netns": "/proc/1/ns/net"}),
    ]
    assert host.program_calls("confirm") == [["confirm", "--window=w-1"] + [f"--id={i}" for i in idents]]


def test_dynamic_debug_sites_are_passed_to_the_program_and_the_module(host):
    host.program = {"snapshot": (0, snapshot_answer("init")), "confirm": (0, {"changed": False, "namespaces": {}})}
    host.modules = {"dynamic_debug_site": {"changed": True, "sites": [{"lineno": 1020}]}}
    site = {"file": "nf_conntrack_proto_tcp.c", "format": "Invalid dir=%i index=%u ostate=%u\\012",
            "require_match": False, "func": None}
    result = run_action(host, duration=900, dynamic_debug_sites=[site])
    assert host.program_calls("snapshot")[0][-1] == (
        '--dyndbg-site={"file": "nf_conntrack_proto_tcp.c", "format": "Invalid dir=%i index=%u ostate=%u\\\\012"}')
    assert [call for call in host.module_calls() if call[0] == "dynamic_debug_site"][-1] == ("dynamic_debug_site", {
        "flags": "p", "state": "enabled", "file": "nf_conntrack_proto_tcp.c",
        "format": "Invalid dir=%i index=%u ostate=%u\\012", "require_match": False})
    assert result["steps"][-1]["matched"] == 1


def test_resnapshot_after_a_module_load_comes_before_the_sites(host):
    """conntrack_log_invalid loaded nf_conntrack: its sites exist only now, so they are recorded before any changes."""
    host.program = {"snapshot": [(0, snapshot_answer("init")), (0, snapshot_answer("init"))],
                    "confirm": (0, {"changed": False, "namespaces": {}})}
    host.modules = {"conntrack_log_invalid": {"changed": True, "loaded_module": "nf_conntrack"},
                    "dynamic_debug_site": {"changed": True, "sites": [{"lineno": 1}]}}
    result = run_action(host, duration=900, dynamic_debug_sites=[{"func": "tcp_new"}])
    order = [call[1] if call[0] == "module" else call[1][0] for call in host.calls]
    assert order == ["snapshot", "conntrack_log_invalid", "nf_log_backend", "snapshot", "dynamic_debug_site", "confirm",
                     "conntrack_plan_facts"]
    first, second = host.program_calls("snapshot")
    assert first == second
    assert result["steps"][0]["loaded"] == "nf_conntrack"


def test_no_resnapshot_without_a_module_load(host):
    host.program = {"snapshot": (0, snapshot_answer("init")), "confirm": (0, {"changed": False, "namespaces": {}})}
    host.modules = {"dynamic_debug_site": {"changed": True, "sites": [{"lineno": 1}]}}
    run_action(host, duration=900, dynamic_debug_sites=[{"func": "tcp_new"}])
    assert len(host.program_calls("snapshot")) == 1


def test_sites_skipped_with_a_warning_without_dynamic_debug(host):
    host.program = {"snapshot": (0, snapshot_answer("init", dynamic_debug=False)),
                    "confirm": (0, {"changed": False, "namespaces": {}})}
    result = run_action(host, duration=900, dynamic_debug_sites=[{"func": "tcp_new"}])
    assert "dynamic_debug_site" not in [name for name, _args in host.module_calls()]
    assert result["warnings"] == ["this kernel has no dynamic debug: dynamic_debug_sites were skipped"]


def test_a_site_that_matches_nothing_warns(host):
    host.program = {"snapshot": (0, snapshot_answer("init")), "confirm": (0, {"changed": False, "namespaces": {}})}
    host.modules = {"dynamic_debug_site": {"changed": False, "sites": []}}
    result = run_action(host, duration=900, dynamic_debug_sites=[{"func": "nope", "require_match": False}])
    assert result["steps"][-1]["matched"] == 0
    assert "matches no site on this kernel" in result["warnings"][0]


# --- failure and rollback -------------------------------------------------------------------------------------

FAILING_STEPS = [
    ("conntrack_log_invalid", "Log invalid packets"),
    ("nf_log_backend", "Bind the loggers"),
    ("dynamic_debug_site", "Switch the dynamic-debug sites on"),
]


@pytest.mark.parametrize("module, step", FAILING_STEPS, ids=[s[0] for s in FAILING_STEPS])
def test_a_failing_step_rolls_back_exactly_the_snapshotted_ids(host, module, step):
    idents = ("init", "netns-a", "path-0123456789abcdef")
    host.program = {"snapshot": (0, snapshot_answer(*idents)), "revert": (0, reverted(*idents))}
    host.modules = {"dynamic_debug_site": {"changed": True, "sites": [{}]}}
    host.modules[module] = {"failed": True, "msg": "the kernel said no"}
    msg, result = failing_action(host, duration=900, netns=["a", "/proc/1/ns/net"], all_netns=True,
                                 dynamic_debug_sites=[{"func": "tcp_new"}])
    assert host.program_calls("revert") == [["revert", "--window=w-1"] + [f"--id={ident}" for ident in idents]]
    assert host.program_calls("confirm") == []
    assert msg == f"enable failed at '{step}': the kernel said no. {ROLLED_BACK}"
    assert result["rollback"]["namespaces"].keys() == set(idents)
    assert host.calls[-1][0] == "program", "nothing runs after the rollback"


def test_a_failing_confirm_rolls_back(host):
    confirm = {"changed": True, "failed": True, "msg": "init: the debug window ended before enable had finished",
               "namespaces": {"init": {"failed": True, "expired": True, "changed": True}}}
    host.program = {"snapshot": (0, snapshot_answer("init")), "confirm": (1, confirm), "revert": (0, reverted("init"))}
    msg, result = failing_action(host, duration=1)
    assert host.program_calls("revert") == [["revert", "--window=w-1", "--id=init"]]
    assert msg.startswith("enable failed at 'Confirm the window is applied': init: the debug window ended")
    assert msg.endswith(ROLLED_BACK)


def test_a_window_gone_at_confirm_is_not_called_rolled_back(host):
    confirm = {"changed": False, "failed": True, "msg": "init: the window of init was reverted or replaced",
               "namespaces": {"init": {"failed": True, "window_gone": True, "changed": False}}}
    host.program = {"snapshot": (0, snapshot_answer("init")), "confirm": (1, confirm),
                    "revert": (0, {"changed": False, "msg": "nothing to revert", "namespaces": {}})}
    msg, _result = failing_action(host, duration=900)
    assert "NOT ROLLED BACK: the window's snapshot was removed while enable ran" in msg
    assert "Rolled back" not in msg


def test_a_failing_resnapshot_rolls_back_the_first_snapshot(host):
    host.program = {"snapshot": [(0, snapshot_answer("init")), (1, {"failed": True, "msg": "disk full"})],
                    "revert": (0, reverted("init"))}
    host.modules = {"conntrack_log_invalid": {"changed": True, "loaded_module": "nf_conntrack"}}
    msg, _result = failing_action(host, duration=900, dynamic_debug_sites=[{"func": "tcp_new"}])
    assert msg == f"enable failed at 'Record the dynamic-debug sites': disk full. {ROLLED_BACK}"
    assert "dynamic_debug_site" not in [name for name, _args in host.module_calls()]
    assert host.program_calls("revert") == [["revert", "--window=w-1", "--id=init"]]


def test_a_refused_snapshot_changes_nothing(host):
    host.program = {"snapshot": (1, {"failed": True, "msg": "a debug window with other settings is open in init"})}
    msg, _result = failing_action(host, duration=900)
    assert msg == "Refusing to enable: a debug window with other settings is open in init"
    assert host.module_calls() == [] and host.program_calls("revert") == []


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


def test_someone_elses_value_left_is_in_the_message(host):
    host.program = {"snapshot": (0, snapshot_answer("init")),
                    "revert": (0, reverted("init", left={"init": {"net.netfilter.nf_conntrack_log_invalid": {}}}))}
    host.modules = {"nf_log_backend": {"failed": True, "msg": "no logger"}}
    msg, _result = failing_action(host, duration=900)
    assert "PARTLY ROLLED BACK" in msg and "Rolled back" not in msg


# --- check mode -----------------------------------------------------------------------------------------------


def test_check_mode_enable_runs_the_modules_only(host):
    result = run_action(host, check_mode=True, duration=900, dynamic_debug_sites=[{"func": "tcp_new"}])
    assert host.app_args == [] and host.program_calls() == []
    assert host.module_calls() == [("conntrack_log_invalid", {"protocol": "all"}),
                                   ("nf_log_backend", {"family": ["ipv4", "ipv6"], "backend": "auto"}),
                                   ("conntrack_plan_facts", {"log_invalid": "255", "bind": True, "all_netns": False})]
    assert result["changed"] is True
    assert result["msg"].startswith("check mode: no snapshot was taken")


def test_enable_returns_the_plan_keyed_by_window_id_and_warns_when_one_is_missing(host):
    host.program = {"snapshot": (0, snapshot_answer("netns-a", "netns-b")),
                    "confirm": (0, {"changed": False, "namespaces": {}})}
    host.modules = {"conntrack_plan_facts": lambda args: (
        {"ansible_facts": {"conntrack_plan": {"netns": args["netns"], "problems": []}}} if args["netns"] == "a"
        else {"failed": True, "msg": "network namespace /run/netns/b does not exist"})}
    result = run_action(host, duration=900, netns=["a", "b"])
    assert result["plan"] == {"netns-a": {"netns": "a", "problems": []}}
    assert result["warnings"] == ["no plan for b: network namespace /run/netns/b does not exist"]


def test_check_mode_enable_reports_a_step_that_would_fail(host):
    host.modules = {"nf_log_backend": {"failed": True, "msg": "no such logger"}}
    with pytest.raises(AnsibleActionFail, match="enable would fail at 'Bind the loggers': no such logger"):
        run_action(host, check_mode=True, duration=900)
    assert host.program_calls() == []


def test_check_mode_revert_reads_status(host):
    status = {"changed": False, "namespaces": {"init": {"active": True}, "netns-a": {"active": False},
                                               "netns-b": {"active": False, "expired": True}}}
    host.program = {"status": (0, status)}
    result = run_action(host, check_mode=True, state="reverted", netns=["a", "b"])
    assert host.program_calls() == [["status", "--netns=a", "--netns=b"]]
    assert host.app_args == [{"program_dir": "/usr/local/libexec/netfilter-conntrack", "install": False}]
    assert result["changed"] is True
    assert result["namespaces"] == {"init": {"would_revert": True}, "netns-b": {"would_revert": True}}
    assert host.module_calls() == []


def test_check_mode_revert_honours_the_program_exit_status(host):
    host.program = {"status": (1, {"failed": True, "msg": "snapshot init.json fails its checksum"})}
    with pytest.raises(AnsibleActionFail, match="reading the debug window failed: snapshot init.json fails its checksum"):
        run_action(host, check_mode=True, state="reverted")


# --- revert ---------------------------------------------------------------------------------------------------

REVERT_IDS = [
    ("connection's namespace", {}, ["--id=init"]),
    ("namespaces", {"netns": ["a", "b"]}, ["--netns=a", "--netns=b"]),
    ("namespaces and the host's nf_log_all_netns", {"netns": ["a"], "all_netns": True}, ["--netns=a", "--id=init"]),
    ("with the host's sites", {"netns": ["a"], "dynamic_debug_sites": [{"func": "x"}]}, ["--netns=a", "--host-sites"]),
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
    with pytest.raises(AnsibleActionFail, match="revert_scope=all reverts every namespace"):
        run_action(host, state="reverted", revert_scope="all", netns=["a"])
    assert host.calls == []


# --- validation before anything runs --------------------------------------------------------------------------

BAD_OPTIONS = [
    ("duration true", {"duration": True}, "duration True is not a number of seconds"),
    ("duration 2**63", {"duration": 2**63}, "is out of range: give 1 to 604800 seconds"),
    ("duration 0", {"duration": 0}, "is out of range"),
    ("duration text", {"duration": "soon"}, "is not a number of seconds"),
    ("protocol none", {"duration": 900, "protocol": "none"}, "protocol none switches logging off"),
    ("protocol 0", {"duration": 900, "protocol": "0"}, "protocol none switches logging off"),
    ("no families", {"duration": 900, "families": []}, "families is empty"),
    ("unknown family", {"duration": 900, "families": ["ipv5"]}, "unknown family 'ipv5'"),
    ("backend none", {"duration": 900, "backend": "NONE"}, "backend none unbinds the logger"),
    ("site with a bad flag", {"duration": 900, "dynamic_debug_sites": [{"func": "tcp_new", "flags": "x"}]},
     'dynamic_debug_sites entry {"flags": "x", "func": "tcp_new"}: unknown dynamic debug flag'),
    ("site with an unknown key", {"duration": 900, "dynamic_debug_sites": [{"funk": "tcp_new"}]}, "unknown key(s) funk"),
    ("site with an injection", {"duration": 900, "dynamic_debug_sites": [{"func": "a +p;file * "}]}, "would end the value"),
    ("site that selects nothing", {"duration": 900, "dynamic_debug_sites": [{"flags": "p"}]}, "give at least one of"),
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


def test_duration_is_required_to_enable(host):
    with pytest.raises(AnsibleActionFail, match="state is enabled but all of the following are missing: duration"):
        run_action(host)
    assert host.calls == []
