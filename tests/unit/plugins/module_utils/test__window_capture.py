# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils import _window_capture as wc
from ansible_collections.netfilter.conntrack.plugins.module_utils._capture import FLUSH_SIGNAL, TICK
from ansible_collections.netfilter.conntrack.plugins.module_utils._capture_aggregate import (
    SCHEMA,
    process_start_ticks,
    write_json_atomic,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.tests.unit.plugins.module_utils.kernel_tree import TreeHost, TreeKernel


@pytest.mark.parametrize("text, expected", [
    (None, None),
    ("", None),
    ("{}", {"mode": "auto"}),
    ('{"mode": "kernel_log"}', {"mode": "kernel_log"}),
    ('{"mode": "netlink", "budgets": {"max_packets": 10, "max_rate": null}, "samples_per_reason": 0}',
     {"mode": "netlink", "budgets": {"max_packets": 10, "max_rate": None}, "samples_per_reason": 0}),
    ('{"mode": "auto", "budgets": null}', {"mode": "auto"}),
])
def test_parse_request(text, expected):
    assert wc.parse_request(text) == expected


@pytest.mark.parametrize("text, message", [
    ("{", "--capture is not JSON"),
    ("[]", "must be an object with some of: mode, budgets, samples_per_reason"),
    ('{"mode": "auto", "group": 2}', "must be an object with some of"),
    ('{"mode": "ulog"}', "capture must be auto, netlink or kernel_log, not 'ulog'"),
    ('{"budgets": {"max_packets": 0}}', "budget max_packets must be positive or null, not 0"),
    ('{"budgets": {"cpu_interval": 0}}', "budget cpu_interval must be positive"),
    ('{"samples_per_reason": -1}', "samples_per_reason must be an integer from 0 to 10000"),
])
def test_parse_request_refuses(text, message):
    with pytest.raises(ConntrackModuleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        wc.parse_request(text)


def test_capture_dir_is_beside_the_state_dir():
    assert wc.capture_dir("/run/netfilter-conntrack/") == "/run/netfilter-conntrack-capture"


class Store:
    def __init__(self, directory):
        self.directory = directory


class Capture(wc.CaptureCommands):
    def __init__(self, directory, host=None):
        self.store = Store(directory)
        self.host = host


NF_LOG_WITH_NETLINK = " 2 NONE (nf_log_ipv4,nfnetlink_log)\n10 NONE (nf_log_ipv6,nfnetlink_log)\n"
NF_LOG_WITHOUT = " 2 NONE (nf_log_ipv4)\n10 NONE (nf_log_ipv6)\n"


def test_an_open_window_keeps_its_path_and_no_request_is_the_kernel_log():
    program = Capture("/nonexistent")
    recorded = {"path": "netlink", "why": "free"}
    assert program.choose_path({"mode": "kernel_log"}, {"capture": recorded}) == recorded
    assert program.choose_path(None, {}) == {"path": "kernel_log", "why": "opened without a capture"}
    assert program.choose_path(None, None)["path"] == "kernel_log"
    assert program.choose_path({"mode": "kernel_log"}, None) == {"path": "kernel_log", "why": "asked for"}


UNAVAILABLE = "nfnetlink_log is neither registered nor loadable on this kernel"
# (the nf_log table, the modules loaded, the modules modprobe cannot find): what netlink_unavailable answers.
NETLINK_USABLE = [
    ("registered", NF_LOG_WITH_NETLINK, (), ("nfnetlink_log",), None),
    ("not registered but loaded", NF_LOG_WITHOUT, ("nfnetlink_log",), ("nfnetlink_log",), None),
    ("neither, but loadable", NF_LOG_WITHOUT, (), (), None),
    ("neither, nor loadable", NF_LOG_WITHOUT, (), ("nfnetlink_log",), UNAVAILABLE),
    ("no nf_log table, nor loadable", None, (), ("nfnetlink_log",), UNAVAILABLE),
]


@pytest.mark.parametrize("nf_log, loaded, absent, expected", [c[1:] for c in NETLINK_USABLE],
                         ids=[c[0] for c in NETLINK_USABLE])
def test_netlink_unavailable(tmp_path, nf_log, loaded, absent, expected):
    host = TreeHost(TreeKernel(tmp_path, {}, nf_log=nf_log, loaded=loaded), absent=absent)
    assert wc.netlink_unavailable(host) == expected


@pytest.mark.parametrize("absent, holder, mode, expected", [
    ((), None, "auto", "netlink"),
    ((), "another listener holds nfnetlink_log group 0", "auto", "kernel_log"),
    (("nfnetlink_log",), None, "auto", "kernel_log"),
])
def test_auto_falls_back_and_says_why(monkeypatch, tmp_path, absent, holder, mode, expected):
    """The group's holder is asked of the kernel over netlink, not through the host: that one stays replaced."""
    monkeypatch.setattr(wc, "group_holder", lambda: holder)
    host = TreeHost(TreeKernel(tmp_path, {}, nf_log=NF_LOG_WITHOUT), absent=absent)
    path = Capture("/nonexistent", host).choose_path({"mode": mode}, None)
    assert path["path"] == expected
    assert (holder or (UNAVAILABLE if absent else "usable")) in path["why"]


def test_netlink_asked_where_the_group_is_taken_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(wc, "group_holder", lambda: "another listener holds nfnetlink_log group 0")
    host = TreeHost(TreeKernel(tmp_path, {}, nf_log=NF_LOG_WITH_NETLINK))
    with pytest.raises(ConntrackModuleError, match="capture netlink is not possible here: another listener"):
        Capture("/nonexistent", host).choose_path({"mode": "netlink"}, None)


def test_backend_for_a_netlink_namespace_is_nfnetlink_log():
    args = argparse.Namespace(backend="auto", capture_paths={"netns-a": {"path": "netlink"}, "init": {"path": "kernel_log"}})
    program = Capture("/nonexistent")
    assert [program.backend_for(args, ident) for ident in ("netns-a", "init", None)] == ["nfnetlink_log", "auto", "auto"]


def aggregate(**changes):
    spot = {"label": "netns-a", "netns": "/run/netns/a", "status": "capturing", "error": None, "events": 7,
            "loss": {"summary": "none", "events_lost": 0}, "pcapng": "/x/netns-a.pcapng", "samples": 2,
            "by_reason": {"invalid tcp flag combination": 7}, "by_protocol": {"tcp": 7}, "by_family": {"ipv4": 7},
            "by_interface": {"IN=veth0 OUT=": 7}, "by_peer": {"10.0.0.1": 7}}
    taken = {"label": "netns-b", "netns": "/run/netns/b", "status": "group_taken", "error": "EPERM", "events": 0,
             "loss": {"summary": "none"}, "pcapng": None}
    return dict({"schema": SCHEMA, "state": "budget_exceeded", "stopped_by": "budget", "events": 7,
                 "budget_exceeded": {"name": "max_packets", "value": 7, "limit": 6, "at": 1.0, "at_utc": "t"},
                 "namespaces": [spot, taken]}, **changes)


def test_capture_report_from_the_aggregate(tmp_path):
    state = tmp_path / "state"
    program = Capture(str(state))
    assert program.capture_report(since=time.time()) == (None, {})
    (tmp_path / "state-capture").mkdir()
    write_json_atomic(str(tmp_path / "state-capture" / "aggregate.json"), aggregate())
    section, reasons = program.capture_report(since=time.time())
    assert reasons == {"netns-a": {"invalid tcp flag combination": 7}}
    assert section["ended_by_budget"] and section["budget_exceeded"]["name"] == "max_packets"
    one = section["namespaces"]["netns-a"]
    assert one["path"] == "netlink" and one["loss"] == "none" and one["pcapng"] == "/x/netns-a.pcapng"
    assert one["by_interface"] == {"IN=veth0 OUT=": 7} and one["by_peer"] == {"10.0.0.1": 7}
    assert section["namespaces"]["netns-b"]["status"] == "group_taken" and "netns-b" not in reasons
    assert section["directory"] == str(tmp_path / "state-capture")
    json.dumps(section)


def running_aggregate(heartbeat, events):
    """The aggregate of a collector that runs: this test's own process stands for it (its pid and start time)."""
    return aggregate(state="running", stopped_by=None, budget_exceeded=None, events=events, heartbeat=heartbeat,
                     pid=os.getpid(), pid_start_ticks=process_start_ticks(os.getpid()))


def test_capture_report_waits_for_the_running_collectors_next_write(tmp_path):
    """Packets logged just before collect are in the aggregate the collector writes next, not in the one on disk."""
    program = Capture(str(tmp_path / "state"))
    (tmp_path / "state-capture").mkdir()
    path = str(tmp_path / "state-capture" / "aggregate.json")
    since = time.time()
    write_json_atomic(path, running_aggregate(since - 0.5, 0))
    writer = threading.Timer(0.3, lambda: write_json_atomic(path, running_aggregate(time.time(), 3)))
    writer.start()
    try:
        section, _reasons = program.capture_report(since=since)
    finally:
        writer.join()
    assert section["events"] == 3 and section["state"] == "running"


def test_collect_asks_a_collector_that_announces_the_flush_signal(tmp_path):
    """The signal brings the write at once; without it collect would wait for the next periodic one (here none)."""
    program = Capture(str(tmp_path / "state"))
    (tmp_path / "state-capture").mkdir()
    path = str(tmp_path / "state-capture" / "aggregate.json")
    write_json_atomic(path, dict(running_aggregate(time.time() - 0.5, 0), flush_signal=FLUSH_SIGNAL.name))
    asked = []

    def answer(_signum, _frame):
        asked.append(time.monotonic())
        # the collector's write a tick after the request
        threading.Timer(TICK, lambda: write_json_atomic(
            path, dict(running_aggregate(time.time(), 5), flush_signal=FLUSH_SIGNAL.name))).start()

    previous = signal.signal(FLUSH_SIGNAL, answer)
    started = time.monotonic()
    try:
        since = program.ask_for_write()
        section, _reasons = program.capture_report(since=since)
    finally:
        signal.signal(FLUSH_SIGNAL, previous)
    assert len(asked) == 1 and section["events"] == 5
    assert time.monotonic() - started < wc.FRESH_AGGREGATE_WAIT_SECONDS


def test_the_collectors_write_happens_while_collect_reads_the_rest(tmp_path):
    """Asked at the start, the collector has written by the time collect reads the aggregate: no wait at the end."""
    program = Capture(str(tmp_path / "state"))
    (tmp_path / "state-capture").mkdir()
    path = str(tmp_path / "state-capture" / "aggregate.json")
    write_json_atomic(path, dict(running_aggregate(time.time() - 0.5, 0), flush_signal=FLUSH_SIGNAL.name))

    def answer(_signum, _frame):
        write_json_atomic(path, dict(running_aggregate(time.time() + TICK, 4), flush_signal=FLUSH_SIGNAL.name))

    previous = signal.signal(FLUSH_SIGNAL, answer)
    try:
        since = program.ask_for_write()
        time.sleep(2 * TICK)   # collect reads the lists, the plans and the log meanwhile
        started = time.monotonic()
        section, _reasons = program.capture_report(since=since)
    finally:
        signal.signal(FLUSH_SIGNAL, previous)
    assert section["events"] == 4 and time.monotonic() - started < TICK / 2


def test_capture_report_does_not_wait_for_a_collector_that_is_not_running(tmp_path, monkeypatch):
    program = Capture(str(tmp_path / "state"))
    (tmp_path / "state-capture").mkdir()
    path = str(tmp_path / "state-capture" / "aggregate.json")
    monkeypatch.setattr(wc, "FRESH_AGGREGATE_WAIT_SECONDS", 60.0)
    for written in (aggregate(), dict(running_aggregate(time.time() - 0.5, 1), pid_start_ticks=-1)):
        write_json_atomic(path, written)
        started = time.monotonic()
        section, _reasons = program.capture_report(since=time.time())
        assert time.monotonic() - started < 5 and section["events"] == written["events"]


def test_capture_report_waits_no_longer_than_its_bound(tmp_path, monkeypatch):
    program = Capture(str(tmp_path / "state"))
    (tmp_path / "state-capture").mkdir()
    monkeypatch.setattr(wc, "FRESH_AGGREGATE_WAIT_SECONDS", 0.3)
    write_json_atomic(str(tmp_path / "state-capture" / "aggregate.json"), running_aggregate(time.time() - 0.5, 2))
    started = time.monotonic()
    section, _reasons = program.capture_report(since=time.time())
    assert 0.3 <= time.monotonic() - started < 5 and section["events"] == 2


class StartingCapture(Capture):
    """start_collector on a clock that moves 1 s per look; the collector says it runs after ``ready_after`` s."""

    def __init__(self, directory, ready_after, alive):
        super().__init__(directory)
        self.clock, self.ready_after, self.alive = 0.0, ready_after, alive
        self.killed = []
        self.command = "conntrack-debug-window.pyz"

        class Scheduler:
            @staticmethod
            def _use_systemd():
                return False

            @staticmethod
            def spawn_detached(command):
                return 4242

        self.scheduler = Scheduler()

    def collector_state(self):
        self.clock += 1.0
        if self.clock >= self.ready_after:
            return None, {"pid": 4242, "namespaces": [{"label": "netns-a", "status": "capturing"}]}, "running"
        return None, None, "stopped"

    def collector_starting(self, how):
        return self.alive


@pytest.mark.parametrize("ready_after, alive, started", [
    (3, True, True),
    (40, True, True),     # a loaded host: alive and still starting after 15 s
    (40, False, False),   # died: given up once 15 s are over
    (500, True, False),   # never ready: given up at the limit
])
def test_start_collector_waits_while_the_collector_is_alive(monkeypatch, tmp_path, ready_after, alive, started):
    capture = StartingCapture(str(tmp_path / "state"), ready_after, alive)
    monkeypatch.setattr(wc.time, "monotonic", lambda: capture.clock)
    monkeypatch.setattr(wc.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(wc.os, "kill", lambda pid, sig: capture.killed.append(pid))
    if started:
        assert capture.start_collector()["state"] == "running" and capture.killed == []
    else:
        with pytest.raises(ConntrackModuleError, match="did not start within"):
            capture.start_collector()
        assert capture.killed == [4242]
        assert capture.clock <= (wc.START_LIMIT_SECONDS if alive else wc.START_TIMEOUT_SECONDS) + 1
