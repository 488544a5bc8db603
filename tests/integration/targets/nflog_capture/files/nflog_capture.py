# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The nfnetlink_log capture against this machine's kernel, in two network namespaces it creates.

usage: nflog_capture.py WORKDIR [CASE...]   (all cases by default; see CASES)

A sender namespace and a receiver namespace joined by a veth pair; the receiver drops invalid packets
with nftables, logs them (nf_conntrack_log_invalid=255) and has nf_log.2/nf_log.10 bound to
nfnetlink_log. The collector runs as its own process (files/collector.py), as in a window.
"""
import collections
import json
import os
import signal
import subprocess
import sys
import time

from ansible_collections.netfilter.conntrack.plugins.module_utils._capture_aggregate import collector_liveness, read_aggregate
from ansible_collections.netfilter.conntrack.plugins.module_utils._invalid_log import parse_message, split_line
from ansible_collections.netfilter.conntrack.plugins.module_utils._netns import InNetns, open_netns
from ansible_collections.netfilter.conntrack.plugins.module_utils._nflog import NFULNL_INSTANCES_PROC, NflogSocket, parse_instances

HERE = os.path.dirname(os.path.abspath(__file__))
TAG = str(os.getpid())[-5:]
SND, RCV = "nfcap-s-" + TAG, "nfcap-r-" + TAG
SND_IF, RCV_IF = "ncs" + TAG, "ncr" + TAG
SRC4, DST4, SRC6, DST6 = "10.213.0.1", "10.213.0.2", "fd00:213::1", "fd00:213::2"
ALL_NETNS = "/proc/sys/net/netfilter/nf_log_all_netns"
RULES = "table inet nflog_capture {\n chain input {\n  type filter hook input priority 0; policy accept;\n  ct state invalid counter drop\n }\n}\n"


def run(*argv, **kwargs):
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE, universal_newlines=True, **kwargs).stdout


def setup():
    run("ip", "netns", "add", SND)
    run("ip", "netns", "add", RCV)
    run("ip", "link", "add", SND_IF, "netns", SND, "type", "veth", "peer", "name", RCV_IF, "netns", RCV)
    for netns, dev, addr4, addr6 in ((SND, SND_IF, SRC4, SRC6), (RCV, RCV_IF, DST4, DST6)):
        run("ip", "-n", netns, "addr", "add", addr4 + "/24", "dev", dev)
        run("ip", "-n", netns, "addr", "add", addr6 + "/64", "dev", dev, "nodad")
        run("ip", "-n", netns, "link", "set", dev, "up")
    run("ip", "netns", "exec", RCV, "nft", "-f", "-", input=RULES)
    bind_loggers("nfnetlink_log")
    run("ip", "netns", "exec", RCV, "sysctl", "-q", "net.netfilter.nf_conntrack_log_invalid=255")


def bind_loggers(ipv4, ipv6=None):
    run("ip", "netns", "exec", RCV, "sysctl", "-q", "net.netfilter.nf_log.2=" + ipv4, "net.netfilter.nf_log.10=" + (ipv6 or ipv4))


def loggers():
    return run("ip", "netns", "exec", RCV, "sysctl", "-n", "net.netfilter.nf_log.2", "net.netfilter.nf_log.10").split()


def cleanup():
    for netns in (SND, RCV):
        subprocess.run(["ip", "netns", "del", netns], stderr=subprocess.DEVNULL, check=False)


def send(*args):
    return int(run("ip", "netns", "exec", SND, sys.executable, os.path.join(HERE, "send_invalid.py"), *args))


def invalid_counter():
    total = 0
    for word in run("ip", "netns", "exec", RCV, "conntrack", "-S").split():
        if word.startswith("invalid="):
            total += int(word.split("=", 1)[1])
    return total


def read_all_netns():
    with open(ALL_NETNS) as handle:
        return handle.read().strip()


class Kmsg:
    """The kernel log from now on, filtered to this test's receiving interface."""

    def __init__(self):
        self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)

    def ours(self):
        lines = []
        while True:
            try:
                record = os.read(self.fd, 8192).decode("utf-8", "replace")
            except BlockingIOError:
                break
            except BrokenPipeError:
                continue
            if ("IN=%s " % RCV_IF) in record:
                lines.append(record.rstrip("\n"))
        os.close(self.fd)
        return lines


