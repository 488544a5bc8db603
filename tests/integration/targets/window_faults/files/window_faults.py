# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Faults of the automatic revert (issue 15), reproduced on this machine's kernel in network namespaces.

    window_faults.py WORKDIR [CASE ...]

WORKDIR holds conntrack-debug-window.pyz (built by runme.sh). Every case uses a state directory of its
own, and creates and deletes its own namespaces; the initial namespace's nf_log_all_netns is put back.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import subprocess
import sys
import time

WORK = sys.argv[1]
PROGRAM = os.path.join(WORK, "conntrack-debug-window.pyz")
LOG_INVALID = "net.netfilter.nf_conntrack_log_invalid"
ALL_NETNS = "/proc/sys/net/netfilter/nf_log_all_netns"
PREFIX = "nfct-wf-"


def run(argv, env=None, check=True):
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv} exited {proc.returncode}: {proc.stdout}{proc.stderr}")
    return proc


def program(state, *argv, env=None):
    """Run the program; returns (exit status, JSON answer)."""
    environ = dict(os.environ, **(env or {}))
    proc = run([sys.executable, PROGRAM, f"--state-dir={state}"] + list(argv), env=environ, check=False)
    try:
        return proc.returncode, json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"{argv}: no JSON answer (exit {proc.returncode}): {proc.stdout}{proc.stderr}") from None


def ns_add(name):
    run(["ip", "netns", "add", PREFIX + name])
    return PREFIX + name


def ns_del(name):
    run(["ip", "netns", "del", name], check=False)


def in_ns(ns):
    return ["nsenter", f"--net={ns}"] if ns.startswith("/") else ["ip", "netns", "exec", ns]


def ns_get(ns, key=LOG_INVALID):
    return run(in_ns(ns) + ["sysctl", "-n", key]).stdout.strip()


def ns_set(ns, value, key=LOG_INVALID):
    run(in_ns(ns) + ["sysctl", "-qw", f"{key}={value}"])


