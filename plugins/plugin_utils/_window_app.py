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
replaced when it answers anything else.

The program always runs as ``INTERPRETER PROGRAM ...`` with the interpreter Ansible uses for the
host (``ansible_python_interpreter`` or the discovered one), never through a shebang.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import shlex
import typing as t
import zipfile

from ansible.errors import AnsibleActionFail

PROGRAM_NAME = "conntrack-debug-window"
PROGRAM_FILE = PROGRAM_NAME + ".pyz"
DEFAULT_PROGRAM_DIR = "/usr/local/libexec/netfilter-conntrack"
ENTRY_MODULE = "_window_program"
# Where the program's modules live inside the archive: the import names module_utils use.
PACKAGE_PATH = "ansible_collections/netfilter/conntrack/plugins/module_utils"
MODULE_UTILS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "module_utils")
# The documentation-only module whose interpreter Ansible resolves for the host, as for any module.
INTERPRETER_PROBE_MODULE = "netfilter.conntrack.conntrack_debug_window"
_IMPORT_RE = re.compile(r"^from ansible_collections\.netfilter\.conntrack\.plugins\.module_utils\.(\w+) import", re.M)
_MAIN = (
    "import sys\n"
    f"from ansible_collections.netfilter.conntrack.plugins.module_utils.{ENTRY_MODULE} import main\n"
    "sys.exit(main())\n"
)


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
            pending.extend(_IMPORT_RE.findall(handle.read()))
    return sorted(seen)


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


def host_interpreter(action: t.Any, task_vars: dict[str, t.Any]) -> list[str]:
    """The interpreter command Ansible would run a module with on this host (explicit, or discovered)."""
    configured = action._configure_module(module_name=INTERPRETER_PROBE_MODULE, module_args={}, task_vars=task_vars)
    # ansible-core 2.19 returns (module_bits, path); earlier releases (style, shebang, data, path).
    shebang = configured[0].shebang if len(configured) == 2 else configured[1]
    words = shlex.split((shebang or "").replace("#!", "", 1))
    if not words:
        raise AnsibleActionFail("cannot tell which Python interpreter this host uses for modules")
    return words


class WindowApp:
    """Runs the host's copy of the program for one action, installing it first when it is missing or stale."""

    def __init__(self, action: t.Any, task_vars: dict[str, t.Any], program_dir: str, install: bool) -> None:
        self._action = action
        self.path = os.path.join(program_dir, PROGRAM_FILE)
        self._install = install
        self._sha256 = app_sha256()
        self._interpreter = host_interpreter(action, task_vars)
        self.installed = False
        self._temporary: str | None = None

    @property
    def interpreter(self) -> str:
        return " ".join(self._interpreter)

    def _command(self, program: str, argv: list[str], install_to: str | None = None) -> str:
        env = self._action._compute_environment_string()
        words = self._interpreter + [program, f"--expect-sha256={self._sha256}"]
        if install_to:
            words.append(f"--install-to={install_to}")
        words += argv
        return " ".join(part for part in [env, " ".join(shlex.quote(word) for word in words)] if part)

    def _exec(self, program: str, argv: list[str], install_to: str | None = None) -> dict[str, t.Any]:
        return self._action._low_level_execute_command(self._command(program, argv, install_to))

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

        Whatever does not answer as this version of the program (missing, another version, a file replaced by
        something else) is replaced by the controller's copy, or bypassed with a temporary one.
        """
        if self._temporary is not None and not self._install:
            # The installed copy already failed to answer in this task: do not ask it again.
            res = self._exec(self._temporary, argv)
        else:
            res = self._exec(self.path, argv)
        answer = self._answer(res)
        if answer is None:
            temporary = self._transfer()
            # Installing is the first thing the controller's copy does in the same run, before the command.
            res = self._exec(temporary, argv, install_to=self.path if self._install else None)
            answer = self._answer(res)
            if answer is not None and answer.get("install_failed"):
                raise AnsibleActionFail(f"{answer.get('msg')} (run by {self.interpreter})", result={"program": answer})
            if answer is None:
                raise AnsibleActionFail(
                    f"{PROGRAM_NAME} {argv[0]} did not answer when run by {self.interpreter} (exit status {res['rc']}):"
                    f" {self._output(res)}")
            self.installed = self._install
        if res["rc"] != 0 and not answer.get("msg"):
            answer["msg"] = self._output(res) or f"exit status {res['rc']}"
        return res["rc"], answer

    @staticmethod
    def _output(res: dict[str, t.Any]) -> str:
        return (res.get("stderr") or res.get("stdout") or "").strip()[-400:]

    @staticmethod
    def _answer(res: dict[str, t.Any]) -> dict[str, t.Any] | None:
        """The program's JSON when this version of the program gave it; None for anything else."""
        try:
            data = json.loads(res.get("stdout") or "")
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("stale_program") or data.get("program_version") != PROGRAM_NAME:
            return None
        return data


__all__ = ("DEFAULT_PROGRAM_DIR", "PROGRAM_FILE", "PROGRAM_NAME", "WindowApp", "app_sha256", "build_app",
           "host_interpreter", "module_closure")
