# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of the host program conntrack-debug-window.

Note that this plugin util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins!

The program is not a second copy of anything: it is ``module_utils/_window_program.py`` and the
module_utils it imports, packed as a zip application the way AnsiballZ packs a module. The archive
is reproducible (sorted members, fixed timestamps, stored uncompressed), so its SHA-256 names the
collection's version of the program; the installed copy is run with ``--expect-sha256`` and is
replaced when it answers anything else. The installed copy is compiled on the host by the interpreter
that runs it, and names the version it was compiled from (``module_utils/_window_install.py``): Python
keeps no bytecode for a zip application, and compiling the whole program again cost most of each run.

The program always runs with the interpreter Ansible uses for the host (``ansible_python_interpreter``
or the discovered one), never through a shebang, and never before a short bootstrap (``python -c``)
has checked, as the user that will run it (root), that nobody else could have written it: every
directory from ``/`` down to the program's must be owned by root and not writable by group or others
(a sticky one such as ``/tmp`` is accepted above the program's own directory), else the run is
refused with a message naming the directory (exit status 4). A program file that is missing, a
symlink, not root's, writable by others, of another version, compiled for another interpreter or
changed since it was compiled is not run: the bootstrap answers
"stale" (exit status 3) and the controller's copy replaces it. Only that answer is retried; a
program that crashes is reported, not run twice.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import io
import json
import os
import re
import shlex
import typing as t
import zipfile
import zlib

from ansible.errors import AnsibleActionFail

from ansible_collections.netfilter.conntrack.plugins.module_utils._window_store import PROGRAM_NAME

PROGRAM_FILE = PROGRAM_NAME + ".pyz"
DEFAULT_PROGRAM_DIR = "/usr/local/libexec/netfilter-conntrack"
ENTRY_MODULE = "_window_program"
# Where the program's modules live inside the archive: the import names module_utils use.
PACKAGE_PATH = "ansible_collections/netfilter/conntrack/plugins/module_utils"
MODULE_UTILS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "module_utils")
# The documentation-only module whose interpreter Ansible resolves for the host, as for any module.
INTERPRETER_PROBE_MODULE = "netfilter.conntrack.conntrack_debug_window"
_MODULE_UTILS_PACKAGE = PACKAGE_PATH.replace("/", ".") + "."
# What the bootstrap takes from module_utils/_window_install.py: how an installed copy names its version.
VERSION_CHECK = ("COMPILED_MARK", "program_version")


def top_level_source(path: str, names: tuple[str, ...]) -> str:
    """The source of the named top-level assignments and functions of a module, in the module's order."""
    with open(path, encoding="utf-8") as handle:
        source = handle.read()
    chosen = []
    for node in ast.parse(source).body:
        defined = [node.name] if isinstance(node, ast.FunctionDef) else [
            target.id for target in getattr(node, "targets", []) if isinstance(target, ast.Name)]
        if set(defined) & set(names):
            chosen.append(ast.get_source_segment(source, node))
    return "\n".join(chosen) + "\n"