def watchers(state):
    """Pids of wait-and-revert processes of this state directory (the watcher and its partner)."""
    pids = []
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(cmdline, "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if b"wait-and-revert" in argv and f"--state-dir={state}".encode() in argv:
            pids.append(int(cmdline.split("/")[2]))
    return pids


def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def enable(state, ns, duration, protocol="tcp", extra=(), env=None):
    """snapshot + apply (what the modules do) + confirm, as the action runs them; returns the snapshot answer."""
    rc, snap = program(state, "snapshot", f"--netns={ns}", f"--duration={duration}", f"--log-invalid={protocol}",
                       *extra, env=env)
    assert rc == 0, snap
    ns_set(ns, {"tcp": 6, "udp": 17}[protocol])
    ids = [f"--id={ident}" for ident in snap["namespaces"]]
    rc, confirm = program(state, "confirm", f"--window={snap['window']}", *ids, env=env)
    assert rc == 0, confirm
    return snap


# ----------------------------------------------------------------------------- the namespace a snapshot belongs to

def case_recreated_namespace(state):
    """Deleted and re-created under the same name: neither revert nor a new enable uses the old values."""
    ns = ns_add("recreated")
    try:
        enable(state, ns, 300)
        ns_del(ns)
        ns_add("recreated")
        ns_set(ns, 6)   # the new namespace happens to hold the value enable applied to the old one
        rc, again = program(state, "snapshot", f"--netns={ns}", "--duration=300", "--log-invalid=tcp", "--no-schedule")
        assert rc == 0, again
        assert "netns-" + ns in again.get("dropped", {}), again
        assert again["namespaces"]["netns-" + ns]["original"][LOG_INVALID] == "6", again
        rc, reverted = program(state, "revert", f"--netns={ns}")
        assert rc == 0 and ns_get(ns) == "6", (reverted, ns_get(ns))
        # The automatic revert at the deadline: the window's namespace is gone by then.
        enable(state, ns, 3)
        ns_del(ns)
        ns_add("recreated")
        ns_set(ns, 6)
        wait_for(lambda: not glob.glob(os.path.join(state, "*.json")), 30, "the watcher to drop the snapshot")
        assert ns_get(ns) == "6", "the automatic revert wrote the deleted namespace's values into its successor"
    finally:
        ns_del(ns)


def case_path_now_means_another_namespace(state):
    """A path whose namespace changed (PID reuse, a re-bound handle): revert refuses to write through it."""
    first, second = ns_add("path-a"), ns_add("path-b")
    handle = os.path.join(WORK, "handle")
    open(handle, "w").close()
    try:
        run(["mount", "--bind", f"/run/netns/{first}", handle])
        enable(state, handle, 300)
        run(["umount", handle])
        run(["mount", "--bind", f"/run/netns/{second}", handle])
        ns_set(second, 6)
        rc, reverted = program(state, "revert", f"--netns={handle}")
        assert rc == 0, reverted
        one = next(iter(reverted["namespaces"].values()))
        assert one.get("dropped") and "another network namespace" in one["msg"], reverted
        assert ns_get(second) == "6", "revert wrote into an unrelated namespace"
    finally:
        run(["umount", handle], check=False)
        ns_del(first)
        ns_del(second)


def case_same_namespace_two_spellings(state):
    """One namespace by name and by path with other settings: refused, not a second snapshot."""
    ns = ns_add("spelling")
    try:
        enable(state, ns, 300)
        rc, refused = program(state, "snapshot", f"--netns=/run/netns/{ns}", "--duration=300", "--log-invalid=udp",
                              "--no-schedule")
        assert rc == 1 and "same way" in refused["msg"], refused
        assert ns_get(ns) == "6"
        rc, reverted = program(state, "revert", "--all")
        assert rc == 0 and ns_get(ns) == "0", reverted
    finally:
        ns_del(ns)


def case_vanished_namespace(state):
    """A snapshot whose namespace vanished does not make status --all and revert --all fail."""
    gone, kept = ns_add("vanished"), ns_add("kept")
    try:
        enable(state, gone, 300)
        enable(state, kept, 300)
        ns_del(gone)
        rc, status = program(state, "status", "--all")
        assert rc == 0, status
        assert any("no longer exists" in problem and "discard" in problem for problem in status["problems"]), status
        rc, reverted = program(state, "revert", "--all")
        assert rc == 0, reverted
        assert reverted["namespaces"]["netns-" + gone]["dropped"], reverted
        assert ns_get(kept) == "0" and not glob.glob(os.path.join(state, "*.json"))
    finally:
        ns_del(gone)
        ns_del(kept)


# ----------------------------------------------------------------------------- the automatic revert must not die silently

def case_dead_watcher(state):
    """A SIGKILLed watcher is reported, re-armed by the next enable, and a later status reverts an overdue window."""
    ns = ns_add("watcher")
    env = {"CONNTRACK_DEBUG_OVERDUE_GRACE": "1"}
    try:
        enable(state, ns, 300, env=env)
        for pid in watchers(state):
            os.kill(pid, 9)
        wait_for(lambda: not watchers(state), 10, "the watcher to die")
        rc, status = program(state, "status", f"--netns={ns}", env=env)
        assert rc == 0 and any("NOT armed" in problem for problem in status["problems"]), status
        assert status["namespaces"]["netns-" + ns]["scheduler"]["alive"] is False, status
        snap = enable(state, ns, 300, env=env)
        armed = watchers(state)
        assert len(armed) == 2 and snap["namespaces"]["netns-" + ns]["scheduler"]["pid"] in armed, "enable did not re-arm"
        enable(state, ns, 3, env=env)   # the deadline stays the later one: open a short window anew
        program(state, "revert", "--all", env=env)
        enable(state, ns, 3, env=env)
        for pid in watchers(state):
            os.kill(pid, 9)
        time.sleep(5)
        assert ns_get(ns) == "6", "nothing reverted: the watcher is dead"
        rc, status = program(state, "status", "--all", env=env)
        assert rc == 0 and "netns-" + ns in status["overdue"], status
        assert ns_get(ns) == "0", "status did not revert the overdue window"
    finally:
        for pid in watchers(state):
            os.kill(pid, 9)
        ns_del(ns)


def case_busy_lock_at_deadline(state):
    """The automatic revert fires while the lock is held: it waits and reverts once the lock is free."""
    ns = ns_add("lock")
    env = {"CONNTRACK_DEBUG_LOCK_TIMEOUT": "1"}
    try:
        # Long enough for snapshot + confirm on a loaded machine; the lock is then held past the deadline.
        snap = enable(state, ns, 8, env=env)
        fd = os.open(os.path.join(state, "lock"), os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        time.sleep(max(0, snap["deadline"] - time.time()) + 4)   # several lock timeouts (1 s) past the deadline
        assert ns_get(ns) == "6"
        os.close(fd)
        wait_for(lambda: ns_get(ns) == "0", 20, "the automatic revert after the lock was released")
        wait_for(lambda: not watchers(state), 10, "the watcher to exit")
    finally:
        ns_del(ns)


def case_full_state_filesystem(state):
    """A failed enable on a full state filesystem leaves no snapshot, no temporary file and no process."""
    small = os.path.join(WORK, "small")
    os.makedirs(small, exist_ok=True)
    ns = ns_add("full")
    run(["mount", "-t", "tmpfs", "-o", "size=8k,mode=0700", "tmpfs", small])
    try:
        state = os.path.join(small, "state")
        os.mkdir(state, 0o700)
        filler = os.open(os.path.join(small, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(filler, b"x" * 1024)
        except OSError:
            pass
        finally:
            os.close(filler)
        rc, failed = program(state, "snapshot", f"--netns={ns}", "--duration=300", "--log-invalid=tcp")
        assert rc == 1, failed
        leftovers = [name for name in os.listdir(state) if name != "lock"] if os.path.isdir(state) else []
        assert leftovers == [], leftovers
        time.sleep(2)
        assert watchers(state) == [], "a revert process was left behind"
    finally:
        run(["umount", small], check=False)
        ns_del(ns)


# ----------------------------------------------------------------------------- revert while enable runs

def case_revert_while_enable_runs(state):
    """revert --all between snapshot and confirm: the enable's confirm undoes what it applied, and says so."""
    ns = ns_add("race")
    try:
        rc, snap = program(state, "snapshot", f"--netns={ns}", "--duration=300", "--log-invalid=tcp")
        assert rc == 0, snap
        rc, reverted = program(state, "revert", "--all")
        assert rc == 0 and reverted["namespaces"]["netns-" + ns].get("expired"), reverted
        ns_set(ns, 6)   # the enable goes on applying its settings
        rc, confirm = program(state, "confirm", f"--window={snap['window']}", f"--netns={ns}")
        assert rc == 1 and "reverted" in confirm["msg"], confirm
        assert ns_get(ns) == "0", "the value the enable applied after the revert was left on"
        assert not glob.glob(os.path.join(state, "*.json")) and not watchers(state)
    finally:
        ns_del(ns)


# ----------------------------------------------------------------------------- bounds and what revert restores

def case_duration_bounds(state):
    ns = ns_add("bounds")
    try:
        for duration in ("1e17", str(2 ** 63), "604801", "0", "nan"):
            rc, refused = program(state, "snapshot", f"--netns={ns}", f"--duration={duration}", "--log-invalid=tcp")
            assert rc == 1 and "duration" in refused["msg"], (duration, refused)
        assert not os.path.exists(state) or not glob.glob(os.path.join(state, "*.json"))
    finally:
        ns_del(ns)


def case_all_netns_restored_without_the_variable(state):
    """enable with all_netns, revert of the namespace alone: nf_log_all_netns is restored as well."""
    with open(ALL_NETNS, encoding="ascii") as handle:
        before = handle.read().strip()
    ns = ns_add("allnetns")
    try:
        rc, snap = program(state, "snapshot", f"--netns={ns}", "--duration=300", "--log-invalid=tcp", "--all-netns=on")
        assert rc == 0, snap
        with open(ALL_NETNS, "w", encoding="ascii") as handle:
            handle.write("1")
        ns_set(ns, 6)
        ids = [f"--id={ident}" for ident in snap["namespaces"]]
        assert program(state, "confirm", f"--window={snap['window']}", *ids)[0] == 0
        rc, reverted = program(state, "revert", f"--netns={ns}")
        assert rc == 0 and "shared" in reverted["namespaces"], reverted
        with open(ALL_NETNS, encoding="ascii") as handle:
            assert handle.read().strip() == before
    finally:
        with open(ALL_NETNS, "w", encoding="ascii") as handle:
            handle.write(before)
        ns_del(ns)


def case_two_namespace_windows_share_nf_log_all_netns(state):
    """Two namespaces' windows with all_netns: reverting one keeps nf_log_all_netns on for the other (a child
    namespace logs nothing without it); reverting the second restores it."""
    with open(ALL_NETNS, encoding="ascii") as handle:
        before = handle.read().strip()
    first, second = ns_add("share-a"), ns_add("share-b")
    try:
        for ns in (first, second):
            enable(state, ns, 300, extra=("--all-netns=on",))
            with open(ALL_NETNS, "w", encoding="ascii") as handle:
                handle.write("1")
        rc, reverted = program(state, "revert", f"--netns={first}")
        assert rc == 0, reverted
        assert ns_get(first) == "0" and ns_get(second) == "6", reverted
        with open(ALL_NETNS, encoding="ascii") as handle:
            assert handle.read().strip() == "1", f"nf_log_all_netns reset while {second}'s window is open: {reverted}"
        kept = reverted["namespaces"]["shared"]["kept"]
        assert kept["for"] == [f"netns-{second}"] and "net.netfilter.nf_log_all_netns" in kept["values"], kept
        rc, status = program(state, "status", "--all")
        assert rc == 0 and sorted(status["namespaces"]) == [f"netns-{second}"], status
        assert status["shared"]["holders"] == [f"netns-{second}"], status
        rc, reverted = program(state, "revert", f"--netns={second}")
        assert rc == 0, reverted
        with open(ALL_NETNS, encoding="ascii") as handle:
            assert handle.read().strip() == before, reverted
        assert ns_get(second) == "0", reverted
        rc, status = program(state, "status", "--all")
        assert rc == 0 and status["namespaces"] == {} and "shared" not in status, status
    finally:
        with open(ALL_NETNS, "w", encoding="ascii") as handle:
            handle.write(before)
        ns_del(first)
        ns_del(second)


def case_host_values_enable_did_not_touch_are_not_reverted(state):
    """With netns and all_netns, the shared record holds nf_log_all_netns only and no host window is opened: the
    host's own log_invalid, changed by hand during the window to what the namespace got, is not reset by revert."""
    host_key = "/proc/sys/net/netfilter/nf_conntrack_log_invalid"
    with open(ALL_NETNS, encoding="ascii") as handle:
        all_netns_before = handle.read().strip()
    with open(host_key, encoding="ascii") as handle:
        log_invalid_before = handle.read().strip()
    ns = ns_add("hostvalues")
    try:
        snap = enable(state, ns, 300, extra=("--all-netns=on",))
        assert "init" not in snap["namespaces"], snap
        assert list(snap["shared"]["original"]) == ["net.netfilter.nf_log_all_netns"], snap
        with open(host_key, "w", encoding="ascii") as handle:
            handle.write("6")
        rc, reverted = program(state, "revert", f"--netns={ns}")
        assert rc == 0, reverted
        with open(host_key, encoding="ascii") as handle:
            assert handle.read().strip() == "6", "revert reset a host value enable never set"
    finally:
        for path, value in ((ALL_NETNS, all_netns_before), (host_key, log_invalid_before)):
            with open(path, "w", encoding="ascii") as handle:
                handle.write(value)
        ns_del(ns)


def case_install_creates_system_directories_0755(state):
    dest = os.path.join(WORK, "fresh", "libexec", "netfilter-conntrack", "conntrack-debug-window.pyz")
    rc, installed = program(state, f"--install-to={dest}", "status")
    assert rc == 0 and not installed.get("failed"), installed
    for directory in (os.path.dirname(os.path.dirname(dest)), os.path.dirname(dest)):
        assert oct(os.stat(directory).st_mode & 0o777) == "0o755", directory
    assert oct(os.stat(dest).st_mode & 0o777) == "0o700"


def action(state, module_args, interpreter="/usr/bin/python3"):
    """Run the conntrack_debug_window action against this machine, as the role does; returns its result."""
    env = dict(os.environ, CONNTRACK_DEBUG_STATE_DIR=state, ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    proc = run(["ansible", "localhost", "-c", "local", "-i", "localhost,", "-e", f"ansible_python_interpreter={interpreter}",
                "-m", "netfilter.conntrack.conntrack_debug_window", "-a", json.dumps(module_args)], env=env, check=False)
    try:
        return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        raise AssertionError(f"no result from ansible (exit {proc.returncode}): {proc.stdout}{proc.stderr}") from None


def case_action_refuses_bad_durations_before_touching_anything(state):
    ns = ns_add("action-bounds")
    try:
        for duration in (True, 2 ** 63, 1e17, 0, "soon"):
            result = action(state, {"duration": duration, "netns": [ns], "dynamic_debug_sites": [],
                                    "program_dir": os.path.join(WORK, "bounds-bin")})
            assert result.get("failed") and "duration" in result["msg"], (duration, result)
        assert ns_get(ns) == "0" and not os.path.exists(state) and not os.path.exists(os.path.join(WORK, "bounds-bin"))
    finally:
        ns_del(ns)


def case_installed_copy_that_answers_nothing_is_replaced(state):
    """A program replaced by a symlink to /bin/true (exits 0, prints nothing) is reinstalled by enable."""
    ns = ns_add("stale")
    program_dir = os.path.join(WORK, "stale-bin")
    os.makedirs(program_dir)
    installed = os.path.join(program_dir, "conntrack-debug-window.pyz")
    os.symlink("/bin/true", installed)
    try:
        result = action(state, {"duration": 300, "netns": [ns], "dynamic_debug_sites": [], "protocol": "tcp",
                                "program_dir": program_dir})
        assert not result.get("failed") and result["program"]["installed"], result
        assert result["program"]["interpreter"] == "/usr/bin/python3", result["program"]
        assert not os.path.islink(installed) and ns_get(ns) == "6"
        result = action(state, {"state": "reverted", "netns": [ns], "program_dir": program_dir})
        assert not result.get("failed") and ns_get(ns) == "0", result
    finally:
        ns_del(ns)


CASES = {name[5:]: function for name, function in sorted(globals().items()) if name.startswith("case_")}
if __name__ == "__main__":
    # The second round of the revert guarantee: check mode, windows that must not end each other, deadlines, and
    # what root runs.
    import guarantee_faults  # noqa: E402  pylint: disable=import-error,wrong-import-position
    CASES.update(guarantee_faults.CASES)


def main():
    # runme.sh passes on ansible-test's arguments (-v): only names of cases choose cases.
    chosen = [name for name in sys.argv[2:] if not name.startswith("-")] or list(CASES)
    failed = []
    for name in chosen:
        state = os.path.join(WORK, "state-" + name)
        start = time.time()
        try:
            CASES[name](state)
            print(f"ok   {name} ({time.time() - start:.1f}s)", flush=True)
        except AssertionError as exc:
            failed.append(name)
            print(f"FAIL {name}: {exc}", flush=True)
        finally:
            for pid in watchers(state):
                os.kill(pid, 9)
    # Other tests may leave namespaces whose names are not UTF-8: read the list as bytes.
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, check=True).stdout
    leftovers = [line for line in listed.decode("utf-8", "replace").splitlines() if line.startswith(PREFIX)]
    assert not leftovers, f"namespaces left behind: {leftovers}"
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
