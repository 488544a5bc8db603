# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reproduce each verdict for real in network namespaces and check that the engine names it.

usage: reproduce.py SEND_PY [CASE ...]   (SEND_PY: the diagnosis target's packet sender; needs root)

Each case takes the namespace's statistics baseline as enable does, makes the problem happen, then gathers the
evidence with the functions the host program's collect command calls (conntrack facts, the table make-up, the plan,
the kernel log) and builds the report with build_report. It fails unless the expected verdict is in the report.
"""
import ctypes
import json
import os
import socket
import subprocess
import sys
import threading
import time

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack_facts import gather
from ansible_collections.netfilter.conntrack.plugins.module_utils._ctnetlink import CtnetlinkSocket, sum_stats
from ansible_collections.netfilter.conntrack.plugins.module_utils._debug_report import build_report
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import ProcessHost
from ansible_collections.netfilter.conntrack.plugins.module_utils._kernel_log import read_invalid_log
from ansible_collections.netfilter.conntrack.plugins.module_utils._plan import plan_from, probe, read_outside
from ansible_collections.netfilter.conntrack.plugins.module_utils._table_makeup import read_makeup

CLONE_NEWNET = 0x40000000
ALL_NETNS = "/proc/sys/net/netfilter/nf_log_all_netns"
TRACK = "table inet vd { chain in { type filter hook input priority 0; ct state new counter; }\n" \
        " chain out { type filter hook output priority 0; ct state new counter; }\n}\n"
SEND_PY = sys.argv[1]
CREATED = []


def sh(*argv, stdin=None):
    subprocess.run(argv, input=stdin, text=True, check=True)


def netns(name, ruleset=TRACK):
    sh("ip", "netns", "add", name)
    CREATED.append(name)
    sh("ip", "-n", name, "link", "set", "lo", "up")
    sh("ip", "netns", "exec", name, "nft", "-f", "-", stdin=ruleset)
    if ruleset:  # what enable sets (and, from 6.17, binds the kernel-log logger where none is bound)
        nsctl(name, "nf_conntrack_log_invalid", "255")


def nsctl(name, key, value):
    sh("ip", "netns", "exec", name, "sysctl", "-qw", f"net.netfilter.{key}={value}")


class Inside:
    """This process's network namespace switched to /run/netns/NAME for the block (and back)."""

    def __init__(self, name):
        self.name = name
        self.libc = ctypes.CDLL("libc.so.6", use_errno=True)

    def __enter__(self):
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if self.libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(target)

    def __exit__(self, *exc):
        self.libc.setns(self.home, CLONE_NEWNET)
        os.close(self.home)


def stats_total():
    with CtnetlinkSocket() as sock:
        return sum_stats(sock.stats_cpu())


def collect(name, started, started_monotonic, baseline):
    """The report of namespace NAME as collect builds it, with its window opened at ``started``."""
    host, label, outside = ProcessHost(), f"netns-{name}", read_outside()
    with Inside(name):
        facts, dummy = gather(netns=f"/run/netns/{name}")
        makeup = read_makeup()
        plan = plan_from(probe(host, name, outside), {})
    now = facts["stats"]["total"]
    window = {"active": True, "enabled_at": started, "enabled_at_monotonic": started_monotonic,
              "stats_baseline": baseline, "stats_delta": {k: v - baseline.get(k, 0) for k, v in now.items()}}
    status = {"namespaces": {label: window}, "order": [label], "now": time.time(), "nf_log_all_netns": outside[0]}
    invalid_log = read_invalid_log(host, source="kmsg", since_monotonic=started_monotonic, max_samples=200,
                                   interfaces={label: plan["interfaces"]})
    return build_report(name, status, [facts], invalid_log, acting_in_netns=True, plans={label: plan},
                        makeups={label: makeup})


def run_case(name, traffic, expected, absent=(), exactly=False):
    with Inside(name):
        baseline = stats_total()
    started, started_monotonic = time.time(), time.clock_gettime(time.CLOCK_MONOTONIC)
    clock = time.monotonic()
    traffic()
    report = collect(name, started, started_monotonic, baseline)
    verdicts = report["verdicts"][f"netns-{name}"]
    if os.environ.get("VERDICT_REPORTS"):  # kept for the constructed groups test
        with open(os.path.join(os.environ["VERDICT_REPORTS"], name), "w", encoding="utf-8") as handle:
            json.dump(report, handle)
    ids = [one["id"] for one in verdicts]
    print(f"{name}: {ids} in {time.monotonic() - clock:.1f} s")
    print(json.dumps(verdicts, indent=1))
    assert expected in ids, f"{name}: expected {expected}, the engine named {ids}"
    assert not set(absent) & set(ids), f"{name}: {set(absent) & set(ids)} must not be named"
    assert not exactly or ids == [expected], f"{name}: only {expected} expected, got {ids}"
    return verdicts


def race():
    """The kernel's conntrack clash selftest, in Python: several threads send the first packet of the same UDP flow
    at once (one socket, one 5-tuple) through a DNAT rule that gives each packet another backend."""
    netns("vd-race", "table ip vd { chain out { type nat hook output priority -100;"
                     " udp dport 53 dnat to numgen inc mod 2 map { 0 : 127.0.0.2, 1 : 127.0.0.3 }; }\n}\n")

    def traffic():
        with Inside("vd-race"):
            before = stats_total()
            deadline = time.monotonic() + 60
            # The race is won or lost by chance (about 1 in 100 rounds here): rounds until the kernel has shown it
            # twice the engine's minimum, or a minute.
            while time.monotonic() < deadline and sum(
                    stats_total().get(key, 0) - before.get(key, 0) for key in ("insert_failed", "clash_resolve")) < 10:
                race_rounds(500)
    run_case("vd-race", traffic, "udp_insert_race")


