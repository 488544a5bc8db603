# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fault injection for the role_debug_faults target. Every command prints one JSON object.

  faults.py kill-controller SPEC_JSON   start ansible-playbook in its own session, SIGKILL it (then its
                                        whole process group) as soon as the namespace shows the debug value
  faults.py parallel SPEC_JSON          start several ansible-playbook runs at the same instant, wait for all
  faults.py revert-race SPEC_JSON       N rounds of: snapshot, apply, two reverts released by one barrier
  faults.py rewrite-race SPEC_JSON      rewrite a snapshot in a loop while readers parse it; `naive` mode
                                        writes in place (no temp+rename) to prove the readers can notice
  faults.py lock-held SPEC_JSON         hold the state directory's flock while a revert runs

Nothing here uses a shell: every command is an argument list.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time


def ns_read(netns: str, key: str) -> str | None:
    proc = subprocess.run(["ip", "netns", "exec", netns, "cat", "/proc/sys/" + key.replace(".", "/")],
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def ns_write(netns: str, key: str, value: str) -> None:
    subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", f"{key}={value}"], check=True)


def tail(text: str, lines: int = 40) -> list:
    return text.splitlines()[-lines:]


def run_program(spec: dict, *args: str, env: dict | None = None) -> dict:
    environ = dict(os.environ, CONNTRACK_DEBUG_STATE_DIR=spec["state_dir"], **(env or {}))
    proc = subprocess.run(["python3", spec["program"], *args], capture_output=True, text=True, env=environ,
                          check=False)
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        out = {"unparsable": proc.stdout}
    return {"rc": proc.returncode, "out": out, "stderr": proc.stderr}


# ----------------------------------------------------------------------------- controller killed

def kill_controller(spec: dict) -> dict:
    """spec: argv, env, netns, key, value, timeout."""
    started = time.monotonic()
    proc = subprocess.Popen(spec["argv"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=dict(os.environ, **spec.get("env", {})),
                            start_new_session=True, text=True)
    seen = None
    while time.monotonic() - started < spec.get("timeout", 120):
        if proc.poll() is not None:
            break
        if ns_read(spec["netns"], spec["key"]) == spec["value"]:
            seen = round(time.monotonic() - started, 2)
            break
        time.sleep(0.05)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)          # the controller vanishes ...
        time.sleep(0.5)
        try:
            os.killpg(proc.pid, signal.SIGKILL)    # ... with every worker and connection it had
        except ProcessLookupError:
            pass
    output = proc.communicate()[0]
    return {"changed": True, "killed": killed, "applied_after_s": seen, "rc": proc.returncode,
            "killed_at": time.time(), "output": tail(output)}


# ----------------------------------------------------------------------------- parallel playbooks

def parallel(spec: dict) -> dict:
    """spec: runs: [{argv, env, after}], touch: {run, path}. All runs are released by one barrier (a
    pipe that is closed); a run with `after` then also waits for that path. When run `touch.run`
    has finished, `touch.path` is created (other runs may be waiting for it)."""
    barrier_py = os.path.join(os.path.dirname(os.path.abspath(__file__)), "barrier.py")
    read_end, write_end = os.pipe()
    procs = []
    for run in spec["runs"]:
        env = dict(os.environ, **run.get("env", {}))
        argv = [sys.executable, barrier_py, str(read_end), run.get("after") or "-", "120"] + run["argv"]
        procs.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, env=env, text=True, pass_fds=(read_end,),
                                      start_new_session=True))
    time.sleep(0.5)
    started = time.time()
    os.close(write_end)
    os.close(read_end)
    results = [None] * len(procs)
    order = list(range(len(procs)))
    touch = spec.get("touch")
    if touch:
        order.remove(touch["run"])
        order.insert(0, touch["run"])
    for index in order:
        output = procs[index].communicate(timeout=spec.get("timeout", 240))[0]
        results[index] = {"rc": procs[index].returncode, "output": tail(output, 60),
                          "finished": time.time()}
        if touch and index == touch["run"]:
            with open(touch["path"], "w", encoding="ascii"):
                pass
    return {"changed": True, "started": started, "runs": results}


