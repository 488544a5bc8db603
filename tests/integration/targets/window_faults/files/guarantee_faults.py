# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The revert guarantee, second round, reproduced on this machine's kernel in network namespaces.

Run by window_faults.py (same arguments, same helpers): check mode that changes nothing, windows that end
each at its own deadline, a deadline the wall clock does not move, what root runs, and one watcher pair
whatever the number of namespaces.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time

from window_faults import ALL_NETNS, PROGRAM, WORK, action, enable, ns_add, ns_del, ns_get, program, watchers, wait_for

HOST_LOG_INVALID = "/proc/sys/net/netfilter/nf_conntrack_log_invalid"
HOST_NF_LOG_IPV4 = "/proc/sys/net/netfilter/nf_log/2"


def read(path):
    with open(path, encoding="ascii") as handle:
        return handle.read().strip()


def write(path, value):
    with open(path, "w", encoding="ascii") as handle:
        handle.write(value)


def snapshots(state):
    return sorted(os.path.basename(path) for path in glob.glob(os.path.join(state, "*.json")))


def kill_watchers(state):
    for pid in watchers(state):
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not watchers(state), 10, "the watchers to die")


# ----------------------------------------------------------------------------- check mode changes nothing

def case_check_mode_changes_nothing(state):
    """collect/status/revert --check with one window overdue (its watchers killed) and another open: nothing is
    reverted, no snapshot removed; the overdue window is named loudly; revert --check names only its own window."""
    overdue, other = ns_add("check-overdue"), ns_add("check-other")
    env = {"CONNTRACK_DEBUG_OVERDUE_GRACE": "1"}
    try:
        enable(state, other, 300, env=env)
        enable(state, overdue, 4, env=env)
        kill_watchers(state)
        time.sleep(7)
        before = snapshots(state)
        rc, collected = program(state, "collect", "--check", f"--netns={overdue}", env=env)
        assert rc == 0, collected
        assert any("OVERDUE" in warning for warning in collected.get("warnings", [])), collected
        rc, status = program(state, "status", "--check", "--all", env=env)
        assert rc == 0 and any(f"netns-{overdue}: OVERDUE" in problem for problem in status["problems"]), status
        assert "overdue" not in status or not status["overdue"], status
        rc, would = program(state, "revert", "--check", f"--netns={other}", env=env)
        assert rc == 0 and list(would["namespaces"]) == [f"netns-{other}"], would
        assert "would revert" in would["msg"], would
        assert ns_get(overdue) == "6" and ns_get(other) == "6", "check mode reverted a window"
        assert snapshots(state) == before, (before, snapshots(state))
        rc, status = program(state, "status", "--all", env=env)
        assert rc == 0 and f"netns-{overdue}" in status["overdue"] and ns_get(overdue) == "0", status
    finally:
        program(state, "revert", "--all")
        ns_del(overdue)
        ns_del(other)


# ----------------------------------------------------------------------------- windows that do not end each other

def case_host_and_namespace_windows_end_each_at_its_deadline(state):
    """A host window of 6 s and a namespace window of 300 s (with all_netns): the second enable moves no deadline of
    the first, reverting the namespace leaves the host's window on, and the host's ends at its own deadline."""
    saved = {path: read(path) for path in (HOST_LOG_INVALID, HOST_NF_LOG_IPV4, ALL_NETNS)}
    ns = ns_add("host-and-ns")
    try:
        rc, host = program(state, "enable", "--duration=6", "--log-invalid=udp", "--family=ipv4", "--backend=auto")
        assert rc == 0 and list(host["namespaces"]) == ["init"], host
        rc, child = program(state, "enable", f"--netns={ns}", "--duration=300", "--log-invalid=tcp",
                            "--family=ipv4", "--backend=auto", "--all-netns=on")
        assert rc == 0 and list(child["namespaces"]) == [f"netns-{ns}"], child
        rc, status = program(state, "status", "--all")
        assert rc == 0 and status["namespaces"]["init"]["remaining_seconds"] <= 6, "the host's deadline moved"
        assert status["shared"]["holders"] == [f"netns-{ns}"], status
        rc, reverted = program(state, "revert", f"--netns={ns}")
        assert rc == 0 and ns_get(ns) == "0", reverted
        assert read(HOST_LOG_INVALID) == "17", "reverting the namespace ended the host's window"
        assert read(ALL_NETNS) == saved[ALL_NETNS], "nf_log_all_netns outlived the only window that held it"
        wait_for(lambda: read(HOST_LOG_INVALID) == saved[HOST_LOG_INVALID], 20, "the host window's own deadline")
        wait_for(lambda: not snapshots(state), 10, "the host window's snapshot to go")
    finally:
        program(state, "revert", "--all")
        for path, value in saved.items():
            write(path, value)
        ns_del(ns)


