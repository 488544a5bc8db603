# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The host program as a zip application: reproducible build, what it contains, how it runs, and the controller's
runner that installs it when the host's copy does not answer as this version."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import types
import zipfile
import zlib
from unittest.mock import MagicMock

import pytest

from ansible.errors import AnsibleActionFail

from ansible_collections.netfilter.conntrack.plugins.module_utils import _window_install as wi
from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _window_app as wa

# What the program needs at least; the closure also holds whatever these import (checked below).
CORE = {"_dynamic_debug", "_errors", "_names", "_netns", "_sysctl", "_window_program", "_window_scheduler",
        "_window_store"}
IMPORT_RE = re.compile(r"^from ansible_collections\.netfilter\.conntrack\.plugins\.module_utils\.(\w+) import", re.M)


def imports_of(name):
    with open(os.path.join(wa.MODULE_UTILS_DIR, name + ".py"), encoding="utf-8") as handle:
        return set(IMPORT_RE.findall(handle.read()))


@pytest.fixture
def fresh_build():
    wa.build_app.cache_clear()
    wa.app_on_stdin.cache_clear()
    yield
    wa.build_app.cache_clear()
    wa.app_on_stdin.cache_clear()


def test_module_closure():
    """Sorted, holds the program's modules, everything they import, and nothing else."""
    closure = wa.module_closure()
    assert closure == sorted(set(closure))
    assert CORE <= set(closure)
    imported = set()
    for name in closure:
        imported |= imports_of(name)
    assert imported <= set(closure), "closed under import"
    assert set(closure) - imported == {wa.ENTRY_MODULE}, "nothing that is not imported"


PKG = "ansible_collections.netfilter.conntrack.plugins.module_utils"


@pytest.mark.parametrize("source, expected", [
    (f"from {PKG}._a import b\n", ["_a"]),
    (f"from {PKG}._a.b import c\n", ["_a"]),
    (f"def f():\n    from {PKG}._lazy import g\n", ["_lazy"]),
    (f"from {PKG}._a import (\n    b,\n    c,\n)\n", ["_a"]),
    (f"from {PKG} import _a, _b as bee\n", ["_a", "_b"]),
    (f"from {PKG} import (\n    _a,  # why\n    _b,\n)\n", ["_a", "_b"]),
    (f"import {PKG}._a\n", ["_a"]),
    (f"import os, {PKG}._a.b as ab\n", ["_a"]),
    (f"# from {PKG}._commented import x\n", []),
    (f"x = '{PKG}._mentioned'\n", []),
    ("from ansible_collections.netfilter.conntrack.plugins.module_utils_other._a import b\n", []),
    ("from ansible.module_utils.basic import AnsibleModule\nimport os\n", []),
])
def test_imported_module_utils(source, expected):
    assert sorted(wa.imported_module_utils(source)) == expected