# What the bootstrap says on stderr when it installs the copy sent with the command.
INSTALLING = "not this version; installing the copy sent with the command"
# Runs as root on the host before the program: argv is PROGRAM SHA256 [--shipped-on-stdin=install|run] ARGS...;
# see the module docstring.
BOOTSTRAP = (f"import hashlib, importlib.util, json, os, runpy, stat, sys\nINSTALLING = {INSTALLING!r}\n"
             f"PROGRAM_NAME = {PROGRAM_NAME!r}\n") + top_level_source(
    os.path.join(MODULE_UTILS_DIR, "_window_install.py"), VERSION_CHECK) + r"""
def stop(code, **fields):
    fields.update(changed=False, failed=True, program_name=PROGRAM_NAME, program_version=digest)
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.exit(code)
def run(path, *options):
    sys.argv = [path] + list(options) + sys.argv[3:]
    sys.path.insert(0, path)
    runpy.run_path(path, run_name="__main__")
def stale(why):
    if not fallback:
        stop(3, stale_program=True, msg=why)
    import shutil, tempfile, zlib
    shipped = zlib.decompress(sent)
    if hashlib.sha256(shipped).hexdigest() != digest.lower():
        stop(1, msg="the copy of %s sent with the command is not the expected version" % program)
    scratch = tempfile.mkdtemp(prefix="conntrack-debug-window-")
    try:
        copy = os.path.join(scratch, os.path.basename(program))
        with os.fdopen(os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600), "wb") as out:
            out.write(shipped)
        if fallback == "install":
            sys.stderr.write("%s: %s\n" % (program, INSTALLING))
            run(copy, "--install-to=" + program)
        else:
            run(copy)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    sys.exit()
program, digest = sys.argv[1], sys.argv[2]
fallback = sys.argv.pop(3).split("=", 1)[1] if sys.argv[3:4] and sys.argv[3].startswith("--shipped-on-stdin=") else ""
# Read whole even when unused: the controller's write of what the host leaves unread fails the connection.
sent = sys.stdin.buffer.read() if fallback else b""
home = os.path.dirname(program)
chain = [home]
while chain[-1] != os.path.dirname(chain[-1]):
    chain.append(os.path.dirname(chain[-1]))
for directory in reversed(chain):
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        stale(program + " is not installed")
    mode = stat.S_IMODE(info.st_mode)
    why = ("is not a directory" if not stat.S_ISDIR(info.st_mode) else
           "is owned by uid %d" % info.st_uid if info.st_uid not in (0, os.geteuid()) else
           "is writable by group or others (mode %04o)" % mode
           if mode & 0o022 and not (info.st_mode & stat.S_ISVTX and directory != home) else None)
    if why:
        stop(4, unsafe_program=True, msg="refusing to run %s as uid %d: %s %s; use a directory that only root can write"
             " (conntrack_debug_program_dir)" % (program, os.geteuid(), directory, why))
try:
    fd = os.open(program, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
except OSError as exc:
    stale("%s cannot be run: %s" % (program, exc.strerror))
info = os.fstat(fd)
with os.fdopen(fd, "rb") as handle:
    body = handle.read() if stat.S_ISREG(info.st_mode) else b""
if (info.st_uid not in (0, os.geteuid()) or stat.S_IMODE(info.st_mode) & 0o022
        or program_version(body) != digest.lower()):
    stale(program + " is not the expected version, or not root's alone")
run(program)
"""
STALE_EXIT = 3
UNSAFE_EXIT = 4
_MAIN = (
    "import sys\n"
    "from ansible_collections.netfilter.conntrack.plugins.module_utils._window_install import install_then_run\n"
    "install_then_run(sys.argv)\n"
    f"from ansible_collections.netfilter.conntrack.plugins.module_utils.{ENTRY_MODULE} import main\n"
    "sys.exit(main())\n"
)


@functools.lru_cache(maxsize=None)
def module_closure(entry: str = ENTRY_MODULE, directory: str = MODULE_UTILS_DIR) -> list[str]:
    """The module_utils ``entry`` imports, directly or not, itself included, sorted."""
    seen: set[str] = set()
    pending = [entry]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        with open(os.path.join(directory, name + ".py"), encoding="utf-8") as handle:
            pending.extend(imported_module_utils(handle.read()))
    return sorted(seen)


# Each task on each host builds the program in a worker process of its own, so the closure is found anew every
# time: matching the import statements as text takes milliseconds for the whole closure, where walking every
# file's syntax tree (as AnsiballZ does) took about 0.3 s of the controller's CPU per host and task.
_PACKAGE_RE = re.escape(_MODULE_UTILS_PACKAGE[:-1])
_FROM_SUBMODULE_RE = re.compile(r"^[ \t]*from[ \t]+" + _PACKAGE_RE + r"\.(\w+)", re.M)
_FROM_PACKAGE_RE = re.compile(r"^[ \t]*from[ \t]+" + _PACKAGE_RE + r"[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)", re.M)
_IMPORT_RE = re.compile(r"^[ \t]*import[ \t]+([^\n#]*)", re.M)


def imported_module_utils(source: str) -> list[str]:
    """The collection's module_utils a source imports: ``from PKG._x import``, ``from PKG import _x`` (also in
    parentheses over several lines) and ``import PKG._x``, at the top level or indented in a function."""
    found = _FROM_SUBMODULE_RE.findall(source)
    for names in _FROM_PACKAGE_RE.findall(source):
        found.extend(name.split()[0] for name in re.sub(r"#[^\n]*|[()\\]", "", names).split(",") if name.strip())
    for names in _IMPORT_RE.findall(source):
        found.extend(name.split()[0][len(_MODULE_UTILS_PACKAGE):].split(".")[0] for name in names.split(",")
                     if name.strip().startswith(_MODULE_UTILS_PACKAGE))
    return found


