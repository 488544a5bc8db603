# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Read and write kernel parameters under /proc/sys with errors an operator can act on.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

The values live in the network namespace of the calling process: enter the namespace
(see ``_netns``) before calling these functions.
"""

from __future__ import annotations

import errno
import os
import re

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError

PROC_SYS = "/proc/sys"

_KEY_RE = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_-]+)+$")


def key_path(key: str, root: str = PROC_SYS) -> str:
    """Map a dotted sysctl name such as ``net.netfilter.nf_log.2`` to its /proc/sys file."""
    if not _KEY_RE.match(key):
        raise ConntrackModuleError(f"{key!r} is not a valid sysctl name")
    return os.path.join(root, *key.split("."))


def describe_os_error(key: str, exc: OSError, value: str | None = None) -> str:
    """Turn the errno of a /proc/sys access into a sentence that names the key and the cause."""
    if exc.errno == errno.EINVAL:
        return f"the kernel rejected {value!r} for {key} (EINVAL)"
    if exc.errno == errno.ENOENT:
        if value is not None:
            return f"the kernel refused {value!r} for {key}: no such logger or value is available (ENOENT)"
        return f"{key} does not exist in this network namespace: the kernel feature is not available or its module is not loaded (ENOENT)"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"cannot write {key}: /proc/sys is read-only here ({errno.errorcode.get(exc.errno, exc.errno)}),"
            " for example in an unprivileged container; run as root in the host or a privileged container"
        )
    return f"cannot access {key}: {exc.strerror or exc}"


def key_exists(key: str, root: str = PROC_SYS) -> bool:
    return os.path.exists(key_path(key, root))


def read_key(key: str, root: str = PROC_SYS) -> str:
    """Return the value of ``key`` as the kernel prints it, without the trailing newline."""
    try:
        with open(key_path(key, root), encoding="ascii") as handle:
            return handle.read().strip()
    except OSError as exc:
        raise ConntrackModuleError(describe_os_error(key, exc), key=key) from exc


def write_key(key: str, value: str, root: str = PROC_SYS) -> None:
    """Write ``value`` to ``key`` in one write(2) so the kernel's errno reaches the caller.

    The value is validated here as well as by the callers because the kernel accepts some
    malformed writes silently: a newline truncates the value and an empty write is ignored.
    """
    if value == "" or any(ch in value for ch in "\n\r\0"):
        raise ConntrackModuleError(f"refusing to write {value!r} to {key}: empty or multi-line value")
    data = value.encode("ascii")
    try:
        fd = os.open(key_path(key, root), os.O_WRONLY)
    except OSError as exc:
        raise ConntrackModuleError(describe_os_error(key, exc), key=key) from exc
    try:
        os.write(fd, data)
    except OSError as exc:
        raise ConntrackModuleError(describe_os_error(key, exc, value), key=key) from exc
    finally:
        os.close(fd)


__all__ = ("PROC_SYS", "key_path", "describe_os_error", "key_exists", "read_key", "write_key")
