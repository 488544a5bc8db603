# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The netlink capture through real debug windows of the host program, in network namespaces it creates.

usage: window_capture.py WORKDIR [CASE...]   (all cases by default; see CASES)

A sender namespace and a receiver namespace joined by a veth pair; the receiver drops invalid packets with
nftables. Every case opens a window in the receiver with the program built from the collection under test
(``enable --capture``), with a private state directory, and ends it.
"""
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from ansible_collections.netfilter.conntrack.plugins.module_utils._capture_aggregate import process_start_ticks, read_aggregate
from ansible_collections.netfilter.conntrack.plugins.module_utils._netns import InNetns, open_netns
from ansible_collections.netfilter.conntrack.plugins.module_utils._nflog import NflogSocket

HERE = os.path.dirname(os.path.abspath(__file__))
SEND_INVALID = os.path.join(HERE, "..", "..", "nflog_capture", "files", "send_invalid.py")
TAG = str(os.getpid())[-5:]
SND, RCV = "wcap-s-" + TAG, "wcap-r-" + TAG
SND_IF, RCV_IF = "wcs" + TAG, "wcr" + TAG
SRC4, DST4 = "10.214.0.1", "10.214.0.2"
ALL_NETNS = "/proc/sys/net/netfilter/nf_log_all_netns"
LOGGERS = ("net.netfilter.nf_log.2", "net.netfilter.nf_log.10", "net.netfilter.nf_conntrack_log_invalid")
RULES = "table inet window_capture {\n chain input {\n  type filter hook input priority 0; policy accept;\n  ct state invalid counter drop\n }\n}\n"
NO_BUDGETS = {"max_packets": None, "max_rate": None, "max_cpu_share": None}
WORK = sys.argv[1]
STATE = os.path.join(WORK, "state")
CAPTURES = STATE + "-capture"
PROGRAM = os.path.join(WORK, "conntrack-debug-window.pyz")


def run(*argv, **kwargs):
    kwargs.setdefault("stdout", subprocess.PIPE)
    return subprocess.run(argv, check=True, universal_newlines=True, **kwargs).stdout


def program(*argv, check_rc=True):
    proc = subprocess.run([sys.executable, PROGRAM, "--state-dir=" + STATE] + list(argv), stdout=subprocess.PIPE,
                          universal_newlines=True, check=False)
    answer = json.loads(proc.stdout)
    if check_rc and proc.returncode != 0:
        raise AssertionError("%s failed: %s" % (argv[0], json.dumps(answer, indent=1)))
    return answer


def enable(capture, *extra):
    return program("enable", "--netns", RCV, "--duration", "300", "--log-invalid", "all", "--family", "ipv4",
                   "--family", "ipv6", "--backend", "auto", "--capture", json.dumps(capture), *extra)


def setup():
    run("ip", "netns", "add", SND)
    run("ip", "netns", "add", RCV)
    run("ip", "link", "add", SND_IF, "netns", SND, "type", "veth", "peer", "name", RCV_IF, "netns", RCV)
    for netns, dev, addr in ((SND, SND_IF, SRC4), (RCV, RCV_IF, DST4)):
        run("ip", "-n", netns, "addr", "add", addr + "/24", "dev", dev)
        run("ip", "-n", netns, "link", "set", dev, "up")
    run("ip", "netns", "exec", RCV, "nft", "-f", "-", input=RULES)


def cleanup():
    subprocess.run([sys.executable, PROGRAM, "--state-dir=" + STATE, "revert", "--all"], stdout=subprocess.DEVNULL,
                   check=False)
    for netns in (SND, RCV):
        subprocess.run(["ip", "netns", "del", netns], stderr=subprocess.DEVNULL, check=False)


def values():
    return run("ip", "netns", "exec", RCV, "sysctl", "-n", *LOGGERS).split("\n")[:3]


def send(count):
    return int(run("ip", "netns", "exec", SND, sys.executable, SEND_INVALID, "synfin", str(count), SRC4, DST4))


def aggregate():
    return read_aggregate(os.path.join(CAPTURES, "aggregate.json")) or {}


def events():
    return sum(one["events"] for one in aggregate().get("namespaces") or [])


def wait_for(predicate, what, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def check(condition, message):
    if not condition:
        raise AssertionError(message)
    print("ok: " + message)


class Kmsg:
    """Kernel-log records from now on that name this test's receiving interface."""

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
                lines.append(record)
        os.close(self.fd)
        return lines


