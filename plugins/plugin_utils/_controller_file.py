# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Files the debug role writes on the controller: the per-host reports and the fleet report.

Note that this plugin util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins!

Written in the action's own process: a ``copy`` task delegated to localhost would start a module process per file.
The controller often runs as root, and a report directory may be shared: nothing in it is followed (see
``_atomic_file``), and a host name becomes a file name that stays in the directory (:func:`report_path`).
"""

from __future__ import annotations

import os

from ansible_collections.netfilter.conntrack.plugins.module_utils._atomic_file import read_regular_file, write_file_atomically

# A name the kernel refuses (NAME_MAX is 255 bytes) would fail later with a less helpful error.
NAME_MAX = 255


def safe_file_name(name: str, suffix: str = "") -> str:
    """A file name for ``name`` (an inventory host name) that stays in its directory: ``%``, ``/``, ``\\``, NUL and
    other control characters, and a leading dot are percent-encoded (UTF-8 bytes, upper-case hex), so distinct
    names give distinct file names and ``..``, ``/abs/x`` or ``.hidden`` cannot leave or hide in the directory.

    Raises ValueError for an empty name or one whose file name would exceed NAME_MAX bytes."""
    if not name:
        raise ValueError("an empty name cannot be a file name")
    encoded = []
    for position, char in enumerate(name):
        if char in "%/\\" or ord(char) < 0x20 or ord(char) == 0x7F or (position == 0 and char == "."):
            encoded.append("".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass")))
        else:
            encoded.append(char)
    result = "".join(encoded) + suffix
    if len(result.encode("utf-8", "surrogatepass")) > NAME_MAX:
        raise ValueError(f"the file name for {name[:40]!r}... would be longer than {NAME_MAX} bytes")
    return result


def report_path(directory: str, name: str, suffix: str = ".json") -> str:
    """DIRECTORY/<safe_file_name(name)><suffix>, checked to be directly inside ``directory`` (absolute)."""
    base = os.path.abspath(directory)
    path = os.path.join(base, safe_file_name(name, suffix))
    if os.path.dirname(path) != base or os.path.basename(path) in ("", ".", ".."):
        raise ValueError(f"the report file for {name!r} would not be inside {base}")
    return path


def write_controller_file(path: str, text: str, check_mode: bool = False) -> bool:
    """Write text to path on the controller (directory 0750, file 0640) unless it already holds it; returns
    whether it was written (in check mode: whether it would be, writing nothing)."""
    if read_regular_file(path) == text:
        return False
    if check_mode:
        return True
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o750, exist_ok=True)
    write_file_atomically(directory, os.path.basename(path), text.encode("utf-8"), 0o640)
    return True


__all__ = ("NAME_MAX", "report_path", "safe_file_name", "write_controller_file")
