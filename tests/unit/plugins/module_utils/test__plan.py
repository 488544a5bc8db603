# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The plan, the reconciliation and the host diagnosis of issue 16, from recorded probes."""

from __future__ import annotations

import copy
import json
import os

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._plan import (
    build_plan,
    diagnose,
    notrack_rules,
    parse_release,
    protocol_of,
    reconcile,
    version_decides,
)

SYSLOG = {2: {"bound": "nf_log_ipv4", "registered": ["nf_log_ipv4", "nfnetlink_log"]},
          10: {"bound": "nf_log_ipv6", "registered": ["nf_log_ipv6", "nfnetlink_log"]}}

# The probe of this machine's child namespace (6.18, everything built in, no debugfs mounted).
PROBE = {
    "release": "6.18.44-fc-v1098",
    "netns": "dg-a",
    "inum": 4026532323,
    "initial": False,
    "all_netns": "1",
    "log_invalid": "255",
    "nf_log": SYSLOG,
    "families": [2, 10],
    "sysctls": {"nf_conntrack_tcp_be_liberal": "0", "nf_conntrack_tcp_ignore_invalid_rst": "0", "nf_conntrack_tcp_loose": "1"},
    "dynamic_debug": {"present": None, "reason": "debugfs is not mounted"},
    "notrack_rules": [],
    "interfaces": [{"name": "lo", "ifindex": 1, "mac": "00:00:00:00:00:00"}],
}


def probe(**changes):
    result = copy.deepcopy(PROBE)
    result.update(changes)
    return result


def codes(plan):
    return [one["code"] for one in plan["problems"]]


@pytest.mark.parametrize("release, version, backports, vendor", [
    ("6.18.44-fc-v1098", "6.18", False, None),
    ("6.1.0-56-amd64", "6.1", False, None),
    ("5.10.0-46-amd64", "5.10", False, None),
    ("6.12.118+deb13-amd64", "6.12", False, None),
    ("5.15.0-91-generic", "5.15", False, None),
    ("5.14.0-427.13.1.el9_4.x86_64", "5.14", True, "Enterprise Linux 9 (RHEL, CentOS Stream, Rocky, Alma, Oracle)"),
    ("4.18.0-553.el8_10.x86_64", "4.18", True, "Enterprise Linux 8 (RHEL, CentOS Stream, Rocky, Alma, Oracle)"),
    ("5.15.0-203.146.5.1.el9uek.x86_64", "5.15", True, "Enterprise Linux 9 (RHEL, CentOS Stream, Rocky, Alma, Oracle)"),
    ("5.10.223-211.872.amzn2.x86_64", "5.10", True, "Amazon Linux"),
    ("5.14.21-150500.55.65-default", "5.14", True, "SUSE"),
    ("garbage", None, False, None),
])
def test_parse_release(release, version, backports, vendor):
    kernel = parse_release(release)
    assert (kernel["version"], kernel["backports"], kernel["vendor"]) == (version, backports, vendor)


@pytest.mark.parametrize("release, since, expected", [
    ("6.18.44-fc-v1098", (6, 17), (True, "version")),
    ("6.12.118+deb13-amd64", (6, 17), (False, "version")),
    ("5.10.0-46-amd64", (5, 19), (False, "version")),
    ("6.1.0-56-amd64", (5, 19), (True, "version")),
    # EL9's 5.14 carries later netfilter code: the version must not decide.
    ("5.14.0-427.el9.x86_64", (5, 19), (None, "unknown")),
    ("garbage", (5, 19), (None, "unknown")),
])
def test_version_decides(release, since, expected):
    assert version_decides(parse_release(release), since) == expected


@pytest.mark.parametrize("value, expected", [(None, None), ("0", None), ("", None), ("255", "all"), ("6", "tcp"),
                                             ("17", "udp"), ("58", "icmpv6"), ("99", "99")])
def test_protocol_of(value, expected):
    assert protocol_of(value) == expected