@functools.lru_cache(maxsize=1)
def build_app() -> bytes:
    """The zip application, byte for byte the same for the same module_utils."""
    members = {"__main__.py": _MAIN}
    parts = PACKAGE_PATH.split("/")
    for depth in range(1, len(parts) + 1):
        members["/".join(parts[:depth]) + "/__init__.py"] = ""
    for name in module_closure():
        with open(os.path.join(MODULE_UTILS_DIR, name + ".py"), encoding="utf-8") as handle:
            members[f"{PACKAGE_PATH}/{name}.py"] = handle.read()
    buffer = io.BytesIO()
    buffer.write(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(members):
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, members[path])
    return buffer.getvalue()


def app_sha256() -> str:
    return hashlib.sha256(build_app()).hexdigest()


@functools.lru_cache(maxsize=1)
def app_on_stdin() -> bytes:
    """The program as sent with a command: compressed (a third of its size), quickly, since every enable sends it."""
    return zlib.compress(build_app(), 1)


# Built here, in the controller's main process, which imports the window and report actions before it forks a worker
# for each host and task: every worker inherits the program instead of reading, zipping and compressing its
# module_utils again (about 30 ms of CPU per host and task, more than the rest of the action).
app_on_stdin()


def mitogen_interpreter(action: t.Any, task_vars: dict[str, t.Any]) -> list[str] | None:
    """Under a Mitogen strategy, the interpreter Mitogen runs this host's tasks with; None under any other.

    Mitogen replaces ActionBase._configure_module() with a refusal, so the interpreter is asked of Mitogen's own
    play-context view, which resolves ansible_python_interpreter (and discovery) the way its modules use it.
    """
    connection = action._connection
    if not any(cls.__module__.startswith("ansible_mitogen.") for cls in type(connection).__mro__):
        return None
    from ansible_mitogen.transport_config import PlayContextSpec  # pylint: disable=import-outside-toplevel
    spec = PlayContextSpec(connection, action._play_context, connection.transport, task_vars.get("inventory_hostname"))
    return list(spec.python_path())


def host_interpreter(action: t.Any, task_vars: dict[str, t.Any]) -> list[str]:
    """The interpreter command Ansible would run a module with on this host (explicit, or discovered)."""
    words = mitogen_interpreter(action, task_vars)
    if words:
        return words
    configured = action._configure_module(module_name=INTERPRETER_PROBE_MODULE, module_args={}, task_vars=task_vars)
    # ansible-core 2.19 returns (module_bits, path); earlier releases (style, shebang, data, path).
    shebang = configured[0].shebang if len(configured) == 2 else configured[1]
    words = shlex.split((shebang or "").replace("#!", "", 1))
    if not words:
        raise AnsibleActionFail("cannot tell which Python interpreter this host uses for modules")
    return words