# ----------------------------------------------------------------------------- two reverts at once

def revert_race(spec: dict) -> dict:
    """spec: program, state_dir, netns, rounds, originals {key: value}, keys {key: debug value}."""
    ident = "netns-" + spec["netns"]
    rounds, problems = [], []
    for number in range(spec["rounds"]):
        for key, value in spec["originals"].items():
            ns_write(spec["netns"], key, value)
        originals = {key: ns_read(spec["netns"], key) for key in spec["keys"]}
        snap = run_program(spec, "snapshot", "--netns", spec["netns"], "--duration", "600", "--no-schedule",
                           "--log-invalid", spec["log_invalid"], "--backend", "auto", "--family", "ipv4",
                           "--family", "ipv6")
        if snap["rc"] != 0:
            problems.append(f"round {number}: snapshot failed {snap}")
            break
        for key, value in spec["keys"].items():
            ns_write(spec["netns"], key, value)
        confirm = run_program(spec, "confirm", "--netns", spec["netns"],   # enable's last step
                              "--window", snap["out"].get("window", ""))
        if confirm["rc"] != 0:
            problems.append(f"round {number}: confirm failed {confirm}")
            break
        read_end, write_end = os.pipe()
        env = dict(os.environ, CONNTRACK_DEBUG_STATE_DIR=spec["state_dir"])
        commands = [["revert", "--id", ident, "--scheduled"],     # what the timer / detached process runs
                    ["revert", "--netns", spec["netns"]]]          # what the revert entry point runs
        procs = []
        for args in commands:
            barrier = [sys.executable, "-c",
                       "import os,sys; os.read(int(sys.argv[1]), 1); os.execvp(sys.argv[2], sys.argv[2:])",
                       str(read_end), "python3", spec["program"], *args]
            procs.append(subprocess.Popen(barrier, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                          env=env, pass_fds=(read_end,)))
        time.sleep(0.3)
        os.close(write_end)
        os.close(read_end)
        outs = []
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=60)
            outs.append({"rc": proc.returncode, "out": json.loads(stdout) if stdout.strip() else {}, "stderr": stderr})
        restorers = [o for o in outs if o["out"].get("namespaces", {}).get(ident, {}).get("restored")]
        noops = [o for o in outs if o["out"].get("namespaces", {}).get(ident, {}).get("msg") == "nothing to revert"]
        after = {key: ns_read(spec["netns"], key) for key in spec["keys"]}
        if any(o["rc"] != 0 for o in outs):
            problems.append(f"round {number}: a revert failed: {outs}")
        if len(restorers) != 1 or len(noops) != 1:
            problems.append(f"round {number}: expected one restorer and one no-op, got {outs}")
        elif set(restorers[0]["out"]["namespaces"][ident]["restored"]) != set(spec["keys"]):
            problems.append(f"round {number}: restored {restorers[0]['out']} instead of every key")
        if after != originals:
            problems.append(f"round {number}: values {after} are not the originals {originals}")
        if os.path.exists(os.path.join(spec["state_dir"], ident + ".json")):
            problems.append(f"round {number}: the snapshot is still there")
        rounds.append({"originals": originals, "after": after, "reverts": [o["out"] for o in outs]})
    return {"changed": True, "rounds": len(rounds), "problems": problems, "detail": rounds[:2]}


# ----------------------------------------------------------------------------- snapshot rewrites vs readers

