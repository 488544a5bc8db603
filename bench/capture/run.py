#!/usr/bin/env python
# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Evidence capture, netlink against kernel log: invalid packets sent into a namespace as fast as possible.

Run as root from the repository (or with the collection on ANSIBLE_COLLECTIONS_PATH):

    python3 bench/capture/run.py [--sizes 20000 200000] [--json out.json]

It creates two namespaces joined by a veth pair, drops invalid packets in the receiver with nftables
and sets nf_conntrack_log_invalid=255 there, then for each size and each path:

* netlink: nf_log.2 of the receiver bound to nfnetlink_log, the collector (_capture.run_collector) in
  its own process; SIGTERM once the packets are counted or 5 s after the sender ended;
* kernel log: nf_log.2 bound to nf_log_ipv4 and nf_log_all_netns=1 in the initial namespace (the only
  way a child namespace reaches the kernel log; restored afterwards), the same collector watching
  /dev/kmsg only, as the kernel-log fallback would.

Reported: events counted against packets sent (and the loss the collector reports), kernel-log lines
written (exact, from /dev/kmsg sequence numbers), the collector's CPU seconds per 100,000 events and its
peak RSS, and then, in a separate run per path, the time from a budget being exceeded (max_packets at
half the size for netlink, 1,000 kernel-log lines per second for the kernel log) to its callback having run.
The kernel-log path floods the host's kernel log with up to 200,000 lines: run it on a test machine.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SENDER = os.path.join(REPO, "tests", "integration", "targets", "nflog_capture", "files", "send_invalid.py")
TAG = str(os.getpid())[-5:]
SND, RCV = "nfbench-s-" + TAG, "nfbench-r-" + TAG
SND_IF, RCV_IF = "nbs" + TAG, "nbr" + TAG
SRC, DST = "10.214.0.1", "10.214.0.2"
ALL_NETNS = "/proc/sys/net/netfilter/nf_log_all_netns"
RULES = "table inet nfbench {\n chain input {\n  type filter hook input priority 0; policy accept;\n  ct state invalid counter drop\n }\n}\n"
NO_BUDGETS = {"max_packets": None, "max_rate": None, "max_cpu_share": None}


def run(*argv, **kwargs):
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE, universal_newlines=True, **kwargs).stdout


def setup():
    run("ip", "netns", "add", SND)
    run("ip", "netns", "add", RCV)
    run("ip", "link", "add", SND_IF, "netns", SND, "type", "veth", "peer", "name", RCV_IF, "netns", RCV)
    for netns, dev, address in ((SND, SND_IF, SRC), (RCV, RCV_IF, DST)):
        run("ip", "-n", netns, "addr", "add", address + "/24", "dev", dev)
        run("ip", "-n", netns, "link", "set", dev, "up")
    run("ip", "netns", "exec", RCV, "nft", "-f", "-", input=RULES)
    run("ip", "netns", "exec", RCV, "sysctl", "-q", "net.netfilter.nf_conntrack_log_invalid=255")


def cleanup():
    for netns in (SND, RCV):
        subprocess.run(["ip", "netns", "del", netns], stderr=subprocess.DEVNULL, check=False)


def bind_logger(name):
    run("ip", "netns", "exec", RCV, "sysctl", "-q", "net.netfilter.nf_log.2=" + name)


def collector_main(config_path):
    """The collector process: run_collector with the config, the callback writing when it ran."""
    from ansible_collections.netfilter.conntrack.plugins.module_utils._capture import run_collector
    from ansible_collections.netfilter.conntrack.plugins.module_utils._capture_config import config_from_dict

    with open(config_path) as handle:
        raw = json.load(handle)
    marker = raw.pop("callback_marker")

    def on_budget_exceeded(budget):
        with open(marker, "w") as handle:
            json.dump({"ran": time.time(), "budget": budget}, handle)

    run_collector(config_from_dict(raw), on_budget_exceeded)