def case_namespace_window_outlives_the_host_window(state):
    """The other order: the host's short window ends at its deadline while the namespace's window stays on with the
    shared nf_log_all_netns it holds."""
    saved = {path: read(path) for path in (HOST_LOG_INVALID, HOST_NF_LOG_IPV4, ALL_NETNS)}
    ns = ns_add("ns-outlives")
    try:
        enable(state, ns, 300, extra=("--all-netns=on",))
        write(ALL_NETNS, "1")
        rc, host = program(state, "enable", "--duration=5", "--log-invalid=udp", "--family=ipv4", "--backend=auto")
        assert rc == 0, host
        wait_for(lambda: read(HOST_LOG_INVALID) == saved[HOST_LOG_INVALID], 20, "the host window's deadline")
        assert ns_get(ns) == "6" and read(ALL_NETNS) == "1", "the host window took the namespace's window with it"
        rc, reverted = program(state, "revert", f"--netns={ns}")
        assert rc == 0 and read(ALL_NETNS) == saved[ALL_NETNS], reverted
    finally:
        program(state, "revert", "--all")
        for path, value in saved.items():
            write(path, value)
        ns_del(ns)


def case_parallel_enables_leave_nothing_behind(state):
    """Two enables at once sharing nf_log_all_netns, one reverted, a third enable, then the rest reverted: every
    enable succeeds, and after the last revert no snapshot, no shared record and no watcher is left."""
    saved = read(ALL_NETNS)
    names = [ns_add(f"par-{n}") for n in "abc"]
    try:
        procs = [subprocess.Popen([sys.executable, PROGRAM, f"--state-dir={state}", "enable", f"--netns={ns}",
                                   "--duration=300", "--log-invalid=tcp", "--family=ipv4", "--backend=auto",
                                   "--all-netns=on"], stdout=subprocess.PIPE, text=True) for ns in names[:2]]
        for proc in procs:
            out, _err = proc.communicate(timeout=120)
            assert proc.returncode == 0, out
        rc, reverted = program(state, "revert", f"--netns={names[0]}")
        assert rc == 0 and read(ALL_NETNS) == "1", reverted
        rc, third = program(state, "enable", f"--netns={names[2]}", "--duration=300", "--log-invalid=tcp",
                            "--family=ipv4", "--backend=auto", "--all-netns=on")
        assert rc == 0, third
        for ns in names[1:]:
            rc, reverted = program(state, "revert", f"--netns={ns}")
            assert rc == 0, reverted
        assert [ns_get(ns) for ns in names] == ["0", "0", "0"] and read(ALL_NETNS) == saved
        wait_for(lambda: not watchers(state) and not os.path.exists(state), 10, "no watcher and no state left")
    finally:
        program(state, "revert", "--all")
        write(ALL_NETNS, saved)
        for ns in names:
            ns_del(ns)


# ----------------------------------------------------------------------------- deadlines

def libfaketime():
    found = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    assert found, "libfaketime is not installed (Debian package faketime)"
    return found[0]


