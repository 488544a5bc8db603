# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Print, as one JSON object, every netfilter value of a network namespace (bit for bit).

Usage: python3 nfct_values.py NETNS_NAME_OR_PATH|- [PATH...]
Prints {"values": {...}, "exists": {PATH: bool}}: every file under /proc/sys/net/netfilter plus
/proc/net/netfilter/nf_log, read raw (counters that move by themselves are left out), and whether
each PATH exists (without following a final symlink). `-` reads the namespace this process is in.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys

MOVING = {"nf_conntrack_count"}


def values() -> dict:
    found = {}
    for root, _dirs, files in os.walk("/proc/sys/net/netfilter"):
        for name in sorted(files):
            if name in MOVING:
                continue
            path = os.path.join(root, name)
            try:
                with open(path, "rb") as handle:
                    found[path] = handle.read().decode("latin-1")
            except OSError as exc:
                found[path] = f"<{exc.strerror}>"
    with open("/proc/net/netfilter/nf_log", "rb") as handle:
        found["/proc/net/netfilter/nf_log"] = handle.read().decode("latin-1")
    return found


def main() -> None:
    spec, paths = sys.argv[1], sys.argv[2:]
    exists = {path: os.path.lexists(path) for path in paths}
    if spec != "-":
        path = spec if spec.startswith("/") else os.path.join("/run/netns", spec)
        fd = os.open(path, os.O_RDONLY)
        if ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) != 0:
            sys.exit(f"setns {path}: {os.strerror(ctypes.get_errno())}")
        os.close(fd)
    print(json.dumps({"values": values(), "exists": exists}, sort_keys=True))


if __name__ == "__main__":
    main()