def test_imported_module_utils_agrees_with_the_syntax_tree():
    """For every module_utils file, the text scan finds what walking its syntax tree finds."""
    for name in sorted(os.listdir(wa.MODULE_UTILS_DIR)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(wa.MODULE_UTILS_DIR, name), encoding="utf-8") as handle:
            source = handle.read()
        by_tree = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PKG + "."):
                by_tree.add(node.module[len(PKG) + 1:].split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.module == PKG:
                by_tree.update(alias.name for alias in node.names)
            elif isinstance(node, ast.Import):
                by_tree.update(alias.name[len(PKG) + 1:].split(".")[0] for alias in node.names
                               if alias.name.startswith(PKG + "."))
        assert set(wa.imported_module_utils(source)) == by_tree, name


def test_build_is_reproducible(fresh_build, tmp_path, monkeypatch):
    first = wa.build_app()
    wa.build_app.cache_clear()
    assert wa.build_app() == first, "two builds"
    # Another checkout: other modification times and modes do not leak into the archive.
    copy = tmp_path / "module_utils"
    copy.mkdir()
    for name in wa.module_closure():
        shutil.copy(os.path.join(wa.MODULE_UTILS_DIR, name + ".py"), str(copy / (name + ".py")))
        os.utime(str(copy / (name + ".py")), (1e9, 1e9))
        os.chmod(str(copy / (name + ".py")), 0o600)
    monkeypatch.setattr(wa, "MODULE_UTILS_DIR", str(copy))
    wa.build_app.cache_clear()
    assert wa.build_app() == first, "another checkout"
    assert wa.app_sha256() == hashlib.sha256(first).hexdigest()


def test_build_contains_exactly_the_closure(fresh_build, tmp_path):
    path = tmp_path / "app.pyz"
    path.write_bytes(wa.build_app())
    with zipfile.ZipFile(str(path)) as archive:
        names = archive.namelist()
        members = {name: archive.read(name) for name in names}
    packages = ["ansible_collections", "ansible_collections/netfilter", "ansible_collections/netfilter/conntrack",
                "ansible_collections/netfilter/conntrack/plugins", wa.PACKAGE_PATH]
    assert sorted(names) == names
    assert set(names) == ({"__main__.py"} | {p + "/__init__.py" for p in packages}
                          | {f"{wa.PACKAGE_PATH}/{name}.py" for name in wa.module_closure()})
    for name in wa.module_closure():
        with open(os.path.join(wa.MODULE_UTILS_DIR, name + ".py"), "rb") as handle:
            assert members[f"{wa.PACKAGE_PATH}/{name}.py"] == handle.read()
    for name, data in members.items():
        # The program runs on hosts without ansible-core: nothing in it may import ansible itself.
        assert not re.search(rb"^\s*(from|import) ansible(\.| |$)", data, re.M), name
    assert wa.build_app().startswith(b"#!/usr/bin/env python3\n")


def run_app(app, *argv, isolated=False):
    command = [sys.executable] + (["-I", "-S"] if isolated else []) + [str(app)] + list(argv)
    proc = subprocess.run(command, capture_output=True, text=True, check=False, env=dict(os.environ, LC_ALL="C"))
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else None, proc.stderr


@pytest.fixture
def app(fresh_build, tmp_path):
    path = tmp_path / "conntrack-debug-window.pyz"
    path.write_bytes(wa.build_app())
    return path


@pytest.mark.parametrize("isolated", [False, True], ids=["interpreter", "without site-packages"])
def test_the_built_app_answers_status(app, tmp_path, isolated):
    rc, answer, stderr = run_app(app, f"--state-dir={tmp_path / 'state'}", "status", isolated=isolated)
    assert rc == 0, stderr
    assert (answer["program_name"], answer["program_version"]) == (wa.PROGRAM_NAME, wa.app_sha256())
    assert answer["order"] == ["init"] and answer["namespaces"] == {"init": {"active": False, "netns": None}}
    assert not (tmp_path / "state").exists(), "status creates no state directory"


def test_expect_sha256(app, tmp_path):
    state = f"--state-dir={tmp_path / 'state'}"
    rc, answer, _stderr = run_app(app, "--expect-sha256=" + "0" * 64, state, "status")
    assert rc == 3
    assert answer["stale_program"] is True and answer["failed"] is True
    rc, answer, _stderr = run_app(app, f"--expect-sha256={wa.app_sha256().upper()}", state, "status")
    assert rc == 0 and answer["program_version"] == wa.app_sha256()


def test_the_app_installs_itself_then_runs_the_command_as_the_installed_copy(app, tmp_path):
    dest = tmp_path / "libexec" / "netfilter-conntrack" / wa.PROGRAM_FILE
    state = f"--state-dir={tmp_path / 'state'}"
    rc, answer, _stderr = run_app(app, state, f"--install-to={dest}", "status")
    assert rc == 0 and answer["program_version"] == wa.app_sha256() and "failed" not in answer
    assert wi.source_sha256(str(dest)) == wa.app_sha256(), "compiled from this version"
    assert oct(dest.stat().st_mode & 0o777) == "0o700"
    rc, answer, _stderr = run_app(dest, state, f"--expect-sha256={wa.app_sha256()}", "status")
    assert rc == 0 and "failed" not in answer, "the installed copy answers as this version"


def test_after_installing_the_command_runs_from_the_installed_copy(app, tmp_path):
    """The program proper is imported once, from the installed (compiled) copy, not from the copy that installed it."""
    dest = tmp_path / "libexec" / wa.PROGRAM_FILE
    proc = subprocess.run([sys.executable, "-v", str(app), f"--state-dir={tmp_path / 'state'}", f"--install-to={dest}",
                           "status"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and json.loads(proc.stdout)["order"] == ["init"], proc.stderr[-2000:]
    imported = re.findall(r"^import '[\w.]+\._window_program' # <zipimporter object \"([^\"]+)\"", proc.stderr, re.M)
    assert [os.path.commonpath([path, str(dest)]) for path in imported] == [str(dest)]


def test_another_version_than_expected_installs_nothing(app, tmp_path):
    dest = tmp_path / "libexec" / wa.PROGRAM_FILE
    rc, answer, _stderr = run_app(app, "--expect-sha256=" + "0" * 64, f"--install-to={dest}", "status")
    assert rc == 3 and answer["stale_program"] is True and not dest.parent.exists()


def bootstrap(program, *argv, fallback="", sent=b"", scratch=None):
    """Run the bootstrap as the action does; the copy sent with the command is unpacked under scratch."""
    command = [sys.executable, "-c", wa.BOOTSTRAP, str(program), wa.app_sha256()]
    command += [f"--shipped-on-stdin={fallback}"] if fallback else []
    env = dict(os.environ, TMPDIR=str(scratch)) if scratch else None
    proc = subprocess.run(command + [f"--expect-sha256={wa.app_sha256()}"] + list(argv), input=sent,
                          capture_output=True, check=False, env=env)
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else None, proc.stderr.decode()


def test_the_copy_sent_with_the_command_is_installed_once_then_the_installed_copy_runs(fresh_build, tmp_path):
    dest = tmp_path / "libexec" / wa.PROGRAM_FILE
    state, scratch = f"--state-dir={tmp_path / 'state'}", tmp_path / "scratch"
    scratch.mkdir(mode=0o700)
    rc, answer, stderr = bootstrap(dest, state, "status", fallback="install", sent=wa.app_on_stdin(), scratch=scratch)
    assert rc == 0 and "failed" not in answer and stderr == f"{dest}: {wa.INSTALLING}\n"
    assert wi.source_sha256(str(dest)) == wa.app_sha256()
    assert not list(scratch.iterdir()), "the unpacked copy is removed"
    inode = dest.stat().st_ino
    rc, answer, stderr = bootstrap(dest, state, "status", fallback="install", sent=wa.app_on_stdin(), scratch=scratch)
    assert rc == 0 and "failed" not in answer and stderr == "", "the installed copy ran, the copy sent was read only"
    assert dest.stat().st_ino == inode and not list(scratch.iterdir())


def test_the_copy_sent_with_the_command_runs_without_install(fresh_build, tmp_path):
    dest = tmp_path / "libexec" / wa.PROGRAM_FILE
    rc, answer, stderr = bootstrap(dest, f"--state-dir={tmp_path / 'state'}", "status", fallback="run",
                                   sent=wa.app_on_stdin())
    assert rc == 0 and "failed" not in answer and stderr == "" and not dest.parent.exists()


def test_a_copy_sent_with_the_command_that_is_not_this_version_is_not_run(fresh_build, tmp_path):
    dest = tmp_path / "libexec" / wa.PROGRAM_FILE
    other = zlib.compress(wa.build_app() + b"\n", 1)
    rc, answer, _stderr = bootstrap(dest, f"--state-dir={tmp_path / 'state'}", "status", fallback="install", sent=other)
    assert rc == 1 and answer["failed"] is True and "is not the expected version" in answer["msg"]
    assert not dest.parent.exists()


def flip_last_byte(path):
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))


@pytest.mark.parametrize("change, expected", [(lambda path: None, 0), (flip_last_byte, 3)], ids=["as installed", "modified"])
def test_the_bootstrap_runs_the_compiled_copy_only_as_installed(app, tmp_path, change, expected):
    dest = tmp_path / "libexec" / wa.PROGRAM_FILE
    state = f"--state-dir={tmp_path / 'state'}"
    assert bootstrap(app, f"--install-to={dest}", state, "status")[0] == 0
    change(dest)
    rc, answer, stderr = bootstrap(dest, state, "status")
    assert rc == expected, (answer, stderr)
    assert answer.get("stale_program", False) is (expected == 3)


def test_an_install_that_fails_runs_no_command(app, tmp_path):
    dest = tmp_path / "libexec" / wa.PROGRAM_FILE
    dest.mkdir(parents=True, mode=0o700)   # a directory where the program should be: the rename fails
    state = tmp_path / "state"
    rc, answer, _stderr = run_app(app, f"--state-dir={state}", f"--install-to={dest}", "status")
    assert rc == 1 and answer["install_failed"] is True and answer["failed"] is True
    assert answer["msg"].startswith(f"cannot install {dest}: ") and "unsafe_path" not in answer
    assert not state.exists()


def test_an_install_into_a_planted_path_is_refused_and_runs_no_command(app, tmp_path):
    blocker = tmp_path / "libexec"
    blocker.write_text("a file where the directory should be")
    state = tmp_path / "state"
    rc, answer, _stderr = run_app(app, f"--state-dir={state}", f"--install-to={blocker / wa.PROGRAM_FILE}", "status")
    assert rc == 1 and answer["install_failed"] is True and answer["unsafe_path"] is True
    assert answer["msg"].startswith(f"refusing to install {blocker / wa.PROGRAM_FILE} as root: {blocker} is not a"
                                    " directory")
    assert not state.exists()


def test_bad_usage_exits_2(app):
    proc = subprocess.run([sys.executable, str(app), "frobnicate"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


# --- host_interpreter -----------------------------------------------------------------------------------------

SHEBANGS = [
    ("ansible-core 2.19+: (module bits, path)", lambda s: (types.SimpleNamespace(shebang=s), "/m.py")),
    ("ansible-core 2.16-2.18: (style, shebang, data, path)", lambda s: ("new", s, b"data", "/m.py")),
]
INTERPRETERS = [
    ("#!/usr/bin/python3", ["/usr/bin/python3"]),
    ("#!/opt/py/bin/python3.12", ["/opt/py/bin/python3.12"]),
    ("#!/usr/bin/env python3", ["/usr/bin/env", "python3"]),
]


@pytest.mark.parametrize("shape", [s[1] for s in SHEBANGS], ids=[s[0] for s in SHEBANGS])
@pytest.mark.parametrize("shebang, expected", INTERPRETERS, ids=[i[0] for i in INTERPRETERS])
def test_host_interpreter(shape, shebang, expected):
    action = MagicMock()
    action._configure_module.return_value = shape(shebang)
    assert wa.host_interpreter(action, {"ansible_python_interpreter": "x"}) == expected
    kwargs = action._configure_module.call_args.kwargs
    assert kwargs["module_name"] == "netfilter.conntrack.conntrack_debug_window"
    assert kwargs["task_vars"] == {"ansible_python_interpreter": "x"}


@pytest.mark.parametrize("shape", [s[1] for s in SHEBANGS], ids=[s[0] for s in SHEBANGS])
@pytest.mark.parametrize("shebang", [None, "", "#!"])
def test_host_interpreter_unknown(shape, shebang):
    action = MagicMock()
    action._configure_module.return_value = shape(shebang)
    with pytest.raises(AnsibleActionFail, match="cannot tell which Python interpreter"):
        wa.host_interpreter(action, {})


# --- WindowApp.run --------------------------------------------------------------------------------------------

# How the program and its bootstrap sign an answer: their name, and the version the controller ships.
IDENTITY = {"program_name": wa.PROGRAM_NAME, "program_version": wa.app_sha256()}
ANSWER = {"changed": False, **IDENTITY, "order": ["init"]}


def result(rc=0, stdout="", stderr=""):
    return {"rc": rc, "stdout": stdout if isinstance(stdout, str) else json.dumps(stdout), "stderr": stderr}


class Host:
    """The action's connection: answers each command from a list, records them."""

    def __init__(self, *answers, pipelining=False):
        self.answers = list(answers)
        self.commands = []
        self.transferred = {}
        self.action = MagicMock()
        self.action._configure_module.return_value = (types.SimpleNamespace(shebang="#!/usr/bin/python3.11"), "/m")
        self.action._compute_environment_string.return_value = ""
        self.action._connection._shell.tmpdir = "/tmp/ansible-tmp-1"
        self.action._connection._shell.join_path = lambda *parts: "/".join(parts)
        self.action._low_level_execute_command.side_effect = self.execute
        self.action._transfer_data.side_effect = self.transferred.__setitem__
        self.action._is_pipelining_enabled.return_value = pipelining
        self.stdin = []

    def execute(self, command, in_data=None):
        words = shlex.split(command)
        self.commands.append(words)
        self.stdin.append(in_data)
        return self.answers.pop(0)

    def programs(self):
        """(program, its arguments) of each run: interpreter -c BOOTSTRAP PROGRAM SHA256 [--shipped-on-stdin=...]
        --expect-sha256=... ARGS."""
        return [(words[3], [word for word in words[5:] if not word.startswith("--expect-sha256=")])
                for words in self.commands]


INSTALLED = "/usr/local/libexec/netfilter-conntrack/" + wa.PROGRAM_FILE
TEMPORARY = "/tmp/ansible-tmp-1/" + wa.PROGRAM_FILE
INSTALL_TO = f"--install-to={INSTALLED}"


def stale(why):
    """The bootstrap's answer for a copy it will not run: missing, not a regular file, not root's, another version."""
    return result(3, {"changed": False, "failed": True, "stale_program": True, **IDENTITY,
                      "msg": why})


STALE = [
    ("missing", stale(f"{INSTALLED} is not installed")),
    ("a symlink", stale(f"{INSTALLED} cannot be run: Too many levels of symbolic links")),
    ("another version", stale(f"{INSTALLED} is not the expected version, or not root's alone")),
]


@pytest.mark.parametrize("first", [s[1] for s in STALE], ids=[s[0] for s in STALE])
def test_a_stale_copy_is_reinstalled(fresh_build, first):
    host = Host(first, result(0, ANSWER))
    app = wa.WindowApp(host.action, {}, "/usr/local/libexec/netfilter-conntrack", install=True)
    assert app.run(["status"]) == (0, ANSWER)
    # The controller's copy installs itself and runs the command in the same run.
    assert host.programs() == [(INSTALLED, ["status"]), (TEMPORARY, [INSTALL_TO, "status"])]
    assert app.installed is True
    assert host.transferred == {TEMPORARY: wa.build_app()}
    for words in host.commands:
        assert words[:3] == ["/usr/bin/python3.11", "-c", wa.BOOTSTRAP], "the host's interpreter, never a shebang"
        assert words[4:6] == [wa.app_sha256(), f"--expect-sha256={wa.app_sha256()}"]
    assert host.stdin == [None, None], "without pipelining nothing goes on stdin"


@pytest.mark.parametrize("install, fallback", [(True, "install"), (False, "run")])
def test_with_pipelining_the_controllers_copy_goes_with_the_command(fresh_build, install, fallback):
    host = Host(result(0, ANSWER, f"{INSTALLED}: {wa.INSTALLING}\n" if install else ""), pipelining=True)
    app = wa.WindowApp(host.action, {}, "/usr/local/libexec/netfilter-conntrack", install=install)
    assert app.run(["status"]) == (0, ANSWER)
    assert host.programs() == [(INSTALLED, [f"--shipped-on-stdin={fallback}", "status"])]
    assert host.stdin == [wa.app_on_stdin()] and zlib.decompress(host.stdin[0]) == wa.build_app()
    assert app.installed is install and host.transferred == {}
    host.action._is_pipelining_enabled.assert_called_once_with("new")


def test_after_enable_the_copy_is_not_sent_with_the_command_and_a_stale_one_is_bypassed(fresh_build):
    """Collect, revert and cleanup run the copy enable installed; only a host without it pays a second run."""
    host = Host(result(0, ANSWER), pipelining=True)
    app = wa.WindowApp(host.action, {}, "/usr/local/libexec/netfilter-conntrack", install=False, send_with_command=False)
    assert app.run(["status"]) == (0, ANSWER)
    assert host.programs() == [(INSTALLED, ["status"])] and host.stdin == [None]
    host = Host(stale(f"{INSTALLED} is not installed"), result(0, ANSWER), pipelining=True)
    app = wa.WindowApp(host.action, {}, "/usr/local/libexec/netfilter-conntrack", install=False, send_with_command=False)
    assert app.run(["status"]) == (0, ANSWER)
    assert host.programs() == [(INSTALLED, ["status"]), (TEMPORARY, ["status"])] and host.stdin == [None, None]
    assert app.installed is False and host.transferred == {TEMPORARY: wa.build_app()}


def test_with_pipelining_an_installed_copy_of_this_version_is_not_reported_installed(fresh_build):
    host = Host(result(0, ANSWER), pipelining=True)
    app = wa.WindowApp(host.action, {}, "/usr/local/libexec/netfilter-conntrack", install=True)
    assert app.run(["status"]) == (0, ANSWER) and app.installed is False


def test_with_pipelining_a_failed_install_fails_the_action(fresh_build):
    host = Host(result(1, {"failed": True, "install_failed": True, **IDENTITY,
                           "msg": f"cannot install {INSTALLED}: Read-only file system"}), pipelining=True)
    app = wa.WindowApp(host.action, {}, "/usr/local/libexec/netfilter-conntrack", install=True)
    with pytest.raises(AnsibleActionFail, match=f"^cannot install {INSTALLED}: Read-only file system"):
        app.run(["status"])


NOT_RETRIED = [
    ("a crash", result(1, "", "Traceback: SyntaxError"), "exit status 1.: Traceback: SyntaxError"),
    ("answers nothing, like /bin/true", result(0, ""), "exit status 0.:"),
    ("release 0.2.0's program (another name)", result(0, {"changed": False}), "exit status 0.:"),
    ("not JSON", result(0, "hello"), "exit status 0.: hello"),
    ("stale without the bootstrap's exit status", result(0, {"stale_program": True, **IDENTITY}),
     "exit status 0.:"),
    ("another version's answer", result(0, {"changed": False, "program_name": wa.PROGRAM_NAME,
                                            "program_version": "0" * 64}), "exit status 0.:"),
    ("an answer signed with the name alone", result(0, {"changed": False, "program_version": wa.PROGRAM_NAME}),
     "exit status 0.:"),
]


@pytest.mark.parametrize("first, message", [s[1:] for s in NOT_RETRIED], ids=[s[0] for s in NOT_RETRIED])
def test_only_stale_is_retried(fresh_build, first, message):
    """Anything else the copy answers is reported: a crash is not run twice."""
    host = Host(first)
    app = wa.WindowApp(host.action, {}, "/usr/local/libexec/netfilter-conntrack", install=True)
    with pytest.raises(AnsibleActionFail, match="status did not answer when run by /usr/bin/python3.11 ." + message):
        app.run(["status"])
    assert host.programs() == [(INSTALLED, ["status"])] and host.transferred == {}


def test_an_unsafe_program_directory_is_refused_not_replaced(fresh_build):
    refusal = result(4, {"changed": False, "failed": True, "unsafe_program": True, **IDENTITY,
                         "msg": f"refusing to run {INSTALLED} as uid 0: /usr/local/libexec is writable by group or"
                                " others (mode 0777); use a directory that only root can write"})
    host = Host(refusal)
    app = wa.WindowApp(host.action, {}, "/usr/local/libexec/netfilter-conntrack", install=True)
    with pytest.raises(AnsibleActionFail, match="^refusing to run .* /usr/local/libexec is writable by group") as failed:
        app.run(["status"])
    assert host.programs() == [(INSTALLED, ["status"])] and host.transferred == {}
    assert failed.value.result["unsafe_program"] is True
    assert failed.value.result["program"] == {"path": INSTALLED, "version": wa.app_sha256(), "installed": False,
                                              "interpreter": "/usr/bin/python3.11"}, "program: the program that ran"


def test_a_current_copy_is_run_as_it_is(fresh_build):
    host = Host(result(0, ANSWER))
    app = wa.WindowApp(host.action, {}, "/usr/local/libexec/netfilter-conntrack", install=True)
    assert app.run(["status"]) == (0, ANSWER)
    assert host.programs() == [(INSTALLED, ["status"])]
    assert app.installed is False and host.transferred == {}


def test_without_install_a_temporary_copy_runs(fresh_build):
    host = Host(stale(f"{INSTALLED} is not installed"), result(0, ANSWER), result(0, ANSWER))
    app = wa.WindowApp(host.action, {}, "/usr/local/libexec/netfilter-conntrack", install=False)
    assert app.run(["status"]) == (0, ANSWER)
    assert app.run(["collect"]) == (0, ANSWER)
    # The installed copy that was stale is not asked again in the same task.
    assert host.programs() == [(INSTALLED, ["status"]), (TEMPORARY, ["status"]), (TEMPORARY, ["collect"])]
    assert app.installed is False
    assert list(host.transferred) == [TEMPORARY], "transferred once per action"


def test_a_failed_install_fails_the_action(fresh_build):
    host = Host(stale(f"{INSTALLED} is not installed"),
                result(1, {"failed": True, "install_failed": True, **IDENTITY,
                           "msg": f"cannot install {INSTALLED}: Read-only file system"}))
    app = wa.WindowApp(host.action, {}, "/usr/local/libexec/netfilter-conntrack", install=True)
    with pytest.raises(AnsibleActionFail, match=f"^cannot install {INSTALLED}: Read-only file system .run by"
                                                " /usr/bin/python3.11.$"):
        app.run(["status"])
    assert app.installed is False


def test_a_program_that_never_answers_fails_the_action(fresh_build):
    host = Host(stale(f"{INSTALLED} is not installed"), result(1, "", "Traceback: SyntaxError"))
    app = wa.WindowApp(host.action, {}, "/usr/local/libexec/netfilter-conntrack", install=True)
    with pytest.raises(AnsibleActionFail, match="status did not answer when run by /usr/bin/python3.11 .exit status 1.:"
                                                " Traceback: SyntaxError"):
        app.run(["status"])


def test_a_failing_command_keeps_its_exit_status_and_gets_a_message(fresh_build):
    host = Host(result(1, {"failed": True, **IDENTITY}, "details on stderr"))
    app = wa.WindowApp(host.action, {}, "/usr/local/libexec/netfilter-conntrack", install=True)
    rc, answer = app.run(["revert"])
    assert rc == 1 and answer["msg"] == "details on stderr"