def checksum(data: dict) -> str:
    body = {k: v for k, v in data.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def naive_rewrites(path: str, stop: threading.Event, counter: list) -> None:
    """The protocol the program must NOT use: truncate and write in place, in two pieces."""
    with open(path, "rb") as handle:
        text = handle.read()
    while not stop.is_set():
        with open(path, "r+b") as handle:
            handle.truncate(0)
            handle.write(text[: len(text) // 2])
            handle.flush()
            time.sleep(0.001)
            handle.write(text[len(text) // 2:])
        counter[0] += 1


def rewrite_race(spec: dict) -> dict:
    """spec: program, state_dir, netns, seconds, mode (atomic|naive), min_rewrites (atomic)."""
    ident = "netns-" + spec["netns"]
    path = os.path.join(spec["state_dir"], ident + ".json")
    base = ["snapshot", "--netns", spec["netns"], "--no-schedule", "--log-invalid", "tcp"]
    first = run_program(spec, *base, "--duration", "600")
    if first["rc"] != 0:
        return {"failed": True, "msg": f"snapshot failed: {first}"}
    stop = threading.Event()
    stats = {"reads": 0, "missing": 0, "partial": 0, "bad_checksum": 0, "status_calls": 0, "status_failed": 0}
    rewrites = [0]
    samples = []

    def reader() -> None:
        while not stop.is_set():
            try:
                with open(path, "rb") as handle:
                    raw = handle.read()
            except FileNotFoundError:
                stats["missing"] += 1
                continue
            stats["reads"] += 1
            try:
                data = json.loads(raw)
            except ValueError:
                stats["partial"] += 1
                if len(samples) < 3:
                    samples.append(raw[-80:].decode("latin-1"))
                continue
            if data.get("checksum") != checksum(data):
                stats["bad_checksum"] += 1

    def status_reader() -> None:
        while not stop.is_set():
            result = run_program(spec, "status", "--netns", spec["netns"])
            stats["status_calls"] += 1
            if result["rc"] != 0 or not result["out"].get("namespaces", {}).get(ident, {}).get("active"):
                stats["status_failed"] += 1
                if len(samples) < 3:
                    samples.append(result)

    threads = [threading.Thread(target=reader)]
    if spec.get("mode") == "naive":
        threads.append(threading.Thread(target=naive_rewrites, args=(path, stop, rewrites)))
    else:
        threads.append(threading.Thread(target=status_reader))
    for thread in threads:
        thread.start()
    started = time.monotonic()
    deadline = started + spec.get("seconds", 4)
    failures = []
    # At least min_rewrites atomic rewrites, however slow each run of the program is on a loaded host
    # (up to 60 s): fewer would prove little.
    while time.monotonic() < deadline or (spec.get("mode") != "naive" and rewrites[0] < spec.get("min_rewrites", 0)
                                          and time.monotonic() < started + 60):
        if spec.get("mode") == "naive":
            time.sleep(0.1)
            continue
        # each call re-reads, extends the deadline and writes the snapshot twice (temp file + rename)
        result = run_program(spec, *base, "--duration", str(600 + rewrites[0]))
        rewrites[0] += 1
        if result["rc"] != 0:
            failures.append(result)
    stop.set()
    for thread in threads:
        thread.join()
    leftovers = sorted(name for name in os.listdir(spec["state_dir"]) if name.endswith(".tmp"))
    final = run_program(spec, "status", "--netns", spec["netns"])
    return {"changed": True, "mode": spec.get("mode", "atomic"), "rewrites": rewrites[0], "stats": stats,
            "writer_failures": failures[:3], "tmp_leftovers": leftovers, "samples": samples,
            "final_status_rc": final["rc"]}


# ----------------------------------------------------------------------------- lock held by someone else

def lock_held(spec: dict) -> dict:
    """spec: program, state_dir, netns, timeout. Holds the lock while a revert runs, then releases it."""
    fd = os.open(os.path.join(spec["state_dir"], "lock"), os.O_RDWR | os.O_NOFOLLOW)
    fcntl.flock(fd, fcntl.LOCK_EX)
    path = os.path.join(spec["state_dir"], "netns-" + spec["netns"] + ".json")
    with open(path, "rb") as handle:
        before = hashlib.sha256(handle.read()).hexdigest()
    started = time.monotonic()
    blocked = run_program(spec, "revert", "--netns", spec["netns"],
                          env={"CONNTRACK_DEBUG_LOCK_TIMEOUT": str(spec.get("timeout", 2))})
    waited = round(time.monotonic() - started, 2)
    with open(path, "rb") as handle:
        after = hashlib.sha256(handle.read()).hexdigest()
    os.close(fd)
    return {"changed": False, "blocked": blocked, "waited_s": waited, "snapshot_unchanged": before == after}


# ----------------------------------------------------------------------------- inspection

def meta(path: str) -> dict | None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    kind = "link" if stat.S_ISLNK(info.st_mode) else "dir" if stat.S_ISDIR(info.st_mode) else \
        "file" if stat.S_ISREG(info.st_mode) else "other"
    return {"type": kind, "uid": info.st_uid, "gid": info.st_gid, "mode": f"{stat.S_IMODE(info.st_mode):04o}"}


def inspect(spec: dict) -> dict:
    """spec: netns, state_dir, program. The namespace's values, the snapshot's text, files' metadata."""
    values = subprocess.run(["python3", os.path.join(os.path.dirname(os.path.abspath(__file__)), "nfct_values.py"),
                             spec["netns"]], capture_output=True, text=True, check=True)
    ident = "netns-" + spec["netns"]
    snapshot = os.path.join(spec["state_dir"], ident + ".json")
    try:
        with open(snapshot, "rb") as handle:
            text = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        text = None
    paths = [spec["state_dir"], snapshot, os.path.join(spec["state_dir"], ident + ".pid"),
             os.path.join(spec["state_dir"], "lock"), spec["program"]]
    return {"changed": False, "values": json.loads(values.stdout)["values"], "snapshot": text,
            "files": {path: meta(path) for path in paths}}


# ----------------------------------------------------------------------------- planted files

def digest(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def security(spec: dict) -> dict:
    """spec: program, private (a root-owned 0700 directory), netns, victim (a file to protect).

    Each case prepares a state directory, runs the program against it, and reports its exit status,
    message, whether the victim changed and what the state directory holds afterwards."""
    import pwd
    import shutil
    nobody = pwd.getpwnam("nobody")
    victim_digest = digest(spec["victim"])
    snap_args = ["snapshot", "--netns", spec["netns"], "--duration", "600", "--log-invalid", "tcp", "--no-schedule"]
    results = {}

    def fresh(name: str, owner: int = 0, mode: int = 0o700) -> str:
        path = os.path.join(spec["private"], name)
        shutil.rmtree(path, ignore_errors=True)
        os.mkdir(path, mode)
        os.chmod(path, mode)
        os.chown(path, owner, owner)
        return path

    def run(name: str, state_dir: str, *args: str) -> None:
        out = run_program(dict(spec, state_dir=state_dir), *args)
        listing = sorted(os.listdir(state_dir)) if os.path.isdir(state_dir) else None
        results[name] = {"rc": out["rc"], "msg": out["out"].get("msg", out["out"]),
                         "victim_unchanged": digest(spec["victim"]) == victim_digest, "listing": listing,
                         "state": meta(state_dir)}

    # a state directory owned by another user (who could plant anything in it)
    foreign = fresh("foreign-owner", owner=nobody.pw_uid)
    os.symlink(spec["victim"], os.path.join(foreign, f"netns-{spec['netns']}.json"))
    run("foreign_owner_snapshot", foreign, *snap_args)
    run("foreign_owner_revert", foreign, "revert", "--netns", spec["netns"])
    # the state directory itself is a symlink to a directory of another user
    target = fresh("attacker-dir", owner=nobody.pw_uid)
    link = os.path.join(spec["private"], "linked-state")
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(target, link)
    run("state_dir_symlink", link, *snap_args)
    results["state_dir_symlink"]["attacker_dir_listing"] = sorted(os.listdir(target))
    # root's own 0700 directory with the snapshot name planted as a symlink to the victim
    planted = fresh("planted-snapshot")
    os.symlink(spec["victim"], os.path.join(planted, f"netns-{spec['netns']}.json"))
    run("snapshot_symlink_snapshot", planted, *snap_args)
    run("snapshot_symlink_revert", planted, "revert", "--netns", spec["netns"])
    results["snapshot_symlink_revert"]["link_kept"] = os.path.islink(os.path.join(planted, f"netns-{spec['netns']}.json"))
    # the lock file planted as a symlink
    locked = fresh("planted-lock")
    os.symlink(spec["victim"], os.path.join(locked, "lock"))
    run("lock_symlink", locked, *snap_args)
    # a snapshot that is a regular 0600 file of another user
    foreign_file = fresh("foreign-snapshot")
    path = os.path.join(foreign_file, f"netns-{spec['netns']}.json")
    with open(path, "w", encoding="ascii") as handle:
        handle.write("{}")
    os.chmod(path, 0o600)
    os.chown(path, nobody.pw_uid, nobody.pw_gid)
    run("snapshot_foreign_owner", foreign_file, "revert", "--netns", spec["netns"])
    # the detached process's pid file planted as a symlink: replaced by rename, never written through
    pidlink = fresh("planted-pid")
    os.symlink(spec["victim"], os.path.join(pidlink, f"netns-{spec['netns']}.pid"))
    run("pid_symlink_schedule", pidlink, *[a for a in snap_args if a != "--no-schedule"])
    results["pid_symlink_schedule"]["pid_file"] = meta(os.path.join(pidlink, f"netns-{spec['netns']}.pid"))
    run("pid_symlink_cleanup", pidlink, "revert", "--netns", spec["netns"])
    # a root-owned state directory that others may write into is tightened to 0700 before use
    loose = fresh("loose-mode", mode=0o777)
    run("loose_mode", loose, *snap_args)
    run("loose_mode_cleanup", loose, "revert", "--netns", spec["netns"])
    return {"changed": False, "cases": results}


SHELL_PATTERNS = {
    "shell module": r"^\s*-?\s*(ansible\.builtin\.|ansible\.legacy\.)?(shell|raw)\s*:",
    "command module with a string": r"^\s*-?\s*(ansible\.builtin\.|ansible\.legacy\.)?command\s*:\s*[^\s#]",
    "cmd string": r"^\s*cmd\s*:",
    "use_unsafe_shell": r"use_unsafe_shell",
    "shell=True": r"shell\s*=\s*True",
    "run_command with a string": r"run_command\(\s*[fbru]*[\"']",
    "os.system / os.popen": r"os\.(system|popen)\s*\(",
    "sh -c": r"[\"']sh[\"']\s*,\s*[\"']-c[\"']|/bin/sh -c",
}


def no_shell(spec: dict) -> dict:
    """spec: roots: [directories]. Every line of every file that looks like a shell string."""
    import re
    patterns = {name: re.compile(text) for name, text in SHELL_PATTERNS.items()}
    hits, scanned = [], 0
    for root in spec["roots"]:
        for directory, _dirs, files in os.walk(root):
            for name in files:
                if name.endswith((".pyc", ".md", ".rst")):
                    continue
                path = os.path.join(directory, name)
                scanned += 1
                with open(path, encoding="utf-8", errors="replace") as handle:
                    for number, line in enumerate(handle, 1):
                        for label, pattern in patterns.items():
                            if pattern.search(line):
                                hits.append(f"{path}:{number}: {label}: {line.strip()}")
    return {"changed": False, "scanned": scanned, "hits": hits}


COMMANDS = {"inspect": inspect, "security": security, "no-shell": no_shell, "kill-controller": kill_controller,
            "parallel": parallel, "revert-race": revert_race, "rewrite-race": rewrite_race, "lock-held": lock_held}

if __name__ == "__main__":
    print(json.dumps(COMMANDS[sys.argv[1]](json.loads(sys.argv[2])), sort_keys=True))
