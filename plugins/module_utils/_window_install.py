# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Installing the host program conntrack-debug-window, and what root checks before it runs one.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!
"""

from __future__ import annotations

import hashlib
import os
import stat

from ansible_collections.netfilter.conntrack.plugins.module_utils._window_status import write_file


def source_sha256(path: str) -> str:
    """The SHA-256 that names the version of the program at path."""
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def unsafe_directory(directory: str) -> str | None:
    """Why root must not install into directory (or run a program from it), or None.

    Each existing component must be a directory owned by root (this user) and not writable by group or others:
    anyone who can write one of them can replace what root runs. A sticky directory owned by root (/tmp) is
    accepted: others cannot rename or remove the entries they do not own there.
    """
    path = os.path.abspath(directory)
    parts = [path]
    while parts[-1] != os.path.dirname(parts[-1]):
        parts.append(os.path.dirname(parts[-1]))
    for component in reversed(parts):
        try:
            info = os.lstat(component)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(info.st_mode):
            return f"{component} is not a directory (a symlink or a file)"
        if info.st_uid not in (0, os.geteuid()):
            return f"{component} is owned by uid {info.st_uid}"
        writable = stat.S_IMODE(info.st_mode) & 0o022
        if writable and not (info.st_mode & stat.S_ISVTX and component != path):
            return f"{component} is writable by group or others (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def install(program: str, dest: str) -> tuple[str, dict | None]:
    """Copy the running program to dest; returns (dest, None), or (program, the failed answer)."""
    unsafe = unsafe_directory(os.path.dirname(dest))
    if unsafe:
        return program, {"changed": False, "failed": True, "install_failed": True, "unsafe_path": True,
                         "msg": f"refusing to install {dest} as root: {unsafe}; use a directory that only root can"
                                " write (conntrack_debug_program_dir)"}
    try:
        with open(program, "rb") as handle:
            write_file(dest, handle.read(), 0o700)
    except OSError as exc:
        return program, {"changed": False, "failed": True, "install_failed": True,
                         "msg": f"cannot install {dest}: {exc.strerror or exc}"}
    return dest, None


__all__ = ("install", "source_sha256", "unsafe_directory")
