# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The automatic revert: per-window systemd timers and the sweep timer (systemctl and systemd-run mocked), and the one
watcher and its partner per state directory (real processes, told apart by their command line)."""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils import _window_scheduler as sched
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import Completed
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_store import Store

UNIT = "netfilter-conntrack-revert-init"
TIMER = {"kind": "systemd-timer", "unit": UNIT + ".timer", "in_seconds": 900}

# (case, scheduler recorded in the snapshot, units systemctl reports active, retry timers it lists, alive)
ALIVE = [
    ("timer waiting", TIMER, {UNIT + ".timer"}, [], True),
    ("timer fired, its revert running", TIMER, {UNIT + ".timer", UNIT + ".service"}, [], True),
    ("only a retry timer left", TIMER, {UNIT + "-retry1795340000.timer"}, [UNIT + "-retry1795340000.timer"], True),
    # systemctl stop, the transient unit lost (failed, not found) or its revert service killed when it fired.
    ("timer and service gone", TIMER, set(), [], False),
    ("retry timer listed but stopped", TIMER, set(), [UNIT + "-retry1795340000.timer"], False),
    ("nothing recorded", None, {UNIT + ".timer"}, [], False),
    ("armed with --no-schedule", {"kind": "none"}, {UNIT + ".timer"}, [], False),
]


@pytest.mark.parametrize("scheduler, active, retries, expected", [c[1:] for c in ALIVE], ids=[c[0] for c in ALIVE])
def test_alive_systemd_timer(tmp_path, monkeypatch, scheduler, active, retries, expected):
    calls = []

    def run(argv):
        calls.append(argv)
        assert argv[:6] == ["systemctl", "list-units", "--all", "--full", "--plain", "--no-legend"], argv
        loaded = sorted(set(active) | set(retries))
        return Completed(0, "".join(f"{unit} loaded {'active' if unit in active else 'inactive'} waiting desc\n"
                                    for unit in loaded if any(fnmatch.fnmatchcase(unit, p) for p in argv[6:])), "")

    monkeypatch.setattr(sched, "run_argv", run)
    monkeypatch.setattr(sched.shutil, "which", lambda name: "/usr/bin/" + name)
    scheduler_ = sched.Scheduler(Store(str(tmp_path)), "/p.pyz", use_systemd=lambda: True)
    assert scheduler_.alive(scheduler, "init") is expected
    assert len(calls) == (1 if (scheduler or {}).get("kind") == "systemd-timer" else 0), "one systemctl call"


# (case, systemctl list-units output, return code, states)
UNIT_STATES = [
    ("a waiting timer and its dead service",
     "t.timer loaded active waiting Revert\nt.service loaded inactive dead Revert\n", 0,
     {"t.timer": "active", "t.service": "inactive"}),
    ("a failed unit, with the bullet some versions print", "\u25cf s.service loaded failed failed /bin/false\n", 0,
     {"s.service": "failed"}),
    ("nothing loaded", "", 0, {}),
    ("a short line is skipped", "t.timer loaded\n", 0, {}),
    ("systemctl failed", "t.timer loaded active waiting Revert\n", 1, {}),
]


@pytest.mark.parametrize("listing, rc, states", [c[1:] for c in UNIT_STATES], ids=[c[0] for c in UNIT_STATES])
def test_unit_states(monkeypatch, listing, rc, states):
    monkeypatch.setattr(sched, "run_argv", lambda argv: Completed(rc, listing, ""))
    monkeypatch.setattr(sched.shutil, "which", lambda name: "/usr/bin/" + name)
    assert sched.unit_states("t.timer", "t.service", "s.service") == states


def test_alive_systemd_timer_without_systemctl(tmp_path, monkeypatch):
    monkeypatch.setattr(sched.shutil, "which", lambda name: None)
    assert sched.Scheduler(Store(str(tmp_path)), "/p.pyz").alive(TIMER, "init") is False


# --- systemd: a timer per window, one sweep timer per state directory --------------------------------------------


class Systemd:
    """systemctl and systemd-run as run_argv calls them: the units that are active, and every call."""

    def __init__(self, active=()):
        self.active = set(active)
        self.failed = set()   # loaded until reset-failed: systemd-run of the same name fails meanwhile
        self.calls = []
        self.userspace_started_us = ""   # systemctl show's UserspaceTimestampMonotonic; empty: not known
        self.next_elapse = {}   # timer: CLOCK_MONOTONIC seconds of its next elapse (systemd-run --on-active= sets it)

    def run(self, argv):
        self.calls.append(argv)
        if argv[:3] == ["systemctl", "is-active", "--quiet"]:
            return Completed(0 if argv[3] in self.active else 3, "", "")
        if argv[:2] == ["systemctl", "list-units"]:
            assert argv[2:6] == ["--all", "--full", "--plain", "--no-legend"], argv
            loaded = [(unit, "active") for unit in sorted(self.active)] + [(unit, "failed") for unit in sorted(self.failed)]
            return Completed(0, "".join(f"{unit} loaded {state} {state} desc\n" for unit, state in loaded
                                        if any(fnmatch.fnmatchcase(unit, pattern) for pattern in argv[6:])), "")
        if argv[:2] == ["systemctl", "reset-failed"]:
            self.failed -= set(argv[2:])
        if argv[0] == "systemd-run":
            unit = next(arg[len("--unit="):] for arg in argv if arg.startswith("--unit="))
            kinds = (".timer", ".service") if any(arg.startswith("--on-") for arg in argv) else (".service",)
            if any(unit + kind in self.active | self.failed for kind in kinds):
                return Completed(1, "", f"Failed to start transient unit: Unit {unit} was already loaded\n")
            self.active.add(unit + kinds[0])
            delay = next((int(arg[len("--on-active="):-1]) for arg in argv if arg.startswith("--on-active=")), None)
            if delay is not None:
                self.next_elapse[unit + ".timer"] = time.clock_gettime(time.CLOCK_MONOTONIC) + delay
        if argv[:3] == ["systemctl", "show", "--property=NextElapseUSecMonotonic"]:
            elapse = self.next_elapse.get(argv[4])   # printed as systemd 252 prints it
            return Completed(0, (timespan(elapse) if elapse else "0") + "\n", "")
        if argv[:2] == ["systemctl", "show"]:
            assert argv[2:] == ["--property=UserspaceTimestampMonotonic", "--value"], argv
            return Completed(0, self.userspace_started_us + "\n", "")
        if argv[:2] == ["systemctl", "stop"]:
            self.active -= {unit for unit in self.active if any(fnmatch.fnmatchcase(unit, p) for p in argv[2:])}
        return Completed(0, "", "")

    def runs(self):
        return [argv for argv in self.calls if argv[0] == "systemd-run"]


@pytest.fixture
def systemd(monkeypatch):
    fake = Systemd()
    monkeypatch.setattr(sched, "run_argv", fake.run)
    monkeypatch.setattr(sched.shutil, "which", lambda name: "/usr/bin/" + name)
    real_isdir = os.path.isdir
    monkeypatch.setattr(sched.os.path, "isdir", lambda path: path == "/run/systemd/system" or real_isdir(path))
    return fake


def timespan(seconds):
    """A time span as systemctl show prints one: 19h 29min 22.979033s."""
    hours, rest = divmod(seconds, 3600)
    minutes, rest = divmod(rest, 60)
    return " ".join(part for part in (f"{int(hours)}h" if hours else "", f"{int(minutes)}min" if minutes else "",
                                      f"{rest:.6f}s") if part)


@pytest.mark.parametrize("text, seconds", [
    ("19h 29min 22.979033s", 70162.979033),
    ("1d 2h", 93600.0),
    ("5min 3s", 303.0),
    ("500ms", 0.5),
    ("2w 1us", 1209600.000001),
    ("1month", 2629800.0),
    ("1y 1month", 31557600.0 + 2629800.0),
    ("0", None),
    ("", None),
    ("infinity", None),
    ("5 min", None),
    ("12min later", None),
])
def test_timespan_seconds(text, seconds):
    found = sched.timespan_seconds(text + "\n")
    assert found == seconds if seconds is None else abs(found - seconds) < 1e-6


def boottime():
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def test_arm_starts_the_windows_timer_and_one_sweep(tmp_path, systemd, monkeypatch):
    store = Store(str(tmp_path / "state"))
    store.ensure()
    scheduler = sched.Scheduler(store, "/p.pyz", interpreter="/usr/bin/python3", use_systemd=lambda: True)
    monkeypatch.setattr(sched.time, "time", lambda: 0.0)   # the wall clock plays no part in the delay
    armed = scheduler.arm("netns-a", boottime() + 300)
    assert armed == {"kind": "systemd-timer", "unit": UNIT[:-len("init")] + "netns-a.timer", "in_seconds": 300,
                     "interpreter": "/usr/bin/python3"}
    window, sweep = systemd.runs()
    # systemctl show does not know when the manager started: the relative timer is the fallback.
    assert window == ["systemd-run", "--quiet", "--collect", "--unit=netfilter-conntrack-revert-netns-a",
                      "--on-active=300s", "--timer-property=AccuracySec=1s", "/usr/bin/python3", "/p.pyz",
                      f"--state-dir={store.directory}", "revert", "--id", "netns-a", "--scheduled"]
    # The sweep first runs a period after the deadline, not every period from now on.
    assert sweep[3:] == [f"--unit={scheduler.sweep_unit}", "--on-active=310s", "--on-unit-active=10s",
                         "--timer-property=AccuracySec=1s", "/usr/bin/python3", "/p.pyz",
                         f"--state-dir={store.directory}", "sweep"]
    store.save({"id": "netns-a", "deadline_boot": boottime() + 300})
    scheduler.arm("netns-b", boottime() + 400)
    assert len(systemd.runs()) == 3, "a window with a later deadline starts its own timer, and no second sweep"
    assert scheduler.backstop() == {"kind": "systemd-sweep-timer", "unit": scheduler.sweep_unit + ".timer",
                                    "period_seconds": 10, "alive": True}


def test_arming_a_window_on_a_host_without_one_asks_systemd_once_before_it_starts_the_timers(tmp_path, systemd):
    """Each systemctl call costs the host about 10 ms of CPU: no stop or reset-failed of units that are not there,
    and the manager's start is asked once for the window's timer and the sweep."""
    scheduler = sched.Scheduler(Store(str(tmp_path / "state")), "/p.pyz", use_systemd=lambda: True)
    scheduler.arm("init", boottime() + 300)
    assert [argv[:2] for argv in systemd.calls] == [["systemctl", "list-units"], ["systemctl", "show"],
                                                    ["systemd-run", "--quiet"], ["systemd-run", "--quiet"]]


def test_arming_again_stops_the_windows_timers_and_resets_its_failed_revert(tmp_path, systemd):
    scheduler = sched.Scheduler(Store(str(tmp_path / "state")), "/p.pyz", use_systemd=lambda: True)
    systemd.active.add(UNIT + "-retry1795340000.timer")
    systemd.failed.add(UNIT + ".service")
    scheduler.arm("init", boottime() + 300)
    assert ["systemctl", "stop", UNIT + ".timer", UNIT + "-retry*.timer"] in systemd.calls
    assert ["systemctl", "reset-failed", UNIT + ".timer", UNIT + ".service"] in systemd.calls
    assert systemd.active == {UNIT + ".timer", scheduler.sweep_unit + ".timer"} and not systemd.failed
    scheduler.arm("init", boottime() + 600)
    assert len([argv for argv in systemd.runs() if f"--unit={UNIT}" in argv]) == 2, "the waiting timer replaced"


def test_a_transient_unit_whose_name_a_failed_one_holds_is_started_after_a_reset(tmp_path, systemd):
    scheduler = sched.Scheduler(Store(str(tmp_path / "state")), "/p.pyz", use_systemd=lambda: True)
    scheduler._systemd_run(["--unit=c"], ["/bin/true"], reset_on_failure=["c.service"])
    assert [argv[0] for argv in systemd.calls] == ["systemd-run"], "one call where no unit is left over"
    systemd.active.discard("c.service")
    systemd.failed.add("c.service")
    scheduler._systemd_run(["--unit=c"], ["/bin/true"], reset_on_failure=["c.service"])
    assert [argv[:2] for argv in systemd.calls[1:]] == [["systemd-run", "--quiet"], ["systemctl", "reset-failed"],
                                                        ["systemd-run", "--quiet"]]
    with pytest.raises(sched.ConntrackModuleError, match="already loaded"):
        scheduler._systemd_run(["--unit=c"], ["/bin/true"], reset_on_failure=["c.service"])


def sweeps(systemd, scheduler):
    return [argv for argv in systemd.runs() if f"--unit={scheduler.sweep_unit}" in argv]


def test_a_window_with_an_earlier_deadline_brings_the_sweep_forward(tmp_path, systemd):
    store = Store(str(tmp_path / "state"))
    store.ensure()
    scheduler = sched.Scheduler(store, "/p.pyz", use_systemd=lambda: True)
    scheduler.arm("netns-a", boottime() + 300)
    store.save({"id": "netns-a", "deadline_boot": boottime() + 300})
    scheduler.arm("netns-b", boottime() + 60)
    first, second = sweeps(systemd, scheduler)
    assert "--on-active=310s" in first and "--on-active=70s" in second
    assert ["systemctl", "stop", scheduler.sweep_unit + ".timer"] in systemd.calls


def test_an_extended_window_moves_the_sweep_later_unless_another_window_needs_it(tmp_path, systemd):
    store = Store(str(tmp_path / "state"))
    store.ensure()
    scheduler = sched.Scheduler(store, "/p.pyz", use_systemd=lambda: True)
    scheduler.arm("init", boottime() + 60)
    scheduler.arm("init", boottime() + 900)
    assert ["--on-active=70s" in argv for argv in sweeps(systemd, scheduler)] == [True, False]
    assert "--on-active=910s" in sweeps(systemd, scheduler)[1], "a sweep every period until 900 s cost the host"
    store.save({"id": "netns-a", "deadline_boot": boottime() + 100})
    scheduler.arm("init", boottime() + 1800)
    assert "--on-active=110s" in sweeps(systemd, scheduler)[2], "netns-a's deadline comes first"


@pytest.mark.parametrize("other", [{"expired": True, "deadline_boot": 1e9}, {"deadline_boot": "damaged"}])
def test_an_expired_or_unreadable_window_keeps_the_sweep_coming_at_once(tmp_path, systemd, other):
    store = Store(str(tmp_path / "state"))
    store.ensure()
    scheduler = sched.Scheduler(store, "/p.pyz", use_systemd=lambda: True)
    store.save(dict(other, id="netns-a"))
    scheduler.arm("init", boottime() + 900)
    assert "--on-active=10s" in sweeps(systemd, scheduler)[0]


def test_an_expired_window_brings_the_sweep_to_one_period_from_now(tmp_path, systemd):
    scheduler = sched.Scheduler(Store(str(tmp_path / "state")), "/p.pyz", use_systemd=lambda: True)
    scheduler.arm("init", boottime() + 900)
    scheduler.arm("init", boottime() + 600, expired=True)
    assert ["--on-active=910s" in argv or "--on-active=10s" in argv for argv in sweeps(systemd, scheduler)] == [True, True]
    assert "--on-active=10s" in sweeps(systemd, scheduler)[1]


def test_a_running_sweep_is_not_armed_again(tmp_path, systemd):
    """Its service runs now (a sweep reverting from inside it arms a retry): a new unit of the same name would fail."""
    scheduler = sched.Scheduler(Store(str(tmp_path / "state")), "/p.pyz", use_systemd=lambda: True)
    scheduler.arm("init", boottime() + 900)
    systemd.active.add(scheduler.sweep_unit + ".service")
    scheduler.arm("init", boottime() + 60, retry=True)
    assert len(sweeps(systemd, scheduler)) == 1


def test_the_timer_elapses_at_a_time_since_the_manager_started(tmp_path, systemd, monkeypatch):
    """OnStartupSec= (absolute) instead of OnActiveSec=, which a daemon-reload arms again (systemd issue 31914)."""
    monotonic = time.clock_gettime(time.CLOCK_MONOTONIC)
    systemd.userspace_started_us = str(int((monotonic - 1000) * 1e6))   # the manager started 1000 s ago
    scheduler = sched.Scheduler(Store(str(tmp_path / "state")), "/p.pyz", use_systemd=lambda: True)
    scheduler.arm("init", boottime() + 300)
    window = systemd.runs()[0]
    assert not any(arg.startswith("--on-active=") for arg in window)
    startup = next(int(arg[len("--on-startup="):-1]) for arg in window if arg.startswith("--on-startup="))
    assert 1299 <= startup <= 1302


def test_a_lost_sweep_is_started_again_by_the_next_arm(tmp_path, systemd):
    scheduler = sched.Scheduler(Store(str(tmp_path / "state")), "/p.pyz", use_systemd=lambda: True)
    scheduler.arm("init", boottime() + 60)
    systemd.active.discard(scheduler.sweep_unit + ".timer")
    assert scheduler.backstop()["alive"] is False
    scheduler.arm("init", boottime() + 60)
    assert [argv[3] for argv in systemd.runs()].count(f"--unit={scheduler.sweep_unit}") == 2
    assert scheduler.backstop()["alive"] is True


def test_one_sweep_unit_per_state_directory(tmp_path):
    default = sched.Scheduler(Store(sched.STATE_DIR), "/p.pyz").sweep_unit
    one = sched.Scheduler(Store(str(tmp_path / "one")), "/p.pyz").sweep_unit
    other = sched.Scheduler(Store(str(tmp_path / "other")), "/p.pyz").sweep_unit
    assert default == "netfilter-conntrack-sweep"
    assert len({default, one, other}) == 3 and one.startswith("netfilter-conntrack-sweep-")


def test_settle_stops_the_sweep_only_when_no_window_is_left(tmp_path, systemd):
    store = Store(str(tmp_path / "state"))
    store.ensure()
    scheduler = sched.Scheduler(store, "/p.pyz", use_systemd=lambda: True)
    scheduler.arm("init", boottime() + 60)
    store.save({"id": "init"})
    store.save({"id": "shared"})
    assert scheduler.settle() == [] and scheduler.backstop()["alive"] is True
    store.remove("init")
    assert scheduler.settle() == [scheduler.sweep_unit + ".timer"], "the shared record alone is no window"
    assert scheduler.backstop()["alive"] is False


def test_cancel_stops_the_windows_timers(tmp_path, systemd):
    scheduler = sched.Scheduler(Store(str(tmp_path / "state")), "/p.pyz", use_systemd=lambda: True)
    assert scheduler.cancel("netns-a") == ["netfilter-conntrack-revert-netns-a.timer"]
    assert ["systemctl", "stop", "netfilter-conntrack-revert-netns-a.timer",
            "netfilter-conntrack-revert-netns-a-retry*.timer"] in systemd.calls
    assert not any(argv[:2] == ["systemctl", "stop"] and scheduler.sweep_unit + ".timer" in argv
                   for argv in systemd.calls), "the sweep serves the other windows"


# --- elsewhere: one watcher and its partner per state directory ---------------------------------------------------


@pytest.fixture
def processes():
    """Start stand-in processes with a given command line; every one is killed at the end."""
    started = []

    def start(*argv):
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"] + list(argv))
        started.append(proc)
        for _attempt in range(100):   # the command line is there once the interpreter has started
            if sched.process_argv(proc.pid) and list(argv)[-1].encode() in sched.process_argv(proc.pid):
                break
            time.sleep(0.01)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def watcher_argv(store, slot):
    return ["wait-and-revert", f"--state-dir={store.directory}", f"--slot={slot}"]


def test_watcher_pid_is_a_live_watcher_of_this_state_directory(tmp_path, processes):
    store, elsewhere = Store(str(tmp_path / "state")), Store(str(tmp_path / "elsewhere"))
    store.ensure()
    scheduler = sched.Scheduler(store, "/p.pyz", use_systemd=lambda: False)
    assert scheduler.watcher_pid(sched.WATCHER) is None
    other = processes(*watcher_argv(elsewhere, sched.WATCHER))
    store.write_pid(sched.WATCHER, other.pid)
    assert scheduler.watcher_pid(sched.WATCHER) is None, "the watcher of another state directory"
    unrelated = processes("--state-dir=" + store.directory)
    store.write_pid(sched.WATCHER, unrelated.pid)
    assert scheduler.watcher_pid(sched.WATCHER) is None, "a reused pid: not a watcher"
    watcher = processes(*watcher_argv(store, sched.WATCHER))
    store.write_pid(sched.WATCHER, watcher.pid)
    assert scheduler.watcher_pid(sched.WATCHER) == watcher.pid
    assert scheduler.alive({"kind": "detached-process", "pid": 1}, "netns-a") is True
    assert scheduler.backstop() == {"kind": "partner-process", "pid": None, "alive": False}
    watcher.kill()
    watcher.wait()
    assert scheduler.watcher_pid(sched.WATCHER) is None
    assert scheduler.alive({"kind": "detached-process", "pid": watcher.pid}, "netns-a") is False


def test_arm_starts_the_watcher_and_its_partner_once_whatever_the_number_of_windows(tmp_path, monkeypatch, processes):
    store = Store(str(tmp_path / "state"))
    store.ensure()
    scheduler = sched.Scheduler(store, "/p.pyz", use_systemd=lambda: False)
    spawned = []

    def spawn(slot):
        proc = processes(*watcher_argv(store, slot))
        store.write_pid(slot, proc.pid)
        spawned.append(slot)
        return proc.pid

    monkeypatch.setattr(scheduler, "_spawn_watcher", spawn)
    for number in range(20):
        armed = scheduler.arm(f"netns-n{number}", boottime() + 60)
        assert armed["kind"] == "detached-process" and armed["pid"] == store.read_pid(sched.WATCHER)
    assert spawned == [sched.WATCHER, sched.PARTNER]
    assert scheduler.backstop()["alive"] is True


def test_arm_ends_the_per_window_watcher_of_an_older_release(tmp_path, monkeypatch, processes):
    store = Store(str(tmp_path / "state"))
    store.ensure()
    scheduler = sched.Scheduler(store, "/p.pyz", use_systemd=lambda: False)
    legacy = processes("wait-and-revert", "--id", "init")
    store.write_pid("init", legacy.pid)
    assert scheduler.legacy_watcher_pid("init") == legacy.pid
    monkeypatch.setattr(scheduler, "ensure_watchers", lambda own_slot=None: 4242)
    scheduler.arm("init", boottime() + 60)
    assert legacy.wait(timeout=10) == -15, "SIGTERM"
    assert store.read_pid("init") == 4242


def test_settle_ends_the_watchers_once_no_window_is_left(tmp_path, processes):
    store = Store(str(tmp_path / "state"))
    store.ensure()
    scheduler = sched.Scheduler(store, "/p.pyz", use_systemd=lambda: False)
    watchers = {slot: processes(*watcher_argv(store, slot)) for slot in (sched.WATCHER, sched.PARTNER)}
    for slot, proc in watchers.items():
        store.write_pid(slot, proc.pid)
    store.save({"id": "netns-a"})
    assert scheduler.settle() == [] and all(proc.poll() is None for proc in watchers.values())
    store.remove("netns-a")
    assert sorted(scheduler.settle()) == sorted(f"pid {proc.pid}" for proc in watchers.values())
    assert [proc.wait(timeout=10) for proc in watchers.values()] == [-15, -15]
    assert store.read_pid(sched.WATCHER) is None and store.read_pid(sched.PARTNER) is None
