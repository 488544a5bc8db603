# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The host program's cleanup: remove every file the collection left on the host, once no window is open.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

Revert restores the values; the program, the local facts file and the state directory stay so that
the next enable and collect are quick. Cleanup removes them. The kernel modules a window loaded
(nf_conntrack, nf_log_syslog, nfnetlink_log) are never unloaded: another user of the host may need
them, and unloading nf_conntrack would drop every tracked connection.
"""

from __future__ import annotations

import argparse
import os
import stat

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_store import SHARED_ID

KEPT = ["kernel modules (nf_conntrack, nf_log_syslog, nfnetlink_log): never unloaded, another user of the host may"
        " need them and unloading nf_conntrack drops every tracked connection"]


def remove_file(path: str, removed: list[str], dry_run: bool) -> None:
    """Remove path (a file or a symlink, never followed) when it exists."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        raise ConntrackModuleError(f"{path} is a directory, not the file the collection wrote: remove it by hand")
    if not dry_run:
        os.unlink(path)
    removed.append(path)


class CleanupCommands:
    """cleanup (mixed into Program)."""

    def cmd_cleanup(self, args: argparse.Namespace) -> dict:
        dry_run = bool(args.check)
        removed: list[str] = []
        if self.store.ensure(create=False):
            with self.store.lock(self.lock_timeout):
                open_windows = self.store.windows() + ([SHARED_ID] if self.store.exists(SHARED_ID) else [])
                if open_windows:
                    raise ConntrackModuleError(f"debug windows are open ({', '.join(open_windows)}): revert them first,"
                                               " cleanup removes nothing while a window may need it")
                self.scheduler.settle()
                for name in sorted(os.listdir(self.store.directory)):
                    remove_file(os.path.join(self.store.directory, name), removed, dry_run)
            if not dry_run:
                os.rmdir(self.store.directory)
            removed.append(self.store.directory)
        self.remove_capture_files(removed, dry_run)
        for path in args.path or []:
            remove_file(path, removed, dry_run)
        for program in args.program_path or []:
            remove_file(program, removed, dry_run)
            directory = os.path.dirname(program)
            if not dry_run and os.path.isdir(directory) and not os.listdir(directory):
                os.rmdir(directory)
                removed.append(directory)
        verb = "would remove" if dry_run else "removed"
        return {"changed": bool(removed), "removed": removed, "kept": KEPT, "check_mode": dry_run,
                "msg": f"{verb} {len(removed)} file(s) and directories; kept the kernel modules"}

    def remove_capture_files(self, removed: list[str], dry_run: bool) -> None:
        """The last capture's aggregate and pcapng files, which stay after their windows for collect to read."""
        directory = self.capture_directory
        try:
            info = os.lstat(directory)
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            raise ConntrackModuleError(f"{directory} is not the capture directory the collection made: remove it by hand")
        for name in sorted(os.listdir(directory)):
            remove_file(os.path.join(directory, name), removed, dry_run)
        if not dry_run:
            os.rmdir(directory)
        removed.append(directory)


__all__ = ("KEPT", "CleanupCommands")
