# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import select
import signal
import threading
import time

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils import _capture as capture
from ansible_collections.netfilter.conntrack.plugins.module_utils import _capture_aggregate as aggregate
from ansible_collections.netfilter.conntrack.plugins.module_utils import _capture_budget as capture_budget
from ansible_collections.netfilter.conntrack.plugins.module_utils import _nflog as nflog

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "nflog", "nflog-6.18.44.json")
with open(FIXTURE) as _handle:
    CAPTURED = json.load(_handle)
NAMES = {1: "lo", 2: "veth-r"}


def records(name):
    found = []
    for datagram in CAPTURED[name]["datagrams"]:
        for _type, _flags, _seq, payload in nflog.iter_messages(bytes.fromhex(datagram)):
            found.append(nflog.parse_packet(payload))
    return found


def ifname(index):
    return "" if index is None else NAMES.get(index, "if%d" % index)


@pytest.mark.parametrize(
    "index, reason, protocol, family, interface, peer",
    [
        (0, "invalid tcp flag combination", "tcp", "ipv4", "IN=veth-r OUT=", "10.201.0.1"),
        (2, "truncated/malformed packet", "udp", "ipv4", "IN=veth-r OUT=", "10.201.0.1"),
        (3, "invalid icmp type", "icmp", "ipv4", "IN=veth-r OUT=", "10.201.0.1"),
        (4, "invalid tcp flag combination", "tcp", "ipv6", "IN=veth-r OUT=", "fd00:201::1"),
    ],
)
def test_classify_captured_veth_events(index, reason, protocol, family, interface, peer):
    fields = aggregate.classify(records("veth_mix")[index], ifname)
    assert (fields["reason"], fields["protocol"], fields["family"], fields["interface"], fields["peer"]) == (
        reason, protocol, family, interface, peer)


def test_classify_outgoing_event_names_the_destination_as_peer():
    sent_by_host = records("loopback_synfin")[0]
    fields = aggregate.classify(sent_by_host, ifname)
    assert (fields["interface"], fields["peer"]) == ("IN= OUT=lo", "127.0.0.1")


def test_bounded_tables_keep_totals_exact():
    table = {}
    for key in ["a", "b", "c", "a", "d", "e", "a"]:
        aggregate.bounded_add(table, key, 3)
    assert table == {"a": 3, "b": 1, "c": 1, "other": 2}
    assert sum(table.values()) == 7