def case_exact_count_child_without_all_netns():
    # Another target may hold nf_log_all_netns=1 for a while; the case means most when it is 0.
    wait_for(lambda: run("cat", ALL_NETNS).strip() == "0", "nf_log_all_netns to be 0", timeout=120)
    all_netns, before, kmsg = run("cat", ALL_NETNS).strip(), values(), Kmsg()
    answer = enable({"mode": "auto", "budgets": NO_BUDGETS}, "--all-netns", "on")
    window = answer["namespaces"]["netns-" + RCV]
    check(window["capture"]["path"] == "netlink", "auto takes the netlink path here: %s" % window["capture"]["why"])
    check(values()[:2] == ["nfnetlink_log", "nfnetlink_log"], "the namespace's loggers are bound to nfnetlink_log")
    check("shared" not in answer and not any("all_netns" in json.dumps(step) for step in answer["steps"]),
          "nf_log_all_netns is not requested for a namespace on the netlink path (warning: %s)" % answer.get("warnings"))
    sent = send(20000)
    wait_for(lambda: events() >= sent, "%d events in the aggregate" % sent, timeout=30)
    time.sleep(0.5)
    spot = aggregate()["namespaces"][0]
    check(spot["events"] == sent and spot["by_reason"] == {"invalid tcp flag combination": sent},
          "%d invalid packets through a window counted exactly: %s" % (sent, spot["by_reason"]))
    check(spot["loss"]["summary"] == "none", "no loss")
    check(run("cat", ALL_NETNS).strip() == all_netns, "nf_log_all_netns left at %s in the initial namespace" % all_netns)
    report = program("collect", "--netns", RCV, "--report-host", "t")["report"]
    capture = report["capture"]["namespaces"]["netns-" + RCV]
    check(capture["events"] == sent and capture["loss"] == "none" and capture["path"] == "netlink"
          and report["capture"]["collector"] == "running", "collect reports the exact counts, no loss and the path")
    program("revert", "--netns", RCV)
    check(values() == before, "revert restores the loggers and log_invalid bit for bit: %s" % before)
    lines = kmsg.ours()
    check(lines == [], "0 kernel-log lines written for the window's namespace (found %d)" % len(lines))
    check(not os.path.exists(STATE) and os.path.exists(capture["pcapng"]),
          "the state directory is gone and the pcapng stays where the report says: %s" % capture["pcapng"])
    if shutil.which("tshark"):
        output = run("tshark", "-r", capture["pcapng"], "-T", "fields", "-e", "frame.comment",
                     stderr=subprocess.DEVNULL)
        check(collections.Counter(output.split("\n")[:-1]) == {"invalid tcp flag combination": 20},
              "tshark reads the pcapng, each packet with its reason as comment")


def case_budget_ends_the_window():
    before = values()
    enable({"mode": "netlink", "budgets": dict(NO_BUDGETS, max_packets=1000)})
    sender = subprocess.Popen(["ip", "netns", "exec", SND, sys.executable, SEND_INVALID, "synfin", "5000", SRC4, DST4],
                              stdout=subprocess.DEVNULL)
    wait_for(lambda: values() == before, "the window to be reverted by the budget", timeout=15)
    restored_at = time.time()
    sender.wait(timeout=30)
    wait_for(lambda: aggregate().get("state") == "budget_exceeded" and aggregate().get("callback_seconds") is not None,
             "the collector's last aggregate")
    final = aggregate()
    budget = final["budget_exceeded"]
    check(budget["name"] == "max_packets" and budget["limit"] == 1000, "the max_packets budget ended the window")
    took = restored_at - budget["at"]
    print("measured: budget exceeded -> values restored in %.3f s (the collector's revert took %.3f s)"
          % (took, final["callback_seconds"]))
    check(took <= 1.0, "everything restored within 1 s of the budget (%.3f s)" % took)
    check(not os.path.exists(STATE), "no window, no state directory left")
    wait_for(lambda: process_start_ticks(final["pid"]) != final["pid_start_ticks"], "the collector to exit")
    report = program("collect", "--netns", RCV)["report"]["capture"]
    check(report["ended_by_budget"] and report["budget_exceeded"]["name"] == "max_packets",
          "collect says a budget ended the window, which one and when (%s)" % report["budget_exceeded"]["at_utc"])


