# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A ``_host.Kernel`` over a temporary tree, for the unit tests of the functions that reach the kernel through a host.

Plain files stand for the kernel's, and this class does, on each write, what the kernel would do that a plain file
does not: a /proc/sys write replaces the value, and a dynamic-debug query is parsed with kernel_parse_queries,
matched with site_matches and applied to the sites (lib/dynamic_debug.c's rules). Named network namespaces are
/proc/sys trees of their own, entered by switching the tree.
"""

from __future__ import annotations

import contextlib
import pathlib
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils import _dynamic_debug as dd
from ansible_collections.netfilter.conntrack.plugins.module_utils import _dynamic_debug_model as ddm
from ansible_collections.netfilter.conntrack.plugins.module_utils import _dynamic_debug_query as ddq
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import THIS_NETNS, Kernel, ProcessHost
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl import key_path


def write_sysctls(root: pathlib.Path, values: dict) -> None:
    for key, value in values.items():
        path = pathlib.Path(key_path(key, str(root)))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n", encoding="ascii")


class TreeKernel(Kernel):
    """The kernel's files under ``root``: ``proc_sys/``, ``nf_log``, ``stats`` and ``control``, each only when given
    (a missing control file is a kernel without dynamic debug, a missing stats file one without conntrack), and
    ``sys_module/`` with a directory for each of ``loaded``.

    ``netns_sysctls`` are the values a named namespace's tree starts with. ``refuse`` maps a sysctl key, or
    ``"control"``, to the error the kernel answers a write with. ``before_sysctl_write``, when set, is called with
    the key and value before each /proc/sys write: someone else acting at that moment.
    """

    def __init__(self, root: pathlib.Path, sysctls: dict, netns_sysctls: dict | None = None, nf_log: str | None = None,
                 stats: str | None = None, control: str | None = None, loaded: tuple = ()) -> None:
        host_tree = root / "proc_sys"
        write_sysctls(host_tree, sysctls)
        files = {"nf_log": nf_log, "stats": stats, "control": control}
        for name, text in files.items():
            if text is not None:
                (root / name).write_text(text, encoding="utf-8")
        for name in loaded:
            (root / "sys_module" / name).mkdir(parents=True)
        super().__init__(proc_sys=str(host_tree), nf_log_path=str(root / "nf_log"), stats_path=str(root / "stats"),
                         control_path=str(root / "control"), sys_module=str(root / "sys_module"))
        self.root = root
        self.netns_sysctls = netns_sysctls or {}
        self.trees = {THIS_NETNS: str(host_tree)}
        self.identities = {THIS_NETNS: 1}
        # The namespace the caller is in: /proc/self/ns/net names it, whichever was entered.
        self.current = THIS_NETNS
        self.refuse: dict[str, str] = {}
        # Named namespaces deleted since: opening them fails as _netns.open_netns does.
        self.gone: set[str] = set()
        self.sysctl_writes: list[tuple[str, str]] = []
        self.control_writes: list[str] = []
        self.before_sysctl_write: t.Callable[[str, str], None] | None = None

    # ------------------------------------------------------------------ the kernel's behaviour

    def sysctl_write(self, key: str, value: str) -> None:
        if self.before_sysctl_write is not None:
            self.before_sysctl_write(key, value)
        self.sysctl_writes.append((key, value))
        if key in self.refuse:
            raise ConntrackModuleError(self.refuse[key], key=key)
        # /proc/sys replaces the whole value; a plain file would keep the bytes past a shorter one.
        with open(key_path(key, self.proc_sys), "w", encoding="ascii"):
            pass
        super().sysctl_write(key, value)

    def write_control(self, path: str, query: str) -> None:
        assert path == self.control_path
        self.control_writes.append(query)
        if "control" in self.refuse:
            raise ConntrackModuleError(self.refuse["control"], query=query)
        sites = dd.read_control(path)
        for parsed, op, flags in ddq.kernel_parse_queries(query):
            if parsed is None:
                raise ConntrackModuleError(f"the kernel rejected the query {query!r} (EINVAL)", query=query)
            sites = [s._replace(flags=ddm.apply_flags(s.flags, op, flags)) if ddm.site_matches(parsed, s) else s
                     for s in sites]
        self.save_sites(sites)

    def open_namespace(self, spec: str | None) -> tuple[int | None, dict]:
        if spec in (None, ""):
            return None, {"spec": None, "path": THIS_NETNS, "dev": 1, "ino": self.identities[self.current]}
        path = f"/run/netns/{spec}"
        if spec in self.gone:
            raise ConntrackModuleError(f"network namespace {path} does not exist", reason="vanished")
        if path not in self.trees:
            tree = self.root / f"proc_sys-{spec}"
            write_sysctls(tree, self.netns_sysctls)
            self.trees[path] = str(tree)
            self.identities[path] = 1000 + len(self.identities)
        return None, {"spec": spec, "path": path, "dev": 1, "ino": self.identities[path]}

    @contextlib.contextmanager
    def entered(self, fd: int | None, path: str | None):
        before = self.proc_sys, self.current
        # A snapshot of release 0.2.0 records no path for the initial namespace.
        self.current = path or THIS_NETNS
        self.proc_sys = self.trees[self.current]
        try:
            yield
        finally:
            self.proc_sys, self.current = before

    # ------------------------------------------------------------------ what a test reads and changes by hand

    def tree(self, spec: str | None = None) -> str:
        """The /proc/sys tree of a namespace (None: the host's), made on first use."""
        if spec is None:
            return self.trees[THIS_NETNS]
        _fd, identity = self.open_namespace(spec)
        return self.trees[identity["path"]]

    def sysctl(self, key: str, value: str | None = None, spec: str | None = None) -> str:
        """Read a value of a namespace's tree, after setting it (someone else's write) when value is given."""
        path = pathlib.Path(key_path(key, self.tree(spec)))
        if value is not None:
            path.write_text(value + "\n", encoding="ascii")
        return path.read_text(encoding="ascii").strip()

    def save_sites(self, sites: list) -> None:
        with open(self.control_path, "w", encoding="utf-8") as handle:
            handle.write(ddm.CONTROL_HEADER + "\n" + "".join(s.control_line() + "\n" for s in sites))

    def site_flags(self) -> dict:
        return {(s.filename, s.lineno, s.format): s.flags for s in dd.read_control(self.control_path)}

    def set_site_flags(self, filename: str, lineno: int, flags: str, fmt: str | None = None) -> None:
        """Someone else changes a site by hand."""
        self.save_sites([s._replace(flags=flags) if (s.filename, s.lineno) == (filename, lineno) and fmt in (None, s.format)
                         else s for s in dd.read_control(self.control_path)])


class TreeHost(ProcessHost):
    """The host program's host over a TreeKernel: no command runs. modprobe fails for the modules named in
    ``absent`` and succeeds for the others; loading a module named in ``modules`` runs its function (which adds to
    the tree what the module would bring)."""

    def __init__(self, kernel: TreeKernel, modules: dict | None = None, absent: tuple = ()) -> None:
        super().__init__(kernel=kernel)
        self.modules = modules or {}
        self.absent = absent
        self.commands: list[list[str]] = []

    def which(self, name: str, opt_dirs: list[str]) -> str | None:
        return f"/sbin/{name}"

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        self.commands.append(argv)
        if argv[0] == "/sbin/modprobe" and argv[-1] in self.absent:
            return 1, "", f"modprobe: FATAL: Module {argv[-1]} not found"
        if argv[0] == "/sbin/modprobe" and "--dry-run" not in argv and argv[-1] in self.modules:
            self.modules[argv[-1]]()
        return 0, "", ""
