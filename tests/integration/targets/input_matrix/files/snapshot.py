# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Print every netfilter value of the host and of one network namespace, plus file digests, as JSON.

Usage: python3 snapshot.py save|compare BASELINE NETNS_PATH [FILE...]. `save` writes the snapshot to
BASELINE; `compare` prints what differs from it and exits 1 when anything does. Counters that
move by themselves are left out.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import sys

MOVING = {"nf_conntrack_count"}


def netfilter_values() -> dict:
    values = {}
    for top in ("/proc/sys/net/netfilter",):
        for root, _dirs, files in os.walk(top):
            for name in sorted(files):
                if name in MOVING:
                    continue
                path = os.path.join(root, name)
                try:
                    with open(path, encoding="ascii") as handle:
                        values[path] = handle.read()
                except OSError as exc:
                    values[path] = f"<{exc.strerror}>"
    with open("/proc/net/netfilter/nf_log", encoding="ascii") as handle:
        values["/proc/net/netfilter/nf_log"] = handle.read()
    return values


def digest(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError as exc:
        return f"<{exc.strerror}>"


def take(netns: str, files: list) -> dict:
    snapshot = {"files": {path: digest(path) for path in files}, "host": netfilter_values()}
    fd = os.open(netns, os.O_RDONLY)
    if ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) != 0:
        sys.exit(f"setns {netns}: {os.strerror(ctypes.get_errno())}")
    snapshot["netns"] = netfilter_values()
    return snapshot


def differences(baseline: dict, current: dict) -> list:
    changed = []
    for part in ("files", "host", "netns"):
        for key in sorted(set(baseline[part]) | set(current[part])):
            if baseline[part].get(key) != current[part].get(key):
                changed.append(f"{part} {key}: {baseline[part].get(key)!r} -> {current[part].get(key)!r}")
    return changed


def main() -> None:
    mode, baseline_path, netns, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    snapshot = take(netns, files)
    if mode == "save":
        with open(baseline_path, "w", encoding="utf-8") as handle:
            json.dump(snapshot, handle)
        return
    with open(baseline_path, encoding="utf-8") as handle:
        changed = differences(json.load(handle), snapshot)
    print("\n".join(changed) or "unchanged")
    sys.exit(1 if changed else 0)


if __name__ == "__main__":
    main()