def test_a_healthy_child_namespace_has_no_problem():
    plan = build_plan(PROBE)
    assert plan["problems"] == []
    assert plan["steps"]["log_invalid"] == {"effective": True, "decided_by": "probe", "value": "255", "protocol": "all",
                                            "why": "on for every protocol"}
    assert plan["steps"]["all_netns"]["effective"] is True
    assert plan["steps"]["logger"]["autoload"]["decided_by"] == "probe"
    # loose=1 is the default: listed as a blinder, not a problem
    assert [one["setting"] for one in plan["blinders"]] == ["net.netfilter.nf_conntrack_tcp_loose"]
    assert plan["steps"]["unconfirmed_list"]["dumpable"] is False
    assert plan["steps"]["unconfirmed_list"]["decided_by"] == "version"


PROBLEMS = [
    ("off", probe(log_invalid="0"), ["log_invalid_off"]),
    ("no conntrack", probe(log_invalid=None), ["conntrack_not_loaded"]),
    ("child without all_netns", probe(all_netns="0"), ["child_without_all_netns"]),
    ("no logger bound", probe(nf_log={2: {"bound": "NONE", "registered": ["nf_log_ipv4"]},
                                      10: {"bound": "NONE", "registered": ["nf_log_ipv6"]}}), ["no_logger_bound"]),
    ("ipv6 unbound", probe(nf_log={2: SYSLOG[2], 10: {"bound": "NONE", "registered": ["nf_log_ipv6"]}}),
     ["logger_partly_bound"]),
    ("be_liberal", probe(sysctls=dict(PROBE["sysctls"], nf_conntrack_tcp_be_liberal="1")), ["be_liberal"]),
    ("ignore_invalid_rst", probe(sysctls=dict(PROBE["sysctls"], nf_conntrack_tcp_ignore_invalid_rst="1")),
     ["ignore_invalid_rst"]),
    ("notrack", probe(notrack_rules=["udp dport 53 notrack"]), ["notrack"]),
    # All namespaces' lines reach the log in the initial one, whatever nf_log_all_netns says.
    ("initial", probe(initial=True, all_netns="0"), []),
    # nf_log_all_netns only matters when something is logged.
    ("off in a child", probe(log_invalid="0", all_netns="0"), ["log_invalid_off"]),
]


@pytest.mark.parametrize("name, probed, expected", PROBLEMS, ids=[one[0] for one in PROBLEMS])
def test_problems(name, probed, expected):
    assert codes(build_plan(probed)) == expected


@pytest.mark.parametrize("release, registered, applies, decided_by", [
    # nothing registered: only the version can tell whether writing log_invalid loads nf_log_syslog
    ("6.18.44-fc-v1098", [], True, "version"),
    ("6.12.118+deb13-amd64", [], False, "version"),
    ("5.14.0-427.el9.x86_64", [], None, "unknown"),
    # a syslog logger registered (built in here): probed, nothing to load
    ("6.12.118+deb13-amd64", ["nf_log_ipv4"], False, "probe"),
])
def test_autoload(release, registered, applies, decided_by):
    nf_log = {2: {"bound": "NONE", "registered": registered}, 10: {"bound": "NONE", "registered": []}}
    plan = build_plan(probe(release=release, nf_log=nf_log))
    autoload = plan["steps"]["logger"]["autoload"]
    assert (autoload["applies"], autoload["decided_by"]) == (applies, decided_by)
    if decided_by == "unknown":
        assert "backports" in autoload["why"]


def test_intended_values_preview_what_enable_sets():
    unbound = {2: {"bound": "NONE", "registered": ["nf_log_ipv4"]}, 10: {"bound": "NONE", "registered": ["nf_log_ipv6"]}}
    probed = probe(log_invalid="0", all_netns="0", nf_log=unbound)
    assert codes(build_plan(probed)) == ["log_invalid_off"]
    plan = build_plan(probed, {"log_invalid": "6", "bind": True, "all_netns": True})
    assert plan["problems"] == []
    assert plan["steps"]["log_invalid"]["protocol"] == "tcp"
    assert plan["steps"]["logger"]["bound"] == {"ipv4": "nf_log_ipv4", "ipv6": "nf_log_ipv6"}