def _tally_with(events, distinct_peers):
    tally = aggregate.NamespaceTally("ns", "/run/netns/ns", max_keys=8, max_peers=16)
    for number in range(events):
        tally.count({"reason": "r%d" % (number % 3), "protocol": "tcp", "family": "ipv4",
                     "interface": "IN=eth0 OUT=", "peer": "10.0.%d.%d" % (number % distinct_peers // 256, number % 256)})
    return tally


def test_aggregate_size_does_not_grow_with_events():
    small = _tally_with(1000, 1000).as_dict()
    large = _tally_with(100000, 50000).as_dict()
    assert all(len(large[name]) == len(small[name]) for name in aggregate.TABLES)
    assert len(json.dumps(large)) < len(json.dumps(small)) + 100  # only the digits of the counts differ
    assert len(large["by_peer"]) == 16 + 1 and sum(large["by_peer"].values()) == 100000
    assert all(sum(large[name].values()) == large["events"] for name in aggregate.TABLES)


def test_samples_first_n_of_each_reason():
    tally = aggregate.NamespaceTally("ns", None, max_keys=2, max_peers=4)
    taken = [tally.wants_sample(reason, 2) for reason in ["a", "a", "a", "b", "c", "c", "d", "b"]]
    assert taken == [True, True, False, True, True, True, False, True]
    assert tally.samples == 6


@pytest.mark.parametrize(
    "overruns, gaps, drops, unnumbered, after_last, summary, exact",
    [
        (0, 0, 0, 0, False, "none", True),
        (2, 150, 150, 0, False, "150 event(s) lost in 2 socket overrun(s)", True),
        (1, 0, 17480, 0, True, "17480 event(s) lost in 1 socket overrun(s)", True),  # tail loss: only the drop counter sees it
        (1, 0, None, 0, True, "0 event(s) lost in 1 socket overrun(s)", False),  # no drop counter: the tail is unknown
        (1, 40, None, 0, False, "40 event(s) lost in 1 socket overrun(s)", True),
        (0, 0, 0, 3, False, "0 event(s) lost in 0 socket overrun(s)", False),
    ],
)
def test_loss(overruns, gaps, drops, unnumbered, after_last, summary, exact):
    tally = aggregate.NamespaceTally("ns", None, 8, 8)
    tally.overruns, tally.seq_lost, tally.socket_drops = overruns, gaps, drops
    tally.unnumbered, tally.overrun_since_last_event = unnumbered, after_last
    loss = tally.loss()
    assert (loss["summary"], loss["exact"], loss["sequence_gaps"], loss["socket_drops"]) == (summary, exact, gaps, drops)


def test_write_json_atomic_and_read_back(tmp_path):
    path = str(tmp_path / "aggregate.json")
    aggregate.write_json_atomic(path, {"schema": aggregate.SCHEMA, "events": 3})
    assert aggregate.read_aggregate(path) == {"schema": aggregate.SCHEMA, "events": 3}
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.listdir(str(tmp_path)) == ["aggregate.json"]
    (tmp_path / "other.json").write_text('{"schema": "something else"}')
    assert aggregate.read_aggregate(str(tmp_path / "other.json")) is None
    (tmp_path / "link.json").symlink_to(path)
    assert aggregate.read_aggregate(str(tmp_path / "link.json")) is None


def _heartbeat(pid, ticks, state="running", heartbeat=1000.0):
    return {"schema": aggregate.SCHEMA, "state": state, "pid": pid, "pid_start_ticks": ticks, "heartbeat": heartbeat}


def test_collector_liveness():
    me, ticks = os.getpid(), aggregate.process_start_ticks(os.getpid())
    assert ticks is not None
    assert aggregate.collector_liveness(_heartbeat(me, ticks), now=1001.0) == "running"
    assert aggregate.collector_liveness(_heartbeat(me, ticks), now=1100.0) == "dead"  # silent
    assert aggregate.collector_liveness(_heartbeat(me, ticks + 1), now=1001.0) == "dead"  # pid reused
    assert aggregate.collector_liveness(_heartbeat(2 ** 22 + 7, 1), now=1001.0) == "dead"  # gone
    assert aggregate.collector_liveness(_heartbeat(me, ticks, state="budget_exceeded"), now=1100.0) == "finished"
    assert aggregate.collector_liveness(None) == "dead"


def test_rate_over_interval():
    rate = capture_budget.Rate(2.0)
    assert rate.add(0.0, 0) is None
    assert rate.add(1.0, 100) is None
    assert rate.add(2.0, 400) == 200.0
    assert rate.add(3.0, 500) == pytest.approx(200.0)


@pytest.mark.parametrize(
    "budgets, events, name",
    [
        (capture_budget.Budgets(max_packets=10, max_rate=None, max_cpu_share=None), 11, "max_packets"),
        (capture_budget.Budgets(max_packets=10, max_rate=None, max_cpu_share=None), 10, None),
        (capture_budget.Budgets(max_packets=None, max_rate=1.0, rate_interval=0.0, max_cpu_share=None), 5, "max_rate"),
    ],
)
def test_budget_watch(budgets, events, name):
    watch = capture_budget.BudgetWatch(budgets)
    watch.check(100.0, 0, None)
    found = watch.check(101.0, events, None)
    assert (found or {}).get("name") == name
    if found:
        assert found["at"] == 101.0 and found["at_utc"].startswith("1970-01-01T00:01:41")


def test_kmsg_budget():
    watch = capture_budget.BudgetWatch(capture_budget.Budgets(max_packets=None, max_rate=None, max_cpu_share=None, max_kmsg_lines_per_second=50))
    watch.check(10.0, 0, 0)
    assert watch.check(11.0, 0, 40) is None
    assert watch.check(12.0, 0, 200)["name"] == "max_kmsg_lines_per_second"


def test_a_namespace_that_cannot_be_opened_is_reported(tmp_path):
    config = capture.CaptureConfig(namespaces=[("gone", str(tmp_path / "no-such-netns"))], aggregate_path=str(tmp_path / "a.json"))
    summary = capture.run_collector(config, handle_signals=False)
    spot = summary["namespaces"][0]
    assert (summary["state"], summary["stopped_by"], spot["status"]) == ("stopped", "nothing_to_capture", "error")
    assert "does not exist" in spot["error"]
    assert aggregate.read_aggregate(config.aggregate_path)["namespaces"][0]["status"] == "error"


def test_classification_key_separates_what_classify_reads():
    veth = records("veth_mix")
    loopback = records("loopback_synfin")
    keys = [aggregate.classification_key(record) for record in veth + loopback]
    # the two IPv4 SYN+FIN/SYN+RST events differ only in ports and flags: the same fields, the same key
    assert keys[0] == keys[1]
    assert len(set(keys)) == len(keys) - 1


def test_resume_carries_counts_and_reports_the_unobserved_gap():
    first = _tally_with(100, 10)
    first.seq_lost, first.socket_drops, first.overruns = 7, 7, 1
    first.wants_sample("r0", 3)
    previous = json.loads(json.dumps(first.as_dict()))
    second = aggregate.NamespaceTally("ns", "/run/netns/ns", max_keys=8, max_peers=16)
    second.resume(previous, unobserved_seconds=2.5)
    second.count({"reason": "r0", "protocol": "tcp", "family": "ipv4", "interface": "IN=eth0 OUT=", "peer": "10.0.0.1"})
    assert second.events == 101 and second.tables["by_reason"]["r0"] == previous["by_reason"]["r0"] + 1
    assert second.sampled_by_reason == {"r0": 1} and second.samples == 1
    loss = second.loss()
    assert (loss["events_lost"], loss["overruns"], loss["unobserved_seconds"], loss["exact"]) == (7, 1, 2.5, False)
    assert loss["summary"] == "7 event(s) lost in 1 socket overrun(s), 2.5 s not observed (collector restarted)"


@pytest.mark.parametrize(
    "previous, window_id, restarts",
    [
        ({"schema": aggregate.SCHEMA, "window_id": "w", "state": "running", "heartbeat": 90.0, "restarts": 1, "namespaces": []}, "w", 2),
        ({"schema": aggregate.SCHEMA, "window_id": "w", "state": "budget_exceeded", "heartbeat": 90.0, "namespaces": []}, "w", 0),
        ({"schema": aggregate.SCHEMA, "window_id": "other", "state": "running", "heartbeat": 90.0, "namespaces": []}, "w", 0),
        ({"schema": aggregate.SCHEMA, "window_id": None, "state": "running", "heartbeat": 90.0, "namespaces": []}, None, 0),
        (None, "w", 0),
    ],
)
def test_collector_resumes_only_a_dead_collector_of_the_same_window(previous, window_id, restarts):
    collector = capture._Collector(capture.CaptureConfig(namespaces=[], aggregate_path="/nonexistent", window_id=window_id))
    collector.resume(previous)
    assert collector.restarts == restarts


def test_collector_writes_its_aggregate_soon_after_the_flush_signal(tmp_path):
    """collect's SIGUSR1 brings a write within about two ticks, where the periodic one would come a minute later."""
    config = capture.CaptureConfig(namespaces=[], aggregate_path=str(tmp_path / "aggregate.json"), flush_interval=60.0)
    collector = capture._Collector(config)
    writes = []
    original_flush = collector.flush

    def timed_flush():
        writes.append(time.monotonic())
        return original_flush()

    collector.flush = timed_flush
    previous = capture._install_signals(collector)
    ask = threading.Timer(0.3, os.kill, (os.getpid(), capture.FLUSH_SIGNAL))
    stop = threading.Timer(1.2, setattr, (collector, "stop_requested", True))
    started = time.monotonic()
    try:
        ask.start()
        stop.start()
        capture._loop(collector, None)
    finally:
        ask.join()
        stop.join()
        capture._restore_signals(collector, previous)
    after_start = [round(moment - started, 2) for moment in writes]
    # the loop's first write, then the one asked for: a full tick after the signal, well before the stop
    assert len(after_start) == 2 and after_start[0] < 0.2 and 0.3 + capture.TICK <= after_start[1] < 0.9, after_start
    assert aggregate.read_aggregate(config.aggregate_path)["flush_signal"] == "SIGUSR1"


def test_a_collector_without_the_handler_does_not_announce_the_flush_signal(tmp_path):
    config = capture.CaptureConfig(namespaces=[], aggregate_path=str(tmp_path / "aggregate.json"))
    assert capture._Collector(config).aggregate()["flush_signal"] is None


def test_an_idle_collector_sleeps_until_its_next_write(tmp_path, monkeypatch):
    """Nothing to read: one poll per aggregate write (once a second), not one per TICK."""
    config = capture.CaptureConfig(namespaces=[], aggregate_path=str(tmp_path / "aggregate.json"))
    collector = capture._Collector(config)
    waits = []
    real_poll = select.poll

    class RecordingPoll:
        def __init__(self):
            self.poller = real_poll()

        def register(self, fd, events):
            self.poller.register(fd, events)

        def poll(self, timeout):
            waits.append(timeout)
            return self.poller.poll(timeout)

    monkeypatch.setattr(capture.select, "poll", RecordingPoll)
    stop = threading.Timer(2.5, setattr, (collector, "stop_requested", True))
    stop.start()
    try:
        capture._loop(collector, None)
    finally:
        stop.join()
    assert 3 <= len(waits) <= 5, waits
    assert all(wait <= capture.IDLE_WAIT * 1000 for wait in waits)


def test_a_stop_signal_ends_the_poll_at_once(tmp_path):
    config = capture.CaptureConfig(namespaces=[], aggregate_path=str(tmp_path / "aggregate.json"), flush_interval=60.0)
    collector = capture._Collector(config)
    previous = capture._install_signals(collector)
    stop = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
    started = time.monotonic()
    try:
        stop.start()
        capture._loop(collector, None)
    finally:
        stop.join()
        capture._restore_signals(collector, previous)
    assert collector.stopped_by == "signal" and time.monotonic() - started < 0.3 + capture.TICK
    assert signal.getsignal(signal.SIGTERM) == previous[signal.SIGTERM] and collector.wakeup_fd is None
