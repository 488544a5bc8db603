# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet report's evidence views (terminal, Markdown, HTML, fleet-summary.json) from real collect reports of a
netlink capture on 6.18: one window still capturing (2,000 SYN+FIN packets over a veth pair), one ended by its
packet budget (limit 1,500), beside the demo's kernel-log report. Loss, a dead collector, a taken log group and
hostile reasons are made from them (the kernel could not be made to overrun its socket within a unit test)."""

from __future__ import annotations

import copy
import json
import os
import re

import html5lib
import pytest

from ansible_collections.netfilter.conntrack.plugins.filter.conntrack_fleet_report import conntrack_fleet_report
from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _fleet_capture as fc
from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _fleet_report as fr

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "fleet_report")
LABEL = "netns-rpt-rcv"
REASON = "invalid tcp flag combination"
HOSTILE = "</td><script>alert(\"x\")</script> | pipe `tick` *star*"


def load(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return json.load(handle)


def running():
    return load("report-capture-run-6.18.json")


def budget():
    return load("report-capture-budget-6.18.json")


def kernel_log():
    return load("report-demo-6.18.44.json")


def with_loss(report, lost=120, overruns=3):
    report = copy.deepcopy(report)
    one = report["capture"]["namespaces"][LABEL]
    one["loss"] = f"{lost} event(s) lost in {overruns} socket overrun(s)"
    one["loss_detail"].update(events_lost=lost, overruns=overruns, sequence_gaps=lost, socket_drops=lost)
    return report


def parse_html(text):
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(text)


def test_model_has_the_capture_of_each_namespace():
    model = fr.build_model([running(), budget(), kernel_log()])
    run, ended, logged = model["hosts"]
    assert run["evidence"] == [{
        "netns": LABEL, "path": "netlink", "status": "capturing", "why": "", "events": 2000, "by_reason": {REASON: 2000},
        "loss": "none", "events_lost": 0, "enobufs": 0, "sequence_gaps": 0, "socket_drops": 0, "exact": True,
        "pcapng": "/run/netfilter-conntrack-capture/netns-rpt-rcv.pcapng", "samples": 3}]
    assert run["capture"]["collector"] == "running" and run["capture"]["budget"] is None
    assert ended["capture"]["budget"] == {"name": "max_packets", "value": 1501, "limit": 1500,
                                          "at": "2026-12-07T05:24:19.049Z"}
    assert ended["capture"]["state"] == "budget_exceeded" and ended["capture"]["stopped_by"] == "budget"
    assert [row["path"] for row in logged["evidence"]] == ["kernel_log", "kernel_log"]
    assert [row["netns"] for row in logged["evidence"]] == ["init", "netns-nfct-demo-rcv"]
    assert all(row["events"] is None and row["pcapng"] is None for row in logged["evidence"])


def test_kernel_log_rows_say_when_its_ring_buffer_wrapped():
    report = kernel_log()
    report["invalid_log"].update(ring_buffer_wrapped=True, lost_records=19900)
    rows = fr.build_model([report])["hosts"][0]["evidence"]
    assert {row["loss"] for row in rows} == {"ring buffer wrapped: 19900 record(s) lost (host-wide)"}


def test_terminal_shows_counts_loss_budget_files_and_the_kernel_log_hosts():
    lines = conntrack_fleet_report({"edge-run": with_loss(running()), "edge-budget": budget(), "demo": kernel_log()},
                                   "table", version="0.3.0")
    assert all(len(line) <= fr.TABLE_WIDTH and re.fullmatch(r"[ -~]*", line) for line in lines)
    start = lines.index("Evidence: netlink capture (exact log events; loss: ENOBUFS overruns, sequence gaps):")
    header, run, ended = lines[start + 1:start + 4]
    assert header.split() == ["HOST", "NETNS", "EVENTS", "LOST", "ENOBUFS", "GAPS", "TOP", "REASON"]
    assert run.split()[:6] == ["edge-run", LABEL, "2000", "120", "3", "120"] and run.endswith("2000 " + REASON)
    assert ended.split()[:6] == ["edge-budget", LABEL, "1501", "none", "0", "0"]
    text = "\n".join(lines)
    assert "edge-budget: the window ended early, budget max_packets exceeded (1501, limit 1500)" in text
    assert "pcapng on the hosts: edge-run netns-rpt-rcv: /run/netfilter-conntrack-capture/netns-rpt-rcv.pcapng" in text
    assert "kernel log instead (lines, lost when its ring buffer wraps): localhost init," in text
    assert "Fleet: 3 host(s), 441 invalid line(s), 3501 captured event(s)" in text


def test_terminal_says_the_kernel_log_when_nothing_was_captured():
    lines = conntrack_fleet_report([kernel_log()], "table", version="0.3.0")
    assert "Evidence: the kernel log on every host (lines, lost when its ring buffer wraps; no netlink capture)" in lines
    assert not any("captured event" in line for line in lines)


def test_attention_names_the_budget_the_loss_and_a_dead_collector():
    dead = with_loss(running())
    dead["capture"]["collector"] = "dead"
    model = fr.build_model({"edge-run": dead, "edge-budget": budget()})
    why = {host["host"]: host["attention"] for host in model["attention"]}
    assert "capture lost 120 event(s)" in why["edge-run"] and "capture collector dead" in why["edge-run"]
    assert "window ended by budget max_packets" in why["edge-budget"]
    # Right after the verdicts, so that the terminal's cut never hides them.
    assert why["edge-budget"].index("window ended by budget max_packets") <= 1
    lines = fr.render_table(model)
    assert any(line.startswith("  edge-run: collector dead") for line in lines)


def test_markdown_evidence_table():
    markdown = conntrack_fleet_report([running(), budget(), kernel_log()], "markdown", version="0.3.0")
    section = markdown[markdown.index("## Evidence"):markdown.index("## Invalid reasons")]
    assert fc.EVENTS_MEANING.split(";", maxsplit=1)[0] in section and "Kernel log: the lines the kernel wrote" in section
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    assert rows[0] == "| " + " | ".join(fc.EVIDENCE_HEADERS) + " |"
    assert ("| edge-run | netns-rpt-rcv | netlink | 2000 | 2000 invalid tcp flag combination | none | 0 | 0 | 0"
            " | /run/netfilter-conntrack-capture/netns-rpt-rcv.pcapng |") in rows
    assert any(row.startswith("| localhost | init | kernel log | - |") for row in rows)
    assert "- **Ended by a budget:** edge-budget: the window ended early, budget max\\_packets exceeded" in section
    assert "captures/HOST/NETNS.pcapng" in section


def test_html_evidence_table():
    page = conntrack_fleet_report([with_loss(running()), budget(), kernel_log()], "html", version="0.3.0")
    document = parse_html(page)
    table = document.find(".//table[@id='evidence']")
    cells = [["".join(td.itertext()) for td in tr.findall("td")] for tr in table.find("tbody").findall("tr")]
    assert cells[0][:4] == ["edge-run", LABEL, "netlink", "2000"]
    assert cells[0][5:9] == ["120 event(s) lost in 3 socket overrun(s)", "3", "120", "120"]
    assert [row[2] for row in cells[2:]] == ["kernel log", "kernel log"]
    budgets = ["".join(li.itertext()) for li in document.find(".//ul[@id='budgets']").findall("li")]
    assert budgets == ["Ended by a budget: edge-budget: the window ended early, budget max_packets exceeded (1501,"
                       " limit 1500) at 2026-12-07T05:24:19.049Z; everything was reverted then"]


def test_no_evidence_section_claims_a_capture_for_a_kernel_log_fleet():
    page = conntrack_fleet_report([kernel_log()], "html", version="0.3.0")
    document = parse_html(page)
    assert document.find(".//p[@id='events-meaning']") is None
    assert document.find(".//p[@id='kernel-log-meaning']") is not None
    markdown = conntrack_fleet_report([kernel_log()], "markdown", version="0.3.0")
    assert "Netlink capture:" not in markdown and "pcapng" not in markdown


def test_a_taken_group_and_its_error_are_shown():
    report = running()
    one = report["capture"]["namespaces"][LABEL]
    one.update(status="group_taken", error="another listener holds group 0", events=0, by_reason={})
    row = fr.build_model([report])["hosts"][0]["evidence"][0]
    assert row["status"] == "group_taken" and row["why"] == "another listener holds group 0"
    markdown = conntrack_fleet_report([report], "markdown", version="0.3.0")
    assert "| netlink (group\\_taken): another listener holds group 0 |" in markdown
    lines = conntrack_fleet_report([report], "table", version="0.3.0")
    assert any(line.rstrip().endswith("[group_taken]") for line in lines)


@pytest.mark.parametrize("kind", ["html", "markdown", "table"])
def test_hostile_captured_reasons_are_escaped(kind):
    report = running()
    report["capture"]["namespaces"][LABEL]["by_reason"] = {HOSTILE: 7}
    report["capture"]["namespaces"][LABEL]["pcapng"] = "/run/x|</td><b>y.pcapng"
    out = conntrack_fleet_report([report], kind, version="0.3.0")
    if kind == "html":
        document = parse_html(out)
        assert len(document.findall(".//script")) == 1 and document.findall(".//b") == []
        assert HOSTILE in "".join(document.find(".//table[@id='evidence']").itertext())
    elif kind == "markdown":
        assert "<script>" not in out and "</td>" not in out and "<b>" not in out
        table = re.search(r"(?m)(?:^\| Host \| Netns \| Evidence path.*\n)(?:^\|.*\n)+", out).group(0)
        assert len({len(re.findall(r"(?<!\\)\|", line)) for line in table.splitlines()}) == 1, table
    else:
        assert all(re.fullmatch(r"[ -~]*", line) and '"' not in line for line in out)


def test_fleet_summary_and_stats_carry_the_evidence():
    model = fr.build_model({"edge-run": running(), "edge-budget": budget(), "demo": kernel_log()})
    summary = fr.render_summary(model)
    assert summary["evidence"]["edge-run"] == {LABEL: {
        "path": "netlink", "events": 2000, "loss": "none", "events_lost": 0,
        "pcapng": "/run/netfilter-conntrack-capture/netns-rpt-rcv.pcapng"}}
    assert summary["evidence"]["localhost"]["init"]["path"] == "kernel_log"
    assert list(summary["windows_ended_by_budget"]) == ["edge-budget"]
    stats = fr.render_stats(model)
    assert stats["captured_events"] == 3501 and stats["windows_ended_by_budget"]["edge-budget"]["limit"] == 1500
    json.dumps(summary)
    json.dumps(stats)


def test_a_mapping_of_reports_names_hosts_by_key():
    report = running()
    del report["host"]
    model = fr.build_model({"edge-7": report, "broken": "not a report"})
    assert [host["host"] for host in model["hosts"]] == ["edge-7"] and model["unreadable"] == ["broken"]
    assert model["hosts"][0]["evidence"][0]["events"] == 2000
