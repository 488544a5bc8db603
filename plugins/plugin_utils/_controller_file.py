# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Files the debug role writes on the controller: the per-host reports and the fleet report.

Note that this plugin util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins!

Written in the action's own process: a ``copy`` task delegated to localhost would start a module process per file.
"""

from __future__ import annotations

import os


def write_controller_file(path: str, text: str, check_mode: bool = False) -> bool:
    """Write text to path on the controller (directory 0750, file 0640) unless it already holds it; returns
    whether it was written (in check mode: whether it would be, writing nothing)."""
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return False
    except OSError:
        pass
    if check_mode:
        return True
    os.makedirs(os.path.dirname(path), mode=0o750, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return True


__all__ = ("write_controller_file",)
