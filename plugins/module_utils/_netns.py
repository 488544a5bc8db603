# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Enter a network namespace from inside the module process.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

Every ``net.netfilter.*`` value, ``/proc/net/*`` file and ctnetlink table is per network
namespace. A module calls :func:`enter_netns` before it reads or writes anything; the switch
applies to the (single-threaded) module process and to every command it runs afterwards.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import re

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError

NETNS_RUN_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000

# A name under /run/netns, as `ip netns` accepts it; also what the window store's netns-NAME ids are made of.
NETNS_NAME_RE = re.compile(r"^[A-Za-z0-9_.@:+-]{1,255}$")


def netns_path(spec: str, run_dir: str = NETNS_RUN_DIR) -> str:
    """Resolve a namespace given as a name under /run/netns or as a path such as /proc/PID/ns/net."""
    if not isinstance(spec, str) or not spec:
        raise ConntrackModuleError("netns must be a non-empty name under /run/netns or an absolute path")
    if spec.startswith("/"):
        return spec
    if spec in (".", "..") or not NETNS_NAME_RE.match(spec):
        raise ConntrackModuleError(
            f"netns {spec!r} is not a valid namespace name: use letters, digits and ._@:+- only, or an absolute path"
        )
    return os.path.join(run_dir, spec)


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def open_netns(spec: str, run_dir: str = NETNS_RUN_DIR) -> tuple[int, str]:
    """Open the namespace handle of ``spec``; returns ``(fd, path)``. The caller closes the fd."""
    path = netns_path(spec, run_dir)
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC), path
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            hint = f" (no namespace named {spec!r}; `ip netns list` shows the names)" if not spec.startswith("/") else ""
            raise ConntrackModuleError(f"network namespace {path} does not exist{hint}", reason="vanished") from exc
        raise ConntrackModuleError(f"cannot open network namespace {path}: {exc.strerror}") from exc


def identity_of_fd(fd: int) -> tuple[int, int]:
    """Which namespace a handle refers to: (device, inode) as stat(2) of the nsfs file gives them.

    A name or a /proc/PID path can come to mean another namespace (deleted and re-created, or a
    reused PID); the identity cannot.
    """
    info = os.fstat(fd)
    return info.st_dev, info.st_ino


def _switch(fd: int, path: str) -> None:
    try:
        _setns(fd)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            raise ConntrackModuleError(f"{path} is not a network namespace") from exc
        if exc.errno == errno.EPERM:
            raise ConntrackModuleError(f"entering network namespace {path} needs CAP_SYS_ADMIN (run as root)") from exc
        raise ConntrackModuleError(f"cannot enter network namespace {path}: {exc.strerror}") from exc


def enter_netns(spec: str | None, run_dir: str = NETNS_RUN_DIR) -> str | None:
    """Move this process into the network namespace ``spec``; ``None`` stays where it is.

    Returns the path that was entered. Raises ConntrackModuleError with the reason when the
    namespace does not exist, is not a network namespace, or privileges are missing.
    """
    if spec is None:
        return None
    fd, path = open_netns(spec, run_dir)
    try:
        _switch(fd, path)
    finally:
        os.close(fd)
    return path


class InNetns:
    """Run a block inside the namespace behind an open handle, then return to the original namespace.

    Entering by the handle whose identity the caller has just checked leaves no window in which the
    name could come to mean another namespace.
    """

    def __init__(self, fd: int | None, path: str = "") -> None:
        self._fd = fd
        self._path = path
        self._home: int | None = None

    def __enter__(self) -> InNetns:
        if self._fd is not None:
            self._home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                _switch(self._fd, self._path)
            except BaseException:
                os.close(self._home)
                self._home = None
                raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._home is not None:
            try:
                _setns(self._home)
            finally:
                os.close(self._home)
                self._home = None


__all__ = ("NETNS_NAME_RE", "NETNS_RUN_DIR", "InNetns", "enter_netns", "identity_of_fd", "netns_path", "open_netns")