def case_wall_clock_step_does_not_move_the_deadline(state):
    """The wall clock one hour behind (NTP at boot, a resumed VM) or ahead: status still says the 6 s window has at most
    6 s left, and the sweep past the deadline reverts it. (libfaketime moves the wall clock of one process; its
    clock_nanosleep breaks under an offset, so the watcher's sleeping loop is not run under it.)"""
    ns = ns_add("clock")
    try:
        rc, snap = program(state, "enable", f"--netns={ns}", "--duration=6", "--log-invalid=tcp", "--family=ipv4",
                           "--backend=auto", "--no-schedule")
        assert rc == 0, snap
        for offset in ("-3600", "+3600"):
            fake = {"LD_PRELOAD": libfaketime(), "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
            rc, status = program(state, "status", "--check", f"--netns={ns}", env=fake)
            remaining = status["namespaces"][f"netns-{ns}"]["remaining_seconds"]
            assert rc == 0 and remaining <= 6, f"a wall clock {offset} s off left {remaining} s"
        time.sleep(7)
        behind = {"LD_PRELOAD": libfaketime(), "FAKETIME": "-3600", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
        rc, swept = program(state, "sweep", env=behind)
        assert rc == 0 and ns_get(ns) == "0" and not snapshots(state), ("not reverted at its deadline", swept)
    finally:
        program(state, "revert", "--all")
        ns_del(ns)


def case_partner_restarts_a_killed_watcher(state):
    """Where systemd is not PID 1 the watcher has a partner: SIGKILL of the watcher alone is repaired by the partner,
    and the window still ends at its deadline."""
    ns = ns_add("partner")
    try:
        enable(state, ns, 12)
        with open(os.path.join(state, "watcher.pid"), encoding="ascii") as handle:
            first = int(handle.read())
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: len(watchers(state)) == 2 and first not in watchers(state), 15, "the partner to restart it")
        rc, status = program(state, "status", f"--netns={ns}")
        assert rc == 0 and "problems" not in status, status
        wait_for(lambda: ns_get(ns) == "0", 30, "the revert at the deadline")
    finally:
        program(state, "revert", "--all")
        ns_del(ns)


def case_one_watcher_pair_for_many_namespaces(state):
    """One enable of 40 namespaces starts two watcher processes, not one per namespace."""
    names = [ns_add(f"many-{n}") for n in range(40)]
    try:
        rc, snap = program(state, "enable", "--duration=300", "--log-invalid=tcp", "--family=ipv4", "--backend=auto",
                           *[f"--netns={ns}" for ns in names])
        assert rc == 0 and len(snap["namespaces"]) == 40, snap
        assert len(watchers(state)) == 2, watchers(state)
        rc, reverted = program(state, "revert", "--all")
        assert rc == 0, reverted
        wait_for(lambda: not watchers(state), 10, "the watchers to exit")
    finally:
        for ns in names:
            ns_del(ns)


# ----------------------------------------------------------------------------- what root runs

PLANTED = """import json, sys
open(sys.argv[0] + ".ran", "w").close()
expected = [word.split("=", 1)[1] for word in sys.argv if word.startswith("--expect-sha256=")]
print(json.dumps({"changed": False, "program_name": "conntrack-debug-window", "program_version": expected[0],
                  "namespaces": {}}))
"""


def plant(directory, owner):
    os.makedirs(directory)
    os.chown(directory, owner, owner)
    planted = os.path.join(directory, "conntrack-debug-window.pyz")
    with open(planted, "w", encoding="ascii") as handle:
        handle.write(PLANTED)
    os.chown(planted, owner, owner)
    return planted


def case_planted_program_is_not_run(state):
    """A program planted in a program_dir another user owns (or can write) is never run as root by enable or
    revert: both refuse and name the directory."""
    ns = ns_add("planted")
    parent = os.path.join(WORK, "planted-parent")
    try:
        os.makedirs(parent)
        os.chmod(parent, 0o755)
        owned = plant(os.path.join(parent, "user-owned"), 65534)
        writable = plant(os.path.join(parent, "world-writable"), 0)
        os.chmod(os.path.dirname(writable), 0o777)
        for planted in (owned, writable):
            for args in ({"duration": 300, "netns": [ns], "protocol": "tcp"}, {"state": "reverted", "netns": [ns]}):
                result = action(state, dict(args, program_dir=os.path.dirname(planted)))
                assert result.get("failed") and "refusing to run" in result["msg"], result
                assert os.path.dirname(planted) in result["msg"], result
                assert not os.path.exists(planted + ".ran"), f"{planted} was run as root"
        assert ns_get(ns) == "0" and not snapshots(state)
    finally:
        ns_del(ns)


# ----------------------------------------------------------------------------- leave nothing behind, on request

def case_cleanup_leaves_no_file_of_the_collection(state):
    """enable, collect (the local facts file), revert, cleanup through the action: the program, its directory, the
    facts file, the state directory and the capture's files are gone; while a window is open cleanup refuses and
    removes nothing."""
    ns = ns_add("cleanup")
    program_dir = os.path.join(WORK, "cleanup-libexec", "netfilter-conntrack")
    facts = os.path.join(WORK, "cleanup-facts.d", "netfilter_conntrack.fact")
    try:
        result = action(state, {"duration": 300, "netns": [ns], "protocol": "tcp", "program_dir": program_dir})
        assert not result.get("failed") and result["program"]["installed"], result
        rc, collected = program(state, "collect", f"--netns={ns}", f"--facts-dest={facts}")
        assert rc == 0 and oct(os.stat(facts).st_mode & 0o777) == "0o600", collected
        refused = action(state, {"state": "absent", "facts_path": facts, "program_dir": program_dir})
        assert refused.get("failed") and "revert them first" in refused["msg"], refused
        assert os.path.exists(facts) and os.listdir(program_dir), "cleanup removed something while a window was open"
        result = action(state, {"state": "reverted", "netns": [ns], "program_dir": program_dir})
        assert not result.get("failed") and ns_get(ns) == "0", result
        captured = state + "-capture"  # the module's default capture: its files stay after revert, for collect
        assert os.listdir(captured), "the window's capture left no file to clean up"
        cleaned = action(state, {"state": "absent", "facts_path": facts, "program_dir": program_dir})
        assert not cleaned.get("failed") and cleaned["changed"], cleaned
        left = [path for path in (program_dir, facts, state, captured) if os.path.exists(path)]
        assert left == [], f"left on the host: {left}"
        again = action(state, {"state": "absent", "facts_path": facts, "program_dir": program_dir})
        assert not again.get("failed") and not again["changed"], again
    finally:
        program(state, "revert", "--all")
        ns_del(ns)


CASES = {name[5:]: function for name, function in sorted(globals().items()) if name.startswith("case_")}