@pytest.mark.parametrize("dyndbg, release, effective, decided_by", [
    ({"present": False, "reason": "no dynamic debug"}, "6.18.44-fc-v1098", False, "probe"),
    ({"present": True, "conntrack_sites": 12, "tcp_sites": 0}, "6.1.0-56-amd64", False, "probe"),
    ({"present": True, "conntrack_sites": 40, "tcp_sites": 19}, "5.10.0-46-amd64", True, "probe"),
    ({"present": None, "reason": "debugfs is not mounted"}, "6.1.0-56-amd64", None, "version"),
    ({"present": None, "reason": "debugfs is not mounted"}, "5.14.0-427.el9.x86_64", None, "unknown"),
])
def test_dynamic_debug(dyndbg, release, effective, decided_by):
    step = build_plan(probe(dynamic_debug=dyndbg, release=release))["steps"]["dynamic_debug"]
    assert (step["effective"], step["decided_by"]) == (effective, decided_by)


def test_lists_on_old_and_vendor_kernels():
    old = build_plan(probe(release="5.10.0-46-amd64"))["steps"]
    assert old["unconfirmed_list"]["dumpable"] is True
    assert old["dying_list"]["meaning"].startswith("entries being destroyed")
    vendor = build_plan(probe(release="5.14.0-427.el9.x86_64"))["steps"]
    assert vendor["unconfirmed_list"]["dumpable"] is None and vendor["unconfirmed_list"]["decided_by"] == "unknown"
    assert vendor["dying_list"]["meaning"].startswith("depends on backports")


# --- reconciliation --------------------------------------------------------------------------------------------

RECONCILE = [
    ("child without all_netns", {"invalid": 3}, 0, probe(all_netns="0"), ["invalid_not_logged"],
     ["child_without_all_netns"]),
    ("no logger", {"invalid": 2}, 0, probe(nf_log={2: {"bound": "NONE", "registered": []}, 10: {"bound": "NONE", "registered": []}}),
     ["invalid_not_logged"], ["no_logger_bound"]),
    ("protocol outside", {"invalid": 5}, 1, probe(log_invalid="6"), ["invalid_not_logged"], ["protocol_outside_log_invalid"]),
    ("log off", {"invalid": 1}, 0, probe(log_invalid="0"), ["invalid_not_logged"], ["log_invalid_off"]),
    ("nothing explains", {"invalid": 1}, 0, PROBE, ["invalid_not_logged"], ["unexplained"]),
    ("all logged", {"invalid": 2}, 2, PROBE, [], []),
    ("more lines than counted", {"invalid": 5}, 7, PROBE, [], []),
    ("be_liberal hides", {"invalid": 0}, 0, probe(sysctls=dict(PROBE["sysctls"], nf_conntrack_tcp_be_liberal="1")),
     ["blinded"], []),
]


@pytest.mark.parametrize("name, delta, logged, probed, finding_codes, causes", RECONCILE, ids=[one[0] for one in RECONCILE])
def test_reconcile(name, delta, logged, probed, finding_codes, causes):
    result = reconcile(delta, logged, build_plan(probed))
    assert [one["code"] for one in result["findings"]] == finding_codes
    if causes:
        assert result["findings"][0]["causes"] == causes
        assert "does not apply" in result["findings"][0]["rate_limit"]


NETLINK = {2: {"bound": "nfnetlink_log", "registered": ["nf_log_ipv4", "nfnetlink_log"]},
           10: {"bound": "nfnetlink_log", "registered": ["nf_log_ipv6", "nfnetlink_log"]}}


def test_a_child_bound_to_nfnetlink_log_needs_no_all_netns():
    plan = build_plan(probe(all_netns="0", nf_log=NETLINK))
    assert plan["steps"]["all_netns"]["needed"] is False
    assert "child_without_all_netns" not in codes(plan)
    assert "child_without_all_netns" in codes(build_plan(probe(all_netns="0")))


CAPTURED = [
    ("every verdict captured", {"invalid": 4}, {"events": 4, "events_lost": 0}, probe(all_netns="0", nf_log=NETLINK), []),
    ("one packet judged twice", {"invalid": 4}, {"events": 8, "events_lost": 0}, probe(nf_log=NETLINK), []),
    ("overruns lost some", {"invalid": 9}, {"events": 4, "events_lost": 5}, probe(nf_log=NETLINK), ["capture_lost_events"]),
    ("tcp only", {"invalid": 9}, {"events": 4, "events_lost": 0}, probe(log_invalid="6", nf_log=NETLINK),
     ["protocol_outside_log_invalid"]),
    ("nothing explains", {"invalid": 2}, {"events": 0, "events_lost": 0}, probe(nf_log=NETLINK), ["unexplained"]),
]