class WindowApp:
    """Runs the host's copy of the program for one action, installing it first when it is missing or stale."""

    def __init__(self, action: t.Any, task_vars: dict[str, t.Any], program_dir: str, install: bool,
                 send_with_command: bool = True) -> None:
        self._action = action
        self.path = os.path.join(program_dir, PROGRAM_FILE)
        self._install = install
        self._sha256 = app_sha256()
        self._interpreter = host_interpreter(action, task_vars)
        # Where the command's stdin reaches the host (a pipelining connection, as for AnsiballZ), the controller's copy
        # goes with the command: a host without this version then costs the same one round trip as one with it.
        # Elsewhere (podman, requiretty, Mitogen), and for the commands that follow an enable (send_with_command
        # false: the copy is there, and 177 KB with every command cost more than the rare second run), a "stale"
        # answer is followed by a transfer and a second run.
        self._send_with_command = (send_with_command and mitogen_interpreter(action, task_vars) is None
                                   and bool(action._is_pipelining_enabled("new")))
        self.installed = False
        self._temporary: str | None = None

    @property
    def interpreter(self) -> str:
        return " ".join(self._interpreter)

    def description(self) -> dict[str, t.Any]:
        """What ``program`` means in every result of the actions: the host program that ran, and how."""
        return {"path": self.path, "version": self._sha256, "installed": self.installed, "interpreter": self.interpreter}

    def _command(self, program: str, argv: list[str], install_to: str | None = None, fallback: str = "") -> str:
        env = self._action._compute_environment_string()
        words = self._interpreter + ["-c", BOOTSTRAP, program, self._sha256]
        if fallback:
            words.append(f"--shipped-on-stdin={fallback}")
        words.append(f"--expect-sha256={self._sha256}")
        if install_to:
            words.append(f"--install-to={install_to}")
        words += argv
        return " ".join(part for part in [env, " ".join(shlex.quote(word) for word in words)] if part)

    def _exec(self, program: str, argv: list[str], install_to: str | None = None, fallback: str = "") -> dict[str, t.Any]:
        return self._action._low_level_execute_command(self._command(program, argv, install_to, fallback),
                                                       in_data=app_on_stdin() if fallback else None)

    def _remote_tmp(self, name: str) -> str:
        shell = self._action._connection._shell
        if shell.tmpdir is None:
            self._action._make_tmp_path()
        return shell.join_path(shell.tmpdir, name)

    def _transfer(self) -> str:
        if self._temporary is None:
            remote = self._remote_tmp(PROGRAM_FILE)
            self._action._transfer_data(remote, build_app())
            self._action._fixup_perms2([self._action._connection._shell.tmpdir, remote])
            self._temporary = remote
        return self._temporary

    def run(self, argv: list[str]) -> tuple[int, dict[str, t.Any]]:
        """Run the program with argv; returns (exit status, its JSON answer).

        A copy that is missing or not this version (the bootstrap's "stale") is replaced by the controller's copy, or
        bypassed with a temporary one. A directory others can write is refused, and a crash is reported: neither is
        run again.
        """
        if self._send_with_command:
            res = self._exec(self.path, argv, fallback="install" if self._install else "run")
            answer = self._answer(res)
            self._refuse_failed_install(answer)
            self.installed = answer is not None and f"{self.path}: {INSTALLING}" in (res.get("stderr") or "")
        else:
            res, answer = self._run_or_transfer(argv)
        if answer is not None and answer.get("unsafe_program"):
            raise AnsibleActionFail(str(answer.get("msg")), result=dict(answer, program=self.description()))
        if answer is None or answer.get("stale_program"):
            raise AnsibleActionFail(
                f"{PROGRAM_NAME} {argv[0]} did not answer when run by {self.interpreter} (exit status {res['rc']}):"
                f" {self._output(res)}")
        if res["rc"] != 0 and not answer.get("msg"):
            answer["msg"] = self._output(res) or f"exit status {res['rc']}"
        return res["rc"], answer

    def _run_or_transfer(self, argv: list[str]) -> tuple[dict[str, t.Any], dict[str, t.Any] | None]:
        """Run the host's copy; after a "stale", transfer the controller's copy and run that (installing it first)."""
        program = self._temporary if self._temporary is not None and not self._install else self.path
        res = self._exec(program, argv)
        answer = self._answer(res)
        if res["rc"] == STALE_EXIT and (answer or {}).get("stale_program") and program == self.path:
            temporary = self._transfer()
            # Installing is the first thing the controller's copy does in the same run, before the command.
            res = self._exec(temporary, argv, install_to=self.path if self._install else None)
            answer = self._answer(res)
            self._refuse_failed_install(answer)
            self.installed = self._install and answer is not None and not answer.get("stale_program")
        return res, answer

    def _refuse_failed_install(self, answer: dict[str, t.Any] | None) -> None:
        if answer is not None and answer.get("install_failed"):
            raise AnsibleActionFail(f"{answer.get('msg')} (run by {self.interpreter})",
                                    result=dict(answer, program=self.description()))

    @staticmethod
    def _output(res: dict[str, t.Any]) -> str:
        return (res.get("stderr") or res.get("stdout") or "").strip()[-400:]

    def _answer(self, res: dict[str, t.Any]) -> dict[str, t.Any] | None:
        """The program's JSON when this version of the program (or its bootstrap) gave it; None for anything else."""
        try:
            data = json.loads(res.get("stdout") or "")
        except ValueError:
            return None
        signed = (data.get("program_name"), data.get("program_version")) if isinstance(data, dict) else None
        if signed != (PROGRAM_NAME, self._sha256):
            return None
        return data


__all__ = ("BOOTSTRAP", "DEFAULT_PROGRAM_DIR", "mitogen_interpreter", "PROGRAM_FILE", "PROGRAM_NAME", "WindowApp", "app_sha256", "build_app",
           "host_interpreter", "module_closure")
