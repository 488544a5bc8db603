# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of the standalone revert program (roles/debug/files/conntrack-debug-revert).

The debug role's action plugins run the program that is installed on the host directly, one command per
step, instead of one module task per step: on a fleet every task is a round trip per host. The installed
copy is run with --expect-sha256 so that a missing or different copy is noticed in the same round trip,
and only then is the program transferred and installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import typing as t

from ansible.errors import AnsibleActionFail

# The program ships in this collection's role; plugins/plugin_utils -> collection root.
PROGRAM_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "roles", "debug", "files",
                              "conntrack-debug-revert")
PROGRAM_NAME = "conntrack-debug-revert"
DEFAULT_PROGRAM_DIR = "/usr/local/libexec/netfilter-conntrack"
# Exit statuses of a copy that cannot run this request: 3 = --expect-sha256 mismatch, 2 = a copy too old
# to know --expect-sha256 (argparse usage error), 126/127 = not executable / not installed.
STALE_STATUSES = (2, 3, 126, 127)


def program_sha256(path: str = PROGRAM_SOURCE) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def window_ids(netns: list[str], all_netns: bool) -> list[str]:
    """--netns/--id arguments naming the snapshots of one debug window (as the program names them)."""
    args = [f"--netns={name}" for name in netns]
    if not netns or all_netns:
        args.append("--id=init")
    return args


class ProgramRunner:
    """Runs the host's copy of the program for one action, installing it first when it is missing or stale."""

    def __init__(self, action: t.Any, program_dir: str, install: bool) -> None:
        self._action = action
        self.path = os.path.join(program_dir, PROGRAM_NAME)
        self._install = install
        self._sha256 = program_sha256()
        self.installed = False
        self._temporary: str | None = None

    def _command(self, program: str, argv: list[str]) -> str:
        env = self._action._compute_environment_string()
        words = [program, f"--expect-sha256={self._sha256}"] + argv
        return " ".join(part for part in [env, " ".join(shlex.quote(word) for word in words)] if part)

    def _exec(self, program: str, argv: list[str]) -> dict[str, t.Any]:
        return self._action._low_level_execute_command(self._command(program, argv))

    def _remote_tmp(self, name: str) -> str:
        shell = self._action._connection._shell
        if shell.tmpdir is None:
            self._action._make_tmp_path()
        return shell.join_path(shell.tmpdir, name)

    def put_data(self, name: str, data: str) -> str:
        """Put data into a file of the action's remote temporary directory; returns its remote path.

        Not stdin: connection plugins such as containers.podman.podman do not pass stdin to the command.
        """
        remote = self._remote_tmp(name)
        self._action._transfer_data(remote, data)
        return remote

    def _transfer(self) -> str:
        """Put the program into the action's remote temporary directory; returns its remote path."""
        if self._temporary is None:
            shell = self._action._connection._shell
            remote = self._remote_tmp(PROGRAM_NAME)
            self._action._transfer_file(PROGRAM_SOURCE, remote)
            self._action._fixup_perms2([shell.tmpdir, remote], execute=True)
            self._temporary = remote
        return self._temporary

    def run(self, argv: list[str]) -> tuple[int, dict[str, t.Any]]:
        """Run `program argv`; returns (exit status, parsed JSON). Raises on output that is not the program's
        and when the program cannot be installed."""
        res = self._exec(self.path, argv)
        if res["rc"] in STALE_STATUSES:
            temporary = self._transfer()
            if self._install:
                install = self._exec(temporary, ["install", f"--dest={self.path}"])
                answer = self._parse(install, ["install"])
                if install["rc"] != 0:
                    raise AnsibleActionFail(f"cannot install {self.path}: {answer['msg']}", result={"program": answer})
                self.installed = True
                res = self._exec(self.path, argv)
            else:
                res = self._exec(temporary, argv)
        return res["rc"], self._parse(res, argv)

    def _parse(self, res: dict[str, t.Any], argv: list[str]) -> dict[str, t.Any]:
        try:
            data = json.loads(res.get("stdout") or "")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise AnsibleActionFail(
                f"{self.path} {argv[0]} did not answer (exit status {res['rc']}): "
                f"{(res.get('stderr') or res.get('stdout') or '').strip()[-400:]}")
        if res["rc"] != 0 and not data.get("msg"):
            data["msg"] = (res.get("stderr") or "").strip()[-400:] or f"exit status {res['rc']}"
        return data
