# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Write a file so that nothing planted in its directory is followed, and read one without blocking.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

Root writes reports and metrics into directories that other users may be able to write to. The file is written
under a fresh name created with ``O_EXCL | O_NOFOLLOW`` and renamed over the destination, every step relative to
one open handle of the directory: a symlink planted at the destination is replaced, never written through; a
symlink planted at a temporary name makes that name unusable instead of redirecting the write; a FIFO at the
destination is neither opened for writing nor waited on.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat

_TEMP_ATTEMPTS = 16


def _create_temporary(dir_fd: int, name: str, mode: int) -> tuple[int, str]:
    """A new file next to ``name``, created by us (O_EXCL; O_NOFOLLOW), under a name nobody can have planted."""
    for dummy in range(_TEMP_ATTEMPTS):
        temporary = f".{name[:200]}.{secrets.token_hex(8)}.tmp"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            return os.open(temporary, flags, mode, dir_fd=dir_fd), temporary
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no free temporary name next to {name}")


def write_file_atomically(directory: str, name: str, payload: bytes, mode: int) -> None:
    """Write ``payload`` to DIRECTORY/NAME through a temporary file in the same directory, synced, then renamed.

    The directory is opened once and every step is relative to it, so the file cannot end up elsewhere; the
    destination, whatever it is (a symlink, a FIFO, a regular file), is replaced by the rename. Raises OSError."""
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"{name!r} is not a file name")
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd, temporary = _create_temporary(dir_fd, name, mode)
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), mode)  # the umask may have taken bits the reader needs
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            try:
                os.unlink(temporary, dir_fd=dir_fd)
            except OSError:
                pass
            raise
    finally:
        os.close(dir_fd)


def read_regular_file(path: str) -> str | None:
    """The text at ``path`` when it is a regular file, else None: a symlink is not followed, and a FIFO or a
    device is neither waited on nor read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    with os.fdopen(fd, encoding="utf-8", errors="replace") as handle:
        return handle.read()


__all__ = ("read_regular_file", "write_file_atomically")