def race_rounds(rounds):
    """Rounds of 8 threads sending the first packet of one new flow from one socket at once."""
    for dummy in range(rounds):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        barrier = threading.Barrier(8)

        def send(sock=sock, barrier=barrier):
            barrier.wait()
            sock.sendto(b"\x12\x34 query", ("127.0.0.1", 53))
        threads = [threading.Thread(target=send) for dummy in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sock.close()


def table_full():
    """The global nf_conntrack_max is lowered to 40 for about a second (send.py restores it, compare-and-restore)
    while 45 TCP connections are opened in the namespace: the kernel logs 'table full' for it and drops SYNs."""
    netns("vd-full")
    run_case("vd-full", lambda: sh("python3", SEND_PY, "fill", "vd-full", "40", "8081", "45"), "table_full")


def veth(sender, peer, net):
    sh("ip", "link", "add", f"{sender}-v", "netns", sender, "type", "veth", "peer", "name", f"{sender}-p", "netns", peer)
    sh("ip", "-n", sender, "addr", "add", f"{net}.1/24", "dev", f"{sender}-v")
    sh("ip", "-n", peer, "addr", "add", f"{net}.2/24", "dev", f"{sender}-p")
    sh("ip", "-n", sender, "link", "set", f"{sender}-v", "up")
    sh("ip", "-n", peer, "link", "set", f"{sender}-p", "up")


def out_of_window(be_liberal):
    """ACKs far outside the window of an established connection, sent from the tracking namespace; logged there
    (nf_conntrack_log_invalid=255, nf_log_all_netns=1) unless be_liberal=1 accepts them (the blinded window)."""
    sender, net = ("vd-blind", "10.197.1") if be_liberal else ("vd-oow", "10.197.0")
    netns(sender)
    veth(sender, "vd-peer", net)
    nsctl(sender, "nf_conntrack_tcp_be_liberal", "1" if be_liberal else "0")

    def send():
        sh("ip", "netns", "exec", sender, "python3", SEND_PY, "oow", f"{net}.1", f"{net}.2", "8766", "10", "vd-peer")
    if be_liberal:
        run_case(sender, send, "blinded_window", absent=("tcp_out_of_window",))
    else:
        run_case(sender, send, "tcp_out_of_window", absent=("blinded_window",))


def unreplied_udp():
    """Clients keep sending to a DNAT'd UDP service whose backend never answers: unreplied entries pile up."""
    netns("vd-stale", "table ip vd { chain out { type nat hook output priority -100;"
                      " ip daddr 10.96.0.10 udp dport 53 dnat to 10.96.0.99; }\n}\n")
    # A veth pair whose far end has no address: the service network routes, the backend never answers ARP.
    sh("ip", "-n", "vd-stale", "link", "add", "vd-s0", "type", "veth", "peer", "name", "vd-s1")
    sh("ip", "-n", "vd-stale", "addr", "add", "10.96.0.1/24", "dev", "vd-s0")
    sh("ip", "-n", "vd-stale", "link", "set", "vd-s0", "up")
    sh("ip", "-n", "vd-stale", "link", "set", "vd-s1", "up")

    def traffic():
        with Inside("vd-stale"):
            clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for dummy in range(6)]
            for dummy in range(3):
                for client in clients:
                    client.sendto(b"query", ("10.96.0.10", 53))
                time.sleep(0.2)
            for client in clients:
                client.close()
    verdicts = run_case("vd-stale", traffic, "stale_udp_entries")
    stale = next(one for one in verdicts if one["id"] == "stale_udp_entries")
    assert stale["numbers"]["destinations"][0]["nat_target"] == "10.96.0.99", stale


def quiet():
    """Ordinary TCP connections that open and close: nothing to name."""
    netns("vd-quiet")

    def traffic():
        with Inside("vd-quiet"):
            server = socket.create_server(("127.0.0.1", 8082))
            for dummy in range(5):
                client = socket.create_connection(("127.0.0.1", 8082))
                conn, dummy_addr = server.accept()
                client.sendall(b"hello")
                conn.recv(5)
                client.close()
                conn.close()
            server.close()
    run_case("vd-quiet", traffic, "nothing_wrong", exactly=True)


CASES = {"race": race, "table_full": table_full, "out_of_window": lambda: out_of_window(False),
         "blinded": lambda: out_of_window(True), "unreplied_udp": unreplied_udp, "quiet": quiet}


def main():
    wanted = sys.argv[2:] or list(CASES)
    with open(ALL_NETNS, encoding="ascii") as handle:
        all_netns = handle.read().strip()
    try:
        # Built in on some kernels (no module to load): setting log_invalid then binds it from 6.17.
        subprocess.run(["modprobe", "-q", "nf_log_syslog"], check=False)
        with open(ALL_NETNS, "w", encoding="ascii") as handle:
            handle.write("1")
        if {"out_of_window", "blinded"} & set(wanted):
            netns("vd-peer", "")
        for name in wanted:
            CASES[name]()
    finally:
        for name in reversed(CREATED):
            subprocess.run(["ip", "netns", "del", name], check=False)
        sh("python3", SEND_PY, "restore", "net.netfilter.nf_log_all_netns", "1", all_netns)
    print(f"verdicts: {len(wanted)} case(s) passed")


if __name__ == "__main__":
    main()