def start_collector(workdir, name, netlink, budgets):
    config = {
        "namespaces": [[RCV, RCV]] if netlink else [],
        "aggregate_path": os.path.join(workdir, name + ".json"),
        "pcap_dir": workdir,
        "samples_per_reason": 20,
        "watch_kmsg": not netlink,
        "budgets": budgets,
        "callback_marker": os.path.join(workdir, name + ".callback"),
    }
    path = os.path.join(workdir, name + ".config.json")
    with open(path, "w") as handle:
        json.dump(config, handle)
    env = dict(os.environ, PYTHONPATH=collection_root())
    process = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--collector", path], env=env)
    deadline = time.monotonic() + 10
    while not os.path.exists(config["aggregate_path"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return process, config


def read_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def send(count):
    started = time.monotonic()
    sent = int(run("ip", "netns", "exec", SND, sys.executable, SENDER, "synfin", str(count), SRC, DST))
    return sent, time.monotonic() - started


def invalid_counter():
    return sum(int(word.split("=", 1)[1]) for word in run("ip", "netns", "exec", RCV, "conntrack", "-S").split() if word.startswith("invalid="))


def backlog_drops():
    """Packets dropped because a CPU's input backlog was full (second column of softnet_stat, host-wide)."""
    with open("/proc/net/softnet_stat") as handle:
        return sum(int(line.split()[1], 16) for line in handle if line.strip())


def wait_counted(config, netlink, sent):
    """Until the collector has seen ``sent`` (events or kernel-log lines) or nothing moved for 3 s."""
    key = "events" if netlink else "kmsg_lines"
    last, still_since = -1, time.monotonic()
    while time.monotonic() - still_since < 3:
        value = (read_json(config["aggregate_path"]) or {}).get(key) or 0
        if value >= sent:
            return
        if value != last:
            last, still_since = value, time.monotonic()
        time.sleep(0.2)


def measure(workdir, size, netlink):
    name = "%s-%d" % ("netlink" if netlink else "kmsg", size)
    process, config = start_collector(workdir, name, netlink, NO_BUDGETS)
    invalid_before, drops_before = invalid_counter(), backlog_drops()
    sent, send_seconds = send(size)
    wait_counted(config, netlink, sent)
    invalid_delta, drops = invalid_counter() - invalid_before, backlog_drops() - drops_before
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    final = read_json(config["aggregate_path"])
    counted = final["events"] if netlink else final["kmsg_lines_read"]
    spot = final["namespaces"][0] if netlink else None
    return {
        "path": "netlink" if netlink else "kernel log",
        "sent": sent,
        "send_seconds": round(send_seconds, 2),
        "counted": counted,
        "invalid_counter_delta": invalid_delta,
        "backlog_drops": drops,
        "loss": spot["loss"]["summary"] if spot else None,
        "kmsg_lines_written": final["kmsg_lines"] if not netlink else None,
        "cpu_seconds": final["cpu_seconds"],
        "cpu_per_100k": round(final["cpu_seconds"] * 100000 / max(counted, 1), 2),
        "max_rss_kib": final["max_rss_kib"],
    }


def measure_budget(workdir, size, netlink):
    name = "%s-budget-%d" % ("netlink" if netlink else "kmsg", size)
    budgets = dict(NO_BUDGETS)
    if netlink:
        budgets["max_packets"] = size // 2
    else:
        budgets["max_kmsg_lines_per_second"] = 1000
    process, config = start_collector(workdir, name, netlink, budgets)
    send(size)
    process.wait(timeout=60)
    final = read_json(config["aggregate_path"])
    marker = read_json(config["callback_marker"])
    if not marker:
        return {"budget": None}
    budget = final["budget_exceeded"]
    return {"budget": budget["name"], "value": budget["value"], "callback_after_seconds": round(marker["ran"] - budget["at"], 4)}


def collection_root():
    for path in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(":") + [os.path.join(REPO, "..", "..", "..")]:
        if os.path.isfile(os.path.join(path, "ansible_collections", "netfilter", "conntrack", "plugins", "module_utils", "_capture.py")):
            return os.path.abspath(path)
    raise SystemExit("netfilter.conntrack not found: set ANSIBLE_COLLECTIONS_PATH to the directory holding ansible_collections/")


def kernel_log_leg(workdir, sizes):
    with open(ALL_NETNS) as handle:
        before = handle.read().strip()
    bind_logger("nf_log_ipv4")
    try:
        if before != "1":
            with open(ALL_NETNS, "w") as handle:
                handle.write("1")
        return [(measure(workdir, size, False), measure_budget(workdir, size, False)) for size in sizes]
    finally:
        with open(ALL_NETNS) as handle:
            still_ours = handle.read().strip() == "1"
        if before != "1" and still_ours:  # someone who changed it meanwhile keeps their value
            with open(ALL_NETNS, "w") as handle:
                handle.write(before)
        bind_logger("nfnetlink_log")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20000, 200000])
    parser.add_argument("--json")
    parser.add_argument("--collector", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.collector:
        collector_main(args.collector)
        return
    load_before = os.getloadavg()
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "kernel": os.uname().release, "cpus": os.cpu_count()}
    workdir = tempfile.mkdtemp(prefix="nfct-bench-capture.")
    try:
        setup()
        bind_logger("nfnetlink_log")
        results["netlink"] = [(measure(workdir, size, True), measure_budget(workdir, size, True)) for size in args.sizes]
        results["kernel_log"] = kernel_log_leg(workdir, args.sizes)
    finally:
        cleanup()
        subprocess.run(["rm", "-rf", workdir], check=False)
    results["load_before"], results["load_after"] = [round(x, 2) for x in load_before], [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(results, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
