#!/usr/bin/env python
# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Memory of the automatic revert where systemd is not PID 1, by number of namespaces in one enable.

    bench/scheduler/run.py [--counts 10,150,500] [--baseline GIT_REV] [--baseline-counts 10,150]

Creates N network namespaces, runs the host program's enable for all of them in one run (a private state
directory, the initial namespace untouched), then sums the proportional set size (PSS, from
/proc/PID/smaps_rollup) of every process the automatic revert left running, reverts, and deletes the
namespaces. With --baseline, the program of that git revision (built the same way, from its module_utils) is
measured beside it at --baseline-counts, in the same run. Run as root, with a Python that has ansible-core
(building the program imports it), for example ~/.cache/netfilter-conntrack/venv-2.19/bin/python.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PREFIX = "nfct-bench-sched-"


def build(tree: str, dest: str) -> None:
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "from ansible_collections.netfilter.conntrack.plugins.plugin_utils._window_app import build_app\n"
            "open(sys.argv[2], 'wb').write(build_app())")
    subprocess.run([sys.executable, "-c", code, tree, dest], check=True)


def tree_of(revision: str | None, work: str) -> str:
    """A collections path holding netfilter.conntrack at revision (None: this work tree)."""
    root = os.path.join(work, revision or "current")
    collection = os.path.join(root, "ansible_collections", "netfilter", "conntrack")
    os.makedirs(os.path.dirname(collection), exist_ok=True)
    if revision is None:
        os.symlink(REPO, collection)
    else:
        os.makedirs(collection)
        archive = subprocess.run(["git", "-C", REPO, "archive", revision, "plugins"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", collection], input=archive.stdout, check=True)
    return root


def processes_of(state: str) -> list[int]:
    pids = []
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(cmdline, "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if f"--state-dir={state}".encode() in argv and b"wait-and-revert" in argv:
            pids.append(int(cmdline.split("/")[2]))
    return pids


def pss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def measure(program: str, count: int, work: str) -> dict:
    names = [f"{PREFIX}{n}" for n in range(count)]
    # The state directory lives on tmpfs, as /run/netfilter-conntrack does on a host.
    state = tempfile.mkdtemp(prefix="nfct-bench-sched-state-", dir="/run")
    os.rmdir(state)
    for name in names:
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        started = time.monotonic()
        command = [sys.executable, program, f"--state-dir={state}", "snapshot", "--duration=600", "--log-invalid=tcp"]
        proc = subprocess.run(command + [f"--netns={name}" for name in names], capture_output=True, text=True,
                              check=False)
        answer = json.loads(proc.stdout)
        assert proc.returncode == 0, answer
        elapsed = time.monotonic() - started
        time.sleep(2)
        pids = processes_of(state)
        total = sum(pss_kib(pid) for pid in pids)
        return {"namespaces": count, "processes": len(pids), "pss_mib": round(total / 1024, 1),
                "enable_seconds": round(elapsed, 2)}
    finally:
        subprocess.run([sys.executable, program, f"--state-dir={state}", "revert", "--all"], capture_output=True,
                       check=False)
        for pid in processes_of(state):
            os.kill(pid, 9)
        for name in names:
            subprocess.run(["ip", "netns", "del", name], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--counts", default="10,150,500")
    parser.add_argument("--baseline", help="git revision of the program to compare with")
    parser.add_argument("--baseline-counts", default="10,150")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nfct-bench-sched.") as work:
        rows = []
        runs = [(None, args.counts)] + ([(args.baseline, args.baseline_counts)] if args.baseline else [])
        for revision, counts in runs:
            program = os.path.join(work, f"{revision or 'current'}.pyz")
            build(tree_of(revision, work), program)
            for count in (int(value) for value in counts.split(",")):
                row = dict(measure(program, count, work), program=revision or "this tree")
                rows.append(row)
                print(json.dumps(row), flush=True)
        with open("/proc/loadavg", encoding="ascii") as handle:
            load = handle.read().split()[:3]
        print("\n| program | namespaces | revert processes | PSS (MiB) | enable (s) |")
        print("|:--|--:|--:|--:|--:|")
        for row in rows:
            print(f"| {row['program']} | {row['namespaces']} | {row['processes']} | {row['pss_mib']} |"
                  f" {row['enable_seconds']} |")
        print(f"\nload average {' '.join(load)}")


if __name__ == "__main__":
    main()