@pytest.mark.parametrize("name, delta, capture, probed, causes", CAPTURED, ids=[one[0] for one in CAPTURED])
def test_reconcile_with_a_capture_compares_its_events(name, delta, capture, probed, causes):
    # The kernel log saw nothing (logged=0): with a capture that is expected and must not count.
    result = reconcile(delta, 0, build_plan(probed), lost_records=7, unattributed=3, capture=capture)
    assert result["evidence"] == "capture"
    found = [one for one in result["findings"] if one["code"] == "invalid_not_logged"]
    assert [one["causes"] for one in found] == ([causes] if causes else [])
    if found:
        assert "event(s) were captured" in found[0]["text"] or "no event was captured" in found[0]["text"]


def test_counters_are_explained_and_the_dns_race_is_named():
    result = reconcile({"insert_failed": 4, "clash_resolve": 9, "drop": 0, "found": 3}, 0, build_plan(PROBE))
    texts = {one["counter"]: one["text"] for one in result["counters"]}
    assert set(texts) == {"insert_failed", "clash_resolve"}
    assert "parallel-UDP insert race" in texts["insert_failed"]


def test_rate_limited_table_full_is_said():
    result = reconcile({"drop": 300, "early_drop": 0}, 0, build_plan(PROBE), table_full=10, ratelimit_suppressed=290)
    assert [one["code"] for one in result["findings"]] == ["table_full_rate_limited"]


def test_diagnose_maps_table_full_inodes_and_attribution_to_window_ids():
    plans = {"netns-a": build_plan(probe(inum=11, all_netns="0")), "netns-full": build_plan(probe(inum=22))}
    windows = {"netns-a": {"active": True, "stats_delta": {"invalid": 3}},
               "netns-full": {"active": True, "stats_delta": {"drop": 4}}}
    invalid_log = {
        "total": 0,
        "kernel_events": {"table_full": {"count": 4, "first": "t1", "last": "t2", "by_netns": {"22": 3, "33": 1}},
                          "expect_full": {"count": 0}, "ratelimit_suppressed": {"count": 0}},
        "attribution": {"by_namespace": {"netns-a": {"count": 0}, "netns-full": {"count": 0}},
                        "unattributed": {"count": 0, "reasons": {}}},
    }
    result = diagnose(plans, windows, invalid_log, {"netns-a": {"usage_percent": 0.0}, "netns-full": {"usage_percent": 100.0}})
    assert result["table_full"]["by_netns"] == {"netns-full": 3, "netns inode 33 (not selected)": 1}
    assert result["table_full"]["usage_percent"] == {"netns-a": 0.0, "netns-full": 100.0}
    assert [(one["netns"], one["code"]) for one in result["plan_problems"]] == [("netns-a", "child_without_all_netns")]
    assert [(one["netns"], one["code"]) for one in result["findings"]] == [("netns-a", "invalid_not_logged")]
    assert result["reconciliation"]["netns-full"]["counters"][0]["counter"] == "drop"


def test_diagnose_without_a_window_compares_nothing():
    result = diagnose({"init": build_plan(probe(initial=True))}, {}, {"total": 0})
    assert result["reconciliation"]["init"]["findings"][0]["code"] == "no_window"
    assert result["findings"] == []


def test_notrack_rules():
    outputs = {
        "/usr/sbin/nft": (0, "table inet raw {\n chain pre {\n  udp dport 53 notrack\n  ct state untracked accept\n }\n}\n"),
        "/usr/sbin/iptables-save": (0, "*raw\n-A PREROUTING -p udp --dport 53 -j CT --notrack\n-A OUTPUT -j NOTRACK\nCOMMIT\n"),
    }
    found = notrack_rules(lambda argv: outputs[argv[0]], {"nft": "/usr/sbin/nft", "iptables-save": "/usr/sbin/iptables-save"}.get)
    assert found == ["udp dport 53 notrack", "ct state untracked accept", "-A PREROUTING -p udp --dport 53 -j CT --notrack",
                     "-A OUTPUT -j NOTRACK"]
    assert notrack_rules(lambda argv: (0, ""), lambda name: None) is None