class Collector:
    def __init__(self, workdir, name, **overrides):
        self.aggregate_path = os.path.join(workdir, name + ".json")
        self.pcap_dir = os.path.join(workdir, name + "-pcap")
        self.marker = os.path.join(workdir, name + ".budget")
        os.makedirs(self.pcap_dir, exist_ok=True)  # a re-armed collector appends to the same files
        config = {"namespaces": [[RCV, RCV]], "aggregate_path": self.aggregate_path, "pcap_dir": self.pcap_dir,
                  "samples_per_reason": 3, "callback_marker": self.marker,
                  "budgets": {"max_packets": None, "max_rate": None, "max_cpu_share": None}}
        config.update(overrides)
        config_path = os.path.join(workdir, name + ".config.json")
        with open(config_path, "w") as handle:
            json.dump(config, handle)
        self.process = subprocess.Popen([sys.executable, os.path.join(HERE, "collector.py"), config_path], stdout=subprocess.PIPE)
        wait_for(lambda: (read_aggregate(self.aggregate_path) or {}).get("pid") == self.process.pid or self.process.poll() is not None,
                 "the collector's first aggregate")

    def aggregate(self):
        return read_aggregate(self.aggregate_path)

    def namespace(self):
        return self.aggregate()["namespaces"][0]

    def wait_events(self, count):
        wait_for(lambda: self.namespace()["events"] >= count, "%d events in the aggregate" % count, timeout=30)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=10)
        return self.aggregate()


