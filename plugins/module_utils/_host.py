# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the apply functions need from whoever runs them: a module, or the host program.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

The modules ``conntrack_log_invalid``, ``nf_log_backend`` and ``dynamic_debug_site`` and the host
program's ``enable`` command call the same functions; those see only this interface: check mode,
diff mode, warnings, finding a program and running an argument list under the C locale.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import typing as t

# Command output is parsed or quoted in messages: the same language whoever runs it.
C_LOCALE = {"LC_ALL": "C", "LANGUAGE": "C"}


class ModuleHost:
    """An AnsibleModule seen through the interface."""

    def __init__(self, module) -> None:
        self._module = module
        self.check_mode = bool(module.check_mode)
        self.diff = bool(module._diff)

    def warn(self, msg: str) -> None:
        self._module.warn(msg)

    def which(self, name: str, opt_dirs: list[str]) -> str | None:
        return self._module.get_bin_path(name, opt_dirs=opt_dirs)

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        return self._module.run_command(argv, environ_update=C_LOCALE)


class ProcessHost:
    """The host program's side: commands run as child processes, warnings collected for its JSON answer."""

    def __init__(self, check_mode: bool = False, diff: bool = False) -> None:
        self.check_mode = check_mode
        self.diff = diff
        self.warnings: list[str] = []

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)

    def which(self, name: str, opt_dirs: list[str]) -> str | None:
        # As AnsibleModule.get_bin_path: PATH first, then the usual system directories it may lack.
        path = os.pathsep.join([os.environ.get("PATH", "")] + opt_dirs)
        return shutil.which(name, path=path)

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        return run_argv(argv)


class Completed(t.NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def run_argv(argv: list[str]) -> Completed:
    """Run an argument list (no shell) with the C locale and no stdin, where no AnsibleModule exists: the host
    program's steps, and its systemd timer and watcher. A command that cannot start answers 127, as a shell would."""
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False,
                              env=dict(os.environ, **C_LOCALE), universal_newlines=True, errors="replace")
    except OSError as exc:
        return Completed(127, "", f"{argv[0]}: {exc.strerror}")
    return Completed(done.returncode, done.stdout, done.stderr)


__all__ = ("C_LOCALE", "Completed", "ModuleHost", "ProcessHost", "run_argv")