# --- real probes from the kernel matrix's guests -------------------------------------------------------------

def guest_probes(release):
    path = os.path.join(os.path.dirname(__file__), "fixtures", "plan", f"probes-{release}.json")
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def test_5_10_guest_before_and_after_nf_conntrack_is_loaded():
    probes = guest_probes("5.10.0-46-amd64")
    cold = build_plan(probes["cold"])
    assert codes(cold) == ["conntrack_not_loaded"]
    assert cold["steps"]["dynamic_debug"]["effective"] is None  # sites appear once nf_conntrack is loaded
    on = build_plan(probes["on"])
    # 5.10: writing log_invalid loads no logger (version), nothing is registered (probe): nothing can be logged.
    assert codes(on) == ["no_logger_bound", "child_without_all_netns"]
    autoload = on["steps"]["logger"]["autoload"]
    assert (autoload["applies"], autoload["decided_by"]) == (False, "version")
    assert on["steps"]["dynamic_debug"] == {
        "effective": True, "decided_by": "probe", "conntrack_sites": 90, "tcp_sites": 15,
        "why": "90 conntrack pr_debug site(s), 15 in nf_conntrack_proto_tcp.c"}
    assert on["steps"]["unconfirmed_list"]["dumpable"] is True
    # What enable would change: bind (the per-family nf_log_ipv4/ipv6 modules must be loaded first, which
    # nf_log_backend does; the probe shows none registered yet) and all_netns.
    assert codes(build_plan(probes["on"], {"all_netns": True})) == ["no_logger_bound"]


def test_probe_keys_as_strings_after_json():
    probed = json.loads(json.dumps(PROBE))
    assert build_plan(probed)["steps"]["logger"]["autoload"]["decided_by"] == "probe"
    assert build_plan(probed)["problems"] == []


@pytest.mark.parametrize("release, initial, label", [
    ("6.18.44-fc-v1098", True, "init"),
    ("6.18.44-fc-v1098", False, "initial namespace"),
    ("5.10.0-46-amd64", True, "a namespace the kernel does not name (it names them from 6.17)"),
    ("5.14.0-427.el9.x86_64", True, "a namespace the kernel does not name (it names them from 6.17)"),
])
def test_table_full_lines_without_a_netns(release, initial, label):
    plans = {"init" if initial else "netns-x": build_plan(probe(release=release, initial=initial))}
    invalid_log = {"kernel_events": {"table_full": {"count": 2, "by_netns": {"initial (or a kernel before 6.17)": 2}}}}
    assert diagnose(plans, {}, invalid_log)["table_full"]["by_netns"] == {label: 2}


# Sites counted in the guests after nf_conntrack was loaded: 5.10 still has the TCP tracker's pr_debug sites, from
# 5.19 next to none are left (6.1: 4, 6.12: 1). Writing log_invalid loads no logger before 6.17, and nothing was
# registered in these guests, so the plan must say that nothing can be logged.
@pytest.mark.parametrize("release, sites, tcp_sites, dumpable", [
    ("5.10.0-46-amd64", 90, 15, True),
    ("6.1.0-57-amd64", 60, 4, False),
    ("6.12.118+deb13-amd64", 39, 1, False),
])
def test_guest_probes_of_every_matrix_kernel(release, sites, tcp_sites, dumpable):
    probes = guest_probes(release)
    assert codes(build_plan(probes["cold"])) == ["conntrack_not_loaded"]
    on = build_plan(probes["on"])
    assert codes(on) == ["no_logger_bound", "child_without_all_netns"]
    assert (on["steps"]["logger"]["autoload"]["applies"], on["steps"]["logger"]["autoload"]["decided_by"]) == (False, "version")
    step = on["steps"]["dynamic_debug"]
    assert (step["conntrack_sites"], step["tcp_sites"], step["effective"]) == (sites, tcp_sites, True)
    assert on["steps"]["unconfirmed_list"]["dumpable"] is dumpable
    assert on["steps"]["unconfirmed_list"]["decided_by"] == "version"
