# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet report renderers from fixture reports: the demo's real report, a 50-host fleet made from it, a host
with no lines, a host whose collect failed, hostile strings; golden terminal tables at 1 and 50 hosts.

Set NFCT_UPDATE_GOLDEN=1 to rewrite the golden files after a deliberate change of the table."""

from __future__ import annotations

import copy
import json
import os
import re
import xml.dom.minidom

import html5lib
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.netfilter.conntrack.plugins.filter.conntrack_fleet_report import (
    collection_version, conntrack_fleet_report)
from ansible_collections.netfilter.conntrack.plugins.filter.conntrack_window_line import conntrack_window_line
from ansible_collections.netfilter.conntrack.plugins.filter.conntrack_window_lines import conntrack_window_lines
from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _fleet_pages as pages
from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _fleet_report as fr
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._fleet_templates import md

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "fleet_report")
HOSTILE = "<script>alert(\"x\")</script> 'quoted' & \"double\" | pipe `tick` *star* [link](http://evil)"


def demo_report():
    with open(os.path.join(FIXTURES, "report-demo-6.18.44.json"), encoding="utf-8") as handle:
        return json.load(handle)


def host_report(index):
    """Host web-NN of the fixture fleet, made from the demo report; every 7th host saw no lines, every 5th had its
    table full, every 4th dropped packets, every 6th has no logger bound."""
    report = copy.deepcopy(demo_report())
    report["host"] = f"web-{index:02d}"
    log = report["invalid_log"]
    label = "netns-nfct-demo-rcv"
    delta = report["windows"][label]["stats_delta"]
    if index % 7 == 0:
        log.update(total=0, by_reason={}, by_peer={}, samples=[], peers_distinct=0)
        log["attribution"]["by_namespace"][label]["count"] = 0
        delta["invalid"] = 0
    else:
        scale = index % 5 + 1
        log["by_reason"] = {reason: count * scale for reason, count in log["by_reason"].items()}
        if index % 3 == 0:
            log["by_reason"]["conntrack table full"] = index
        log["total"] = sum(log["by_reason"].values())
        log["attribution"]["by_namespace"][label]["count"] = log["total"]
        log["by_peer"] = {f"10.198.{index}.1": log["total"] - 1, "fd00:198::1": 1}
        delta["invalid"] = log["total"] - 1
    if index % 4 == 0:
        delta["drop"] = 10 * index
        delta["early_drop"] = index
    if index % 5 == 0:
        report["diagnosis"]["table_full"].update(count=index, first="2026-12-02T05:02:03Z", last="2026-12-02T05:02:04Z",
                                                 by_netns={label: index})
        report["conntrack"][label]["usage_percent"] = 100.0
    else:
        report["conntrack"][label]["usage_percent"] = round(index * 1.7, 1)
    if index % 6 == 0:
        report["diagnosis"]["plan_problems"].append({"netns": "init", "code": "no_logger_bound",
                                                     "text": "log_invalid on but nothing can be logged (ipv4)"})
    return report


def fleet(count):
    return [host_report(index) for index in range(1, count + 1)]


def golden(name, lines):
    path = os.path.join(FIXTURES, name)
    text = "\n".join(lines) + "\n"
    if os.environ.get("NFCT_UPDATE_GOLDEN"):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    with open(path, encoding="utf-8") as handle:
        assert text == handle.read()


def callback_lines(lines):
    """The lines as the default callback prints a debug msg list (JSON, indent 4)."""
    return json.dumps({"msg": lines}, indent=4).splitlines()


def parse_html(text):
    """The page parsed by html5lib in strict mode: any parse error raises."""
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(text)


def test_golden_table_one_host():
    lines = conntrack_fleet_report([demo_report()], "table", version="0.3.0")
    golden("table-1.txt", lines)


def test_golden_table_fifty_hosts():
    lines = conntrack_fleet_report(fleet(49), "table", failed=["db-01"], version="0.3.0")
    golden("table-50.txt", lines)


@pytest.mark.parametrize("count", [1, 50, 120])
def test_table_fits_120_columns_in_the_default_callback(count):
    lines = conntrack_fleet_report(fleet(count), "table", failed=["gone-" + "x" * 40], version="0.3.0")
    assert all(len(line) <= fr.TABLE_WIDTH for line in lines)
    assert all(len(line) <= 120 for line in callback_lines(lines))
    assert all(re.fullmatch(r"[ -~]*", line) for line in lines)


def test_table_summarises_beyond_max_hosts():
    lines = conntrack_fleet_report(fleet(120), "table", max_hosts=50, version="0.3.0")
    shown = [line.split()[0] for line in lines if line.startswith("web-")]
    assert len(set(shown)) == 50 and len(shown) == 100  # two namespaces each
    assert "... 70 more host(s) with less to report (above: most attention first; all hosts: fleet-summary.md)" in lines
    # The hosts kept are those that need attention most, most first: every host with a full table is among them.
    assert {f"web-{i:02d}" for i in range(5, 121, 5)} <= set(shown)
    assert shown[0] == "web-120"


def test_table_keeps_the_order_of_the_reports_up_to_max_hosts():
    lines = conntrack_fleet_report(fleet(50), "table", version="0.3.0")
    shown = list(dict.fromkeys(line.split()[0] for line in lines if line.startswith("web-")))
    assert shown == [f"web-{i:02d}" for i in range(1, 51)]


def test_host_with_no_lines_and_failed_host():
    quiet = host_report(7)
    quiet["diagnosis"]["findings"] = []
    quiet["diagnosis"]["plan_problems"] = []
    model = fr.build_model([quiet], failed=["db-01"], version="0.3.0")
    assert [h["host"] for h in model["attention"]] == ["db-01"]
    lines = fr.render_table(model)
    # Verdicts and "Attention first" come before the host table.
    assert lines.index("Attention first:") < next(i for i, line in enumerate(lines) if line.split()[:4] == ["HOST", "NETNS", "LINES", "TOP"])
    assert lines[0].startswith("Verdicts")
    assert any(re.fullmatch(r"db-01 +- +collect failed", line) for line in lines)
    assert "  db-01  collect failed" in lines
    assert not model["reasons"]
    markdown = pages.render_markdown(model)
    assert "| db-01 | - | collect failed |" in markdown
    assert "## Invalid reasons" not in markdown
    page = pages.render_html(model)
    parse_html(page)
    assert "No invalid lines on any host." in page
    assert "<h2>Collect failed</h2><p>db-01: no report" in page


def test_no_report_at_all():
    model = fr.build_model([], failed=[])
    lines = fr.render_table(model)
    assert lines[0] == "Verdicts: nothing wrong found on any host"
    assert "Attention first: nothing to report on any host" in lines
    parse_html(pages.render_html(model))
    assert fr.render_stats(model)["hosts"] == 0


def hostile_report():
    report = demo_report()
    report["host"] = "evil\"<b>host"
    log = report["invalid_log"]
    log["by_reason"][HOSTILE] = 2
    log["samples"][0]["reason"] = HOSTILE
    log["samples"][0]["reason_text"] = HOSTILE + " from 10.198.0.1"
    log["samples"][0]["in"] = "</td><script>x()</script>"
    log["unparsed"] = {"count": 1, "samples": ["nf_ct_tcp: <img src=x onerror=alert(1)> SRC=10.198.0.1 MAC=aa:bb:cc:dd:ee:ff"]}
    report["notes"] = [HOSTILE]
    report["diagnosis"]["plan_problems"][0]["text"] = HOSTILE
    return report


def test_hostile_strings_are_escaped_in_html():
    page = conntrack_fleet_report([hostile_report()], "html", version="0.3.0")
    document = parse_html(page)
    scripts = document.findall(".//script")
    assert len(scripts) == 1 and "alert" not in (scripts[0].text or "")
    assert document.findall(".//img") == [] and document.findall(".//b") == []
    texts = "".join(document.itertext())
    assert HOSTILE in texts  # shown as text, verbatim
    assert "evil\"<b>host" in texts
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#34;x&#34;)" in page
    # The chart's labels are text of the SVG, which parses as XML on its own.
    svg = re.search(r"<svg id=\"reason-chart\".*?</svg>", page, re.S).group(0)
    xml.dom.minidom.parseString(svg)


def test_hostile_strings_are_escaped_in_markdown():
    markdown = conntrack_fleet_report([hostile_report()], "markdown", version="0.3.0")
    assert "<script>" not in markdown and "<img" not in markdown
    assert "\\<script\\>alert(\"x\")\\</script\\>" in markdown
    # Within each table, every row has as many unescaped pipes (cell separators) as the header.
    tables = re.findall(r"(?m)(?:^\|.*\n)+", markdown)
    assert len(tables) >= 5
    for table in tables:
        counts = {len(re.findall(r"(?<!\\)\|", line)) for line in table.splitlines()}
        assert len(counts) == 1, table


def test_hostile_strings_in_the_terminal_table():
    lines = conntrack_fleet_report([hostile_report()], "table", version="0.3.0")
    assert all(re.fullmatch(r"[ -~]*", line) for line in lines)
    assert not any('"' in line or "\\" in line for line in lines)
    assert any(line.startswith("evil'<b>host") for line in lines)


def test_md_and_html_escapers():
    assert md("a|b\nc <x> *y* _z_ [l](u) & `t`") == "a\\|b c \\<x\\> \\*y\\* \\_z\\_ \\[l\\](u) \\& \\`t\\`"
    assert pages.h("<a href=\"x\">'&") == "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;"


def test_redacted_addresses():
    reports = [hostile_report(), host_report(2)]
    for fmt in ("markdown", "html"):
        text = conntrack_fleet_report(reports, fmt, redact_addresses=True, version="0.3.0")
        assert "10.198.0.1" not in text and "10.198.0.2" not in text and "fd00:198" not in text
        assert "aa:bb:cc:dd:ee:ff" not in text and "addr-1" in text
    lines = conntrack_fleet_report(reports, "table", redact_addresses=True, version="0.3.0")
    assert not any("10.198." in line for line in lines)
    stats = conntrack_fleet_report(reports, "stats", redact_addresses=True, version="0.3.0")
    assert stats["addresses_left_out"] is True
    assert all(peer.startswith("addr-") for peer in stats["top_peers"])
    assert "10.198" not in json.dumps(stats)
    # Host names and times are kept.
    page = conntrack_fleet_report(reports, "html", redact_addresses=True, version="0.3.0")
    assert "web-02" in page and "2026-12-02T05:02:04.716360Z" in page


def test_redact_text_keeps_times_and_versions():
    seen = []
    text = fr.redact_text("at 05:02:04 kernel 6.18.44 SRC=10.0.0.1 DST=fe80::1. ok", lambda a: seen.append(a) or "A")
    assert text == "at 05:02:04 kernel 6.18.44 SRC=A DST=A. ok"
    assert seen == ["10.0.0.1", "fe80::1"]


def test_model_of_the_demo_report():
    model = fr.build_model([demo_report()], version="0.3.0")
    host = model["hosts"][0]
    assert [row["netns"] for row in host["rows"]] == ["init", "netns-nfct-demo-rcv"]
    init, pod = host["rows"]
    assert (init["lines"], pod["lines"]) == (0, 5)
    assert pod["deltas"] == {"invalid": 4, "drop": 0, "insert_failed": 0, "early_drop": 0}
    assert pod["usage"] == 0.0 and init["usage"] is None
    assert pod["plan"] == ["loose"]
    assert model["reasons"]["invalid tcp flag combination"] == {"lines": 3, "hosts": ["localhost"]}
    assert model["window"] == {"enabled": "2026-12-02 05:02:01 UTC", "deadline": "2026-12-02 05:12:01 UTC",
                               "collected_first": "2026-12-02T05:02:05Z", "collected_last": "2026-12-02T05:02:05Z"}
    sample = host["samples"][0]["line"]
    assert sample == "2026-12-02T05:02:04.716360Z tcp 10.198.0.1:40001 > 10.198.0.2:8080 RST,SYN IN=nfct-demo-r LEN=40"
    assert any("[fd00:198::1]:40006 > [fd00:198::2]:8080" in sample["line"] for sample in host["samples"])


def test_a_container_window_is_shown_by_its_runtime_name():
    report = demo_report()
    label = "netns-nfct-demo-rcv"
    report["windows"][label]["container"] = {"display_name": "podman pod web-frontend-canary", "runtime": "podman"}
    host = fr.build_model([report], version="0.3.0")["hosts"][0]
    assert [(row["label"], row["netns"]) for row in host["rows"]] == [
        ("init", "init"), (label, "podman pod web-frontend-canary")]
    assert any("podman pod web-frontend-canary" in line for line in fr.render_table(fr.build_model([report])))


def test_fleet_rollup_at_fifty_hosts():
    model = fr.build_model(fleet(49), failed=["db-01"], version="0.3.0")
    assert len(model["hosts"]) == 50
    assert model["attention"][0]["host"] == "db-01"
    assert model["attention"][1]["host"] == "web-45"  # the most table-full events
    full = fr.render_stats(model)["hosts_with_table_full"]
    assert sorted(full) == [f"web-{i:02d}" for i in range(5, 50, 5)]
    assert model["plan_problems"]["no_logger_bound: log_invalid on but nothing can be logged"]["where"][:2] == ["web-06", "web-12"]
    assert len(model["reasons"]["invalid tcp flag combination"]["hosts"]) == 49 - 7  # hosts 7, 14 ... saw nothing


def test_html_page_is_self_contained():
    page = conntrack_fleet_report(fleet(12), "html", failed=["db-01"], version="0.3.0")
    document = parse_html(page)
    assert document.find(".//table[@id='hosts']") is not None
    assert len(document.findall(".//table[@id='hosts']/tbody/tr")) == 12 * 2 + 1
    assert document.find(".//{http://www.w3.org/2000/svg}svg") is not None or "<svg id=\"reason-chart\"" in page
    # Nothing that could load: no src or href attribute, no url(), no @import; a CSP forbids it anyway.
    assert not re.search(r"\s(src|href|action|srcset)=", page)
    assert "url(" not in page and "@import" not in page
    csp = document.find(".//meta[@http-equiv='Content-Security-Policy']").get("content")
    assert csp.startswith("default-src 'none';") and "'unsafe-inline'" not in csp
    assert "0.3.0" in document.find(".//span[@id='version']").text
    for name in ("Sample lines per reason", "Plan problems", "Counter deltas per host", "Table full"):
        assert f"<h2>{name}</h2>" in page


def test_markdown_tables():
    markdown = conntrack_fleet_report(fleet(3), "markdown", version="0.3.0")
    assert markdown.startswith("# conntrack debug report\n")
    assert "| Host | Netns | Lines | Reasons | invalid | drop | insert_failed | early_drop | Usage % | Table full |" in markdown
    assert "| web-01 | netns-nfct-demo-rcv | 10 | 6 invalid tcp flag combination; 2 invalid icmp type;" in markdown


def test_stats_are_json():
    stats = conntrack_fleet_report(fleet(10), "stats", failed=["db-01"], version="0.3.0")
    assert json.loads(json.dumps(stats)) == stats
    assert stats["hosts"] == 11 and stats["collect_failed"] == ["db-01"]
    assert stats["attention"][0] == {"host": "db-01", "why": ["collect failed"]}


def test_filter_rejects_unknown_format():
    with pytest.raises(Exception, match="format must be one of"):
        conntrack_fleet_report([], "pdf")


def test_collection_version_from_the_tree():
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", collection_version() or "")


WINDOW_CASES = [
    ("enabled", {"deadline": 1796188321.8,
                 "steps": [{"step": "Log invalid packets", "netns": "pod", "changed": True},
                           {"step": "Bind the logger", "netns": None, "changed": False}],
                 "namespaces": {"init": {"scheduler": {"kind": "systemd-timer"}, "recorded": ["a", "b"]},
                                "netns-pod": {"scheduler": {"kind": "systemd-timer"}, "recorded": ["c"],
                                              "deadline_extended": True}}},
     "on until 2026-12-02 05:12:01 UTC (extended) by systemd-timer; changed: Log invalid packets [pod];"
     " already as wanted, left alone: Bind the logger; 3 original value(s) recorded in 2 snapshot(s)"),
    ("re-armed", {"deadline": 1796188321.8, "steps": [],
                  "namespaces": {"init": {"scheduler": {"kind": "systemd-timer"}, "rearmed": True,
                                          "deadline_extended": True}}},
     "on until 2026-12-02 05:12:01 UTC (extended) by systemd-timer; automatic revert was NOT armed, armed again:"
     " init; changed: nothing; 0 original value(s) recorded in 1 snapshot(s)"),
    ("check mode", {"steps": [{"step": "Log invalid packets", "netns": None, "changed": True}], "namespaces": {}},
     "check mode: nothing recorded, nothing scheduled; changed: Log invalid packets"),
    ("tools installed", {"deadline": 1796188321.8, "steps": [], "namespaces": {},
                         "tools": {"name": "conntrack", "changed": True}},
     "on until 2026-12-02 05:12:01 UTC; changed: nothing; conntrack installed"),
    ("tools there", {"deadline": 1796188321.8, "steps": [], "namespaces": {},
                     "tools": {"name": "conntrack", "changed": False}},
     "on until 2026-12-02 05:12:01 UTC; changed: nothing; conntrack already installed"),
    ("tools in check mode", {"steps": [], "namespaces": {}, "tools": {"name": "conntrack", "changed": True}},
     "check mode: nothing recorded, nothing scheduled; changed: nothing; conntrack would be installed"),
    ("reverted", {"namespaces": {"init": {"restored": {"net.netfilter.nf_conntrack_log_invalid": {"from": "255", "to": "0"}},
                                          "left": {"net.netfilter.nf_log.2": {"current": "nf_log_syslog"}}}}},
     "restored: nf_conntrack_log_invalid 255->0; left alone (changed by someone else): nf_log.2=nf_log_syslog"),
    ("nothing", {"namespaces": {}, "msg": "nothing to revert"}, "nothing to revert"),
    ("dropped", {"namespaces": {"netns-pod": {"dropped": True, "restored": {}, "left": {}}}},
     "restored: nothing; namespace gone, snapshot dropped: netns-pod"),
    ("kept for another window", {"namespaces": {
        "netns-a": {"restored": {"net.netfilter.nf_conntrack_log_invalid": {"from": "6", "to": "0"}}},
        "init": {"restored": {}, "kept": {"values": ["net.netfilter.nf_log_all_netns", "2 dynamic-debug site(s)"],
                                          "for": ["netns-b"]}}}},
     "restored: nf_conntrack_log_invalid 6->0 [netns-a]; kept for windows still open:"
     " nf_log_all_netns, 2 dynamic-debug site(s) (still needed by netns-b)"),
    ("failed", {"failed": True, "msg": "boom"}, "FAILED: boom"),
]


@pytest.mark.parametrize("result, expected", [c[1:] for c in WINDOW_CASES], ids=[c[0] for c in WINDOW_CASES])
def test_window_line(result, expected):
    assert conntrack_window_line(result) == expected
    assert conntrack_window_line(result, "web-01") == "web-01: " + expected


def test_window_lines_one_per_host_that_ran_the_task_in_the_order_given():
    enabled = {"deadline": 1764652321, "namespaces": {}, "steps": []}
    hostvars = {"web-02": {"conntrack_debug_enabled": {"failed": True, "msg": "boom"}},
                "web-01": {"conntrack_debug_enabled": enabled},
                "web-03": {"other": 1}}
    assert conntrack_window_lines(["web-02", "web-03", "web-01"], hostvars, "conntrack_debug_enabled") == [
        "web-02: FAILED: boom", conntrack_window_line(enabled, "web-01")]
    assert conntrack_window_lines([], hostvars, "conntrack_debug_enabled") == []
    with pytest.raises(AnsibleFilterError):
        conntrack_window_lines("web-01", hostvars, "conntrack_debug_enabled")


def test_fleet_summary_json_groups_hosts_like_the_table():
    reports = fleet(12)
    summary = conntrack_fleet_report(reports, "summary", failed=["db-01"])
    assert summary["hosts"] == [f"web-{i:02d}" for i in range(1, 13)] and summary["collect_failed"] == ["db-01"]
    assert summary["invalid_logged"]["web-07"] == 0 and summary["invalid_logged"]["web-01"] > 0
    assert summary["hosts_by_reason"]["conntrack table full"] == ["web-03", "web-06", "web-09", "web-12"]
    assert sorted(summary["hosts_with_table_full"]) == ["web-05", "web-10"]
    assert summary["hosts_with_table_full"]["web-10"]["count"] == 10
    no_logger = [key for key in summary["hosts_by_plan_problem"] if key.startswith("no_logger_bound")]
    assert no_logger == ["no_logger_bound: log_invalid on but nothing can be logged"]
    assert summary["hosts_by_plan_problem"][no_logger[0]] == ["web-06", "web-12"]
    assert json.loads(json.dumps(summary)) == summary, "plain JSON, as fleet-summary.json is written"


def test_a_full_table_with_an_expired_window_needs_attention():
    report = demo_report()
    label = "netns-nfct-demo-rcv"
    report["windows"] = {name: dict(window, active=False, expired=True) for name, window in report["windows"].items()}
    report["conntrack"][label].update(usage_percent=98.0, count=256901)
    report["diagnosis"]["plan_problems"] = []
    report["diagnosis"]["findings"] = []
    report["invalid_log"].update(total=0, by_reason={})
    model = fr.build_model([report], version="0.3.0")
    assert [host["host"] for host in model["attention"]] == ["localhost"]
    assert "table 98 % full" in model["attention"][0]["attention"]


def test_verdicts_group_the_hosts_and_come_first():
    reports = fleet(10)
    model = fr.build_model(reports, version="0.3.0")
    # web-04's early_drop +4 stays under the engine's rising_min_delta (5); web-08's +8 does not.
    assert model["verdicts"]["table_full"]["hosts"] == ["web-05", "web-08", "web-10"]
    lines = fr.render_table(model)
    assert lines[0] == "Verdicts:"
    assert lines[1].startswith("  3 host(s): Conntrack table full: new connections are dropped [table_full]: web-05,")
    assert any(line.startswith("  nothing wrong found on 7 host(s): web-01, web-02") for line in lines)
    assert lines.index("Attention first:") < next(i for i, line in enumerate(lines) if line.startswith("HOST"))
    summary = fr.render_summary(model)
    assert summary["hosts_by_verdict"]["table_full"] == [f"{h} netns-nfct-demo-rcv" for h in ("web-05", "web-08", "web-10")]
    assert summary["nothing_wrong"][:2] == ["web-01", "web-02"]
    assert summary["window"]["collected_last"] == "2026-12-02T05:02:05Z" and summary["version"] == "0.3.0"
    markdown = pages.render_markdown(model)
    assert markdown.index("## Verdicts") < markdown.index("## Attention first") < markdown.index("## Hosts")
    assert "- web-01: nothing wrong found. Checked: insert\\_failed +0" in markdown
    page = pages.render_html(model)
    parse_html(page)
    assert page.index('id="verdicts"') < page.index('id="attention"')
    assert 'class="bad" title="Red: the table was full' in page


def test_similar_long_names_stay_distinct_in_the_table():
    reports = []
    for suffix in ("a", "b"):
        report = demo_report()
        report["host"] = "kubernetes-worker-node-in-the-frankfurt-zone-" + suffix
        reports.append(report)
    lines = fr.render_table(fr.build_model(reports, version="0.3.0"))
    rows = [line for line in lines if line.startswith("kubernetes")]
    assert len(rows) == 4 and len({row.split()[0] for row in rows}) == 2
    assert all(row.split()[0].endswith(("-a", "-b")) for row in rows)
