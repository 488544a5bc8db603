# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the apply functions need from whoever runs them: a module, or the host program.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

The modules ``conntrack_log_invalid``, ``nf_log_backend`` and ``dynamic_debug_site`` and the host
program's ``enable`` command call the same functions; those see only this interface: check mode,
diff mode, warnings, finding a program, running an argument list under the C locale, and ``kernel``:
every file of the kernel they read or write, and the way into a network namespace. The real files are
the default; the unit tests give a :class:`Kernel` over a temporary tree.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack_stats import PROC_STATS, parse_proc_stats
from ansible_collections.netfilter.conntrack.plugins.module_utils._dynamic_debug import NO_DYNAMIC_DEBUG_MSG, find_control, write_control
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._netns import InNetns, identity_of_fd, open_netns
from ansible_collections.netfilter.conntrack.plugins.module_utils._nf_log import NF_LOG_PROC, FamilyLoggers, read_nf_log
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl import PROC_SYS, key_exists, read_key, write_key
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl_keys import KEY_COUNT

# Command output is parsed or quoted in messages: the same language whoever runs it.
C_LOCALE = {"LC_ALL": "C", "LANGUAGE": "C"}


THIS_NETNS = "/proc/self/ns/net"
SYS_MODULE = "/sys/module"


class Kernel:
    """What the apply, read and restore functions touch in the kernel, in the namespace the caller has entered.

    ``control_path`` None finds the dynamic-debug control file on this host (mounting debugfs when asked); a path
    is that file, and its absence means a kernel without dynamic debug.
    """

    def __init__(self, proc_sys: str = PROC_SYS, nf_log_path: str = NF_LOG_PROC, stats_path: str = PROC_STATS,
                 control_path: str | None = None, sys_module: str = SYS_MODULE) -> None:
        self.proc_sys = proc_sys
        self.nf_log_path = nf_log_path
        self.stats_path = stats_path
        self.control_path = control_path
        self.sys_module = sys_module

    def module_loaded(self, name: str) -> bool:
        """Whether kernel module name is loaded (or built in with parameters): /sys/module has it."""
        return os.path.isdir(os.path.join(self.sys_module, name))

    # ------------------------------------------------------------------ /proc/sys

    def sysctl_exists(self, key: str) -> bool:
        return key_exists(key, self.proc_sys)

    def sysctl_read(self, key: str) -> str:
        return read_key(key, self.proc_sys)

    def sysctl_value(self, key: str) -> str | None:
        """The value of key, or None where it does not exist (a feature not loaded, a key of another namespace)."""
        if not self.sysctl_exists(key):
            return None
        return self.sysctl_read(key)

    def sysctl_write(self, key: str, value: str) -> None:
        write_key(key, value, self.proc_sys)

    # ------------------------------------------------------------------ netfilter's tables

    def read_nf_log(self) -> dict[int, FamilyLoggers]:
        return read_nf_log(self.nf_log_path)

    def read_stats(self) -> dict | None:
        """The conntrack counters summed over CPUs, with the table's size as count; None without conntrack."""
        try:
            with open(self.stats_path, encoding="ascii") as handle:
                totals = parse_proc_stats(handle.read())
        except OSError:
            return None
        if totals is None:
            return None
        count = self.sysctl_value(KEY_COUNT)
        if count is not None:
            totals["count"] = int(count)
        return totals

    # ------------------------------------------------------------------ dynamic debug

    def find_control(self, mount_debugfs: t.Callable[[str], None] | None = None) -> tuple[str, str | None]:
        """(the control file, the debugfs mount point made for it or None); see _dynamic_debug.find_control."""
        if self.control_path is None:
            return find_control(mount_debugfs)
        if not os.path.exists(self.control_path):
            raise ConntrackModuleError(NO_DYNAMIC_DEBUG_MSG, reason="no-dynamic-debug")
        return self.control_path, None

    def write_control(self, path: str, query: str) -> None:
        write_control(path, query)

    # ------------------------------------------------------------------ network namespaces

    def open_namespace(self, spec: str | None) -> tuple[int | None, dict]:
        """Open a namespace; returns (fd, or None for this one, and its description with its identity)."""
        if spec in (None, ""):
            fd = os.open(THIS_NETNS, os.O_RDONLY | os.O_CLOEXEC)
            try:
                dev, ino = identity_of_fd(fd)
            finally:
                os.close(fd)
            return None, {"spec": None, "path": THIS_NETNS, "dev": dev, "ino": ino}
        fd, path = open_netns(spec)
        dev, ino = identity_of_fd(fd)
        return fd, {"spec": spec, "path": path, "dev": dev, "ino": ino}

    def entered(self, fd: int | None, path: str) -> t.ContextManager:
        """Run a block in the namespace an open_namespace fd stands for (None: this one), then come back."""
        return InNetns(fd, path)


class ModuleHost:
    """An AnsibleModule seen through the interface."""

    def __init__(self, module, kernel: Kernel | None = None) -> None:
        self._module = module
        self.kernel = kernel or Kernel()
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

    def __init__(self, check_mode: bool = False, diff: bool = False, kernel: Kernel | None = None) -> None:
        self.check_mode = check_mode
        self.diff = diff
        self.kernel = kernel or Kernel()
        self.warnings: list[str] = []

    def for_run(self, check_mode: bool = False, diff: bool = False) -> ProcessHost:
        """A host for one command's run (its own modes and warnings) over the same kernel and commands."""
        run = copy.copy(self)
        run.check_mode, run.diff, run.warnings = check_mode, diff, []
        return run

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


__all__ = ("C_LOCALE", "THIS_NETNS", "Completed", "Kernel", "ModuleHost", "ProcessHost", "run_argv")