def wait_for(predicate, what, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def check(condition, message):
    if not condition:
        raise AssertionError(message)
    print("ok: " + message)


def case_exact_count(workdir):
    # another test on this host may hold it at 1 for a moment; this case proves the capture works at 0
    wait_for(lambda: read_all_netns() == "0", "nf_log_all_netns to be 0 in the initial namespace", timeout=120)
    all_netns = read_all_netns()
    counter_before = invalid_counter()
    kmsg = Kmsg()
    collector = Collector(workdir, "exact")
    sent = send("synfin", "20000", SRC4, DST4)
    collector.wait_events(sent)
    time.sleep(0.5)  # anything beyond the packets sent would show up now
    final = collector.stop()
    spot = final["namespaces"][0]
    delta = invalid_counter() - counter_before
    check(spot["events"] == sent == 20000, "20,000 SYN+FIN sent, %d events captured" % spot["events"])
    check(spot["events"] == delta, "events equal the invalid counter's delta (%d)" % delta)
    check(spot["by_reason"] == {"invalid tcp flag combination": sent}, "every event has the reason invalid tcp flag combination")
    check(spot["by_interface"] == {"IN=%s OUT=" % RCV_IF: sent}, "every event names the receiving interface")
    check(spot["by_peer"] == {SRC4: sent} and spot["by_family"] == {"ipv4": sent}, "peer and family counted")
    check(spot["loss"]["summary"] == "none" and spot["loss"]["exact"], "no loss: %s" % spot["loss"])
    check(kmsg.ours() == [], "no kernel-log line written for the 20,000 packets")
    check(read_all_netns() == all_netns, "nf_log_all_netns left as it was")
    check(final["state"] == "stopped" and final["stopped_by"] == "signal", "SIGTERM stops the collector with the aggregate flushed")


def case_overflow_is_counted_exactly(workdir):
    collector = Collector(workdir, "overflow", rcvbuf=262144)
    os.kill(collector.process.pid, signal.SIGSTOP)  # a collector that cannot keep up
    sent = send("synfin", "5000", SRC4, DST4)
    os.kill(collector.process.pid, signal.SIGCONT)
    time.sleep(1.5)
    tail = collector.namespace()["loss"]
    check(tail["overruns"] >= 1 and tail["socket_drops"] > 0 and tail["exact"],
          "a socket too small for the burst overflowed, and the drops after the last event are counted: %s" % tail["summary"])
    sent += send("synfin", "10", SRC4, DST4)  # one more event after the loss: its sequence number shows the gap
    collector.wait_events(collector.namespace()["events"] + 10)
    spot = collector.stop()["namespaces"][0]
    loss = spot["loss"]
    check(spot["events"] + loss["events_lost"] == sent,
          "events counted (%d) plus events lost (%d) equal the %d packets sent" % (spot["events"], loss["events_lost"], sent))
    check(loss["sequence_gaps"] == loss["socket_drops"], "the sequence gaps (%d) confirm the socket's drop counter" % loss["sequence_gaps"])


def case_reasons_match_kernel_log(workdir):
    collector = Collector(workdir, "reasons")
    sent = send("mix", SRC4, DST4, SRC6, DST6)
    collector.wait_events(sent)
    final = collector.stop()
    captured = final["namespaces"][0]["by_reason"]
    check(sum(captured.values()) == sent == 5, "the 5 kinds of invalid packets captured: %s" % captured)

    all_netns = read_all_netns()
    bind_loggers("nf_log_ipv4", "nf_log_ipv6")
    kmsg = Kmsg()
    try:
        with open(ALL_NETNS, "w") as handle:  # a child namespace reaches the kernel log only with this
            handle.write("1")
        send("mix", SRC4, DST4, SRC6, DST6)
        time.sleep(0.5)
        lines = kmsg.ours()  # before the flood below overwrites the ring
        watcher = Collector(workdir, "kmsg-budget", namespaces=[], watch_kmsg=True,
                            budgets={"max_packets": None, "max_rate": None, "max_cpu_share": None, "max_kmsg_lines_per_second": 200})
        send("synfin", "2000", SRC4, DST4)
        watcher.process.wait(timeout=15)
    finally:
        with open(ALL_NETNS, "w") as handle:
            handle.write(all_netns)
        bind_loggers("nfnetlink_log")
    logged = collections.Counter()
    for line in lines:
        record = parse_message(split_line(line)[0])
        if record and record.get("ok"):
            logged[record["reason"]] += 1
    check(dict(logged) == captured, "the kernel-log path reports the same reasons: %s" % dict(logged))
    budget = watcher.aggregate()["budget_exceeded"]
    check(budget["name"] == "max_kmsg_lines_per_second" and budget["value"] > 200 and os.path.exists(watcher.marker),
          "kernel-log lines per second end the kernel-log path's capture (%s lines/s)" % budget["value"])
    check(read_all_netns() == all_netns, "nf_log_all_netns restored to %s" % all_netns)
    return final["namespaces"][0]


def case_pcapng(spot):
    output = run("tshark", "-r", spot["pcapng"], "-T", "fields", "-e", "frame.comment", stderr=subprocess.DEVNULL)
    comments = collections.Counter(line for line in output.splitlines())
    check(dict(comments) == spot["by_reason"], "tshark shows each packet's reason as its comment: %s" % dict(comments))


def case_budget(workdir):
    collector = Collector(workdir, "budget", budgets={"max_packets": 1000, "max_rate": None, "max_cpu_share": None})
    send("synfin", "3000", SRC4, DST4)
    collector.process.wait(timeout=15)
    final = collector.aggregate()
    budget = final["budget_exceeded"]
    check(final["state"] == "budget_exceeded" and budget["name"] == "max_packets", "the max_packets budget ended the capture")
    check(budget["value"] == 1001 and budget["limit"] == 1000, "the aggregate says the value (%d, the first packet over) and the limit" % budget["value"])
    with open(collector.marker) as handle:
        marker = json.load(handle)
    delay = marker["ran"] - budget["at"]
    check(marker["budget"]["name"] == "max_packets" and 0 <= delay < 1.0, "the callback ran %.3f s after the budget was exceeded" % delay)
    for name, budgets, count in (
        ("max_rate", {"max_rate": 500, "rate_interval": 1.0}, 5000),
        ("max_cpu_share", {"max_cpu_share": 0.02, "cpu_interval": 1.0}, 20000),
    ):
        limits = dict({"max_packets": None, "max_rate": None, "max_cpu_share": None}, **budgets)
        collector = Collector(workdir, "budget-" + name, budgets=limits)
        send("synfin", str(count), SRC4, DST4)
        collector.process.wait(timeout=30)
        found = collector.aggregate()["budget_exceeded"]
        check(found is not None and found["name"] == name and found["value"] > found["limit"],
              "the %s budget ended the capture (%s over %s)" % (name, found and found["value"], found and found["limit"]))


def case_sigkill(workdir):
    collector = Collector(workdir, "killed", window_id="window-1")
    check(collector_liveness(collector.aggregate()) == "running", "a live collector is running")
    sent = send("synfin", "10", SRC4, DST4)
    collector.wait_events(sent)
    collector.process.kill()
    collector.process.wait()
    check(collector_liveness(collector.aggregate()) == "dead", "after SIGKILL the aggregate shows a dead collector (pid gone, state running)")
    rearmed = Collector(workdir, "killed", window_id="window-1")
    spot = rearmed.namespace()
    check(spot["status"] == "capturing" and rearmed.aggregate()["restarts"] == 1, "the group is free again: a re-armed collector captures")
    sent += send("synfin", "10", SRC4, DST4)
    rearmed.wait_events(sent)
    final = rearmed.stop()
    spot = final["namespaces"][0]
    check(spot["events"] == sent == 20, "the re-armed collector continues the counts (%d events)" % spot["events"])
    check(not spot["loss"]["exact"] and spot["loss"]["unobserved_seconds"] > 0, "the unobserved time is reported: %s" % spot["loss"]["summary"])
    output = run("tshark", "-r", spot["pcapng"], "-T", "fields", "-e", "frame.comment", stderr=subprocess.DEVNULL)
    check(len(output.split()) > 0 and output.count("\n") == 3, "the pcapng (two sections) still holds the first 3 samples only")


def case_group_taken(workdir):
    fd, path = open_netns(RCV)
    with InNetns(fd, path):
        holder = NflogSocket()
    os.close(fd)
    holder.bind()
    before = loggers()
    instances = parse_instances(run("ip", "netns", "exec", RCV, "cat", NFULNL_INSTANCES_PROC))
    check(instances == {0: holder.sock.getsockname()[0]}, "the kernel lists group 0 as held by the first listener's port")
    collector = Collector(workdir, "taken")
    final = collector.stop()
    spot = final["namespaces"][0]
    check(spot["status"] == "group_taken" and "another listener" in spot["error"], "the taken group is reported: %s" % spot["error"])
    check(final["stopped_by"] == "nothing_to_capture", "the collector does not run without a group")
    check(loggers() == before, "the loggers are left as they were")
    check(parse_instances(run("ip", "netns", "exec", RCV, "cat", NFULNL_INSTANCES_PROC)) == instances, "the group still belongs to the same port")
    send("synfin", "1", SRC4, DST4)
    wait_for(holder.receive, "the first listener still receiving")
    print("ok: the first listener keeps the group")
    holder.close()


def case_reasons_and_pcapng(workdir):
    case_pcapng(case_reasons_match_kernel_log(workdir))


CASES = {
    "exact": case_exact_count,
    "overflow": case_overflow_is_counted_exactly,
    "reasons": case_reasons_and_pcapng,
    "budget": case_budget,
    "sigkill": case_sigkill,
    "taken": case_group_taken,
}


def main():
    workdir = sys.argv[1]
    chosen = [name for name in sys.argv[2:] if not name.startswith("-")] or list(CASES)  # ansible-test passes -v
    try:
        setup()
        for name in chosen:
            print("case " + name)
            CASES[name](workdir)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