def case_sigkill_noticed_and_rearmed():
    enable({"mode": "netlink", "budgets": NO_BUDGETS})
    send(1000)
    wait_for(lambda: events() >= 1000, "1000 events")
    first = aggregate()
    os.kill(first["pid"], signal.SIGKILL)
    wait_for(lambda: process_start_ticks(first["pid"]) != first["pid_start_ticks"], "the collector to die")
    status = program("status", "--netns", RCV)
    check(any("capture collector is NOT running" in problem for problem in status.get("problems") or []),
          "status notices the killed collector")
    warnings = program("collect", "--netns", RCV).get("warnings") or []
    check(any("capture collector is NOT running" in warning for warning in warnings), "collect warns of it")
    answer = enable({"mode": "netlink", "budgets": NO_BUDGETS})
    check(any("capture collector was NOT running" in warning for warning in answer.get("warnings") or []),
          "the next enable says it re-armed the collector")
    again = aggregate()
    check(again["pid"] != first["pid"] and again["restarts"] == 1, "a new collector runs (restarts 1)")
    send(1000)
    wait_for(lambda: events() >= 2000, "2000 events after the restart")
    check(aggregate()["namespaces"][0]["events"] == 2000, "the counts carry on across the restart")
    program("revert", "--netns", RCV)
    wait_for(lambda: process_start_ticks(again["pid"]) != again["pid_start_ticks"], "revert to stop the collector")


def case_revert_restores_bit_for_bit():
    run("ip", "netns", "exec", RCV, "sysctl", "-q", "net.netfilter.nf_log.2=NONE", "net.netfilter.nf_log.10=nf_log_ipv6",
        "net.netfilter.nf_conntrack_log_invalid=17")
    before = values()
    enable({"mode": "netlink", "budgets": NO_BUDGETS})
    check(values() == ["nfnetlink_log", "nfnetlink_log", "255"], "enable bound nfnetlink_log and log_invalid all")
    program("revert", "--netns", RCV)
    check(values() == before, "revert restores %s exactly" % before)


def case_group_taken_falls_back():
    fd, path = open_netns(RCV)
    with InNetns(fd, path):
        holder = NflogSocket()
    os.close(fd)
    holder.bind()
    try:
        before = values()
        refused = program("enable", "--netns", RCV, "--duration", "60", "--log-invalid", "all", "--family", "ipv4",
                          "--backend", "auto", "--capture", json.dumps({"mode": "netlink"}), check_rc=False)
        check(refused.get("failed") and "another listener" in refused["msg"] and values() == before,
              "capture netlink is refused where another listener holds the group, nothing changed")
        window = enable({"mode": "auto"})["namespaces"]["netns-" + RCV]
        check(window["capture"]["path"] == "kernel_log" and "another listener" in window["capture"]["why"],
              "auto falls back to the kernel log there: %s" % window["capture"]["why"])
        check(values()[:2] == ["nf_log_ipv4", "nf_log_ipv6"], "the kernel-log loggers are bound, not nfnetlink_log")
        check(not os.path.exists(os.path.join(CAPTURES, "config.json")), "no collector for that namespace")
        program("revert", "--netns", RCV)
        check(values() == before, "revert restores the loggers")
    finally:
        holder.close()


def case_role_defaults():
    before = values()
    # The packets are in the collector's socket before collect reads; the sender returns once all are sent.
    run("ansible-playbook", os.path.join(HERE, "role.yml"), "-i", "localhost,",
        "-e", json.dumps({"ansible_python_interpreter": "/usr/bin/python3", "work": WORK, "rcv": RCV, "snd": SND,
                          "src": SRC4, "dst": DST4, "send_invalid": SEND_INVALID}),
        stdout=None)
    check(values() == before, "the role's revert restores the loggers: %s" % before)
    check(not os.path.exists(os.path.join(WORK, "role-state")), "no state directory left")


CASES = [case_exact_count_child_without_all_netns, case_budget_ends_the_window, case_sigkill_noticed_and_rearmed,
         case_revert_restores_bit_for_bit, case_group_taken_falls_back, case_role_defaults]


def main():
    wanted = [name for name in sys.argv[2:] if not name.startswith("-")]
    failures = 0
    for case in CASES:
        if wanted and case.__name__[5:] not in wanted:
            continue
        shutil.rmtree(CAPTURES, ignore_errors=True)
        setup()
        try:
            case()
            print("PASS " + case.__name__)
        except Exception as exc:  # report every case, then fail
            failures += 1
            print("FAIL %s: %s: %s" % (case.__name__, type(exc).__name__, exc))
        finally:
            cleanup()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
