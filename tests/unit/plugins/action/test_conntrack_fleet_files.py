# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet files action: the filter's texts, written in the action's own process, on the controller only."""

from __future__ import annotations

import json
import os
import stat
from unittest.mock import MagicMock

import pytest

from ansible.errors import AnsibleActionFail

from ansible_collections.netfilter.conntrack.plugins.action.conntrack_fleet_files import ActionModule
from ansible_collections.netfilter.conntrack.plugins.filter.conntrack_fleet_report import conntrack_fleet_report

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "plugin_utils", "fixtures", "fleet_report",
                       "report-demo-6.18.44.json")


@pytest.fixture(name="reports")
def fixture_reports():
    with open(FIXTURE, encoding="utf-8") as handle:
        return [json.load(handle)]


def run_action(check_mode=False, **task_args):
    task = MagicMock()
    task.args = task_args
    task.check_mode = check_mode
    task.async_val = 0
    task.action = "netfilter.conntrack.conntrack_fleet_files"
    connection = MagicMock()
    action = ActionModule(task=task, connection=connection, play_context=MagicMock(), loader=None, templar=None,
                          shared_loader_obj=None)
    action._execute_module = MagicMock(side_effect=AssertionError("the fleet files run no module"))
    action._low_level_execute_command = MagicMock(side_effect=AssertionError("the fleet files contact no host"))
    return action.run(task_vars={})


def test_writes_the_three_files_with_the_filters_texts(reports, tmp_path):
    dest = tmp_path / "reports"
    result = run_action(reports=reports, failed=["db-1"], dest=str(dest), redact_addresses=True)
    assert result["changed"] is True
    written = {name: one["written"] for name, one in result["files"].items()}
    assert written == {"json": True, "markdown": True, "html": True}
    summary = json.loads((dest / "fleet-summary.json").read_text(encoding="utf-8"))
    assert summary == json.loads(json.dumps(conntrack_fleet_report(reports, "summary", failed=["db-1"])))
    assert (dest / "fleet-summary.md").read_text(encoding="utf-8") == conntrack_fleet_report(
        reports, "markdown", failed=["db-1"], redact_addresses=True)
    assert (dest / "fleet-report.html").read_text(encoding="utf-8") == conntrack_fleet_report(
        reports, "html", failed=["db-1"], redact_addresses=True)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o750
    assert stat.S_IMODE((dest / "fleet-report.html").stat().st_mode) == 0o640
    again = run_action(reports=reports, failed=["db-1"], dest=str(dest), redact_addresses=True)
    assert again["changed"] is False


def test_redaction_leaves_the_json_alone(reports, tmp_path):
    plain, redacted = tmp_path / "plain", tmp_path / "redacted"
    run_action(reports=reports, dest=str(plain))
    run_action(reports=reports, dest=str(redacted), redact_addresses=True)
    assert (plain / "fleet-summary.json").read_text() == (redacted / "fleet-summary.json").read_text()
    assert (plain / "fleet-summary.md").read_text() != (redacted / "fleet-summary.md").read_text()


def test_only_the_asked_formats_besides_the_json(reports, tmp_path):
    result = run_action(reports=reports, dest=str(tmp_path), formats=["html"])
    assert sorted(result["files"]) == ["html", "json"]
    assert sorted(os.listdir(tmp_path)) == ["fleet-report.html", "fleet-summary.json"]
    assert sorted(run_action(reports=reports, dest=str(tmp_path), formats=[])["files"]) == ["json"]
    assert sorted(run_action(reports=reports, dest=str(tmp_path), formats=["json"])["files"]) == ["json"]


def test_check_mode_says_what_would_be_written_and_writes_nothing(reports, tmp_path):
    dest = tmp_path / "reports"
    result = run_action(check_mode=True, reports=reports, dest=str(dest))
    assert result["changed"] is True and all(one["written"] for one in result["files"].values())
    assert not dest.exists()
    run_action(reports=reports, dest=str(dest))
    assert run_action(check_mode=True, reports=reports, dest=str(dest))["changed"] is False


@pytest.mark.parametrize("task_args, error", [
    ({"dest": "/tmp/x"}, "missing required arguments: reports"),
    ({"reports": [], "dest": "/tmp/x", "formats": ["pdf"]}, "value of formats must be one or more of"),
])
def test_refuses_what_the_documentation_refuses(task_args, error):
    with pytest.raises(AnsibleActionFail, match=error):
        run_action(**task_args)


@pytest.mark.parametrize("broken", ["{\"host\": \"web-2\", \"conntr", 42, None, ["not", "a", "mapping"]])
def test_an_unreadable_cached_report_is_named_and_the_rest_written(reports, tmp_path, broken):
    by_host = {"localhost": reports[0], "web-2": broken}
    result = run_action(reports=by_host, dest=str(tmp_path))
    assert result["changed"] is True
    summary = json.loads((tmp_path / "fleet-summary.json").read_text(encoding="utf-8"))
    assert summary["unreadable"] == ["web-2"]
    assert summary["hosts"] == ["localhost"]
    assert summary["version"] and summary["window"]["collected_last"] == "2026-12-02T05:02:05Z"
    assert "web-2" in (tmp_path / "fleet-summary.md").read_text(encoding="utf-8")
    assert 'id="unreadable"' in (tmp_path / "fleet-report.html").read_text(encoding="utf-8")


def test_a_users_templates(reports, tmp_path):
    (tmp_path / "page.html.j2").write_text("<h1>{{ title }}</h1>{% for ident, g in verdicts.items() %}{{ ident }}{% endfor %}"
                                           "{{ quiet[0].host }} {{ '<b>' }}\n", encoding="utf-8")
    (tmp_path / "summary.md.j2").write_text("# Ours\n{{ hosts | length }} {{ 'a|b' | md }}\n", encoding="utf-8")
    dest = tmp_path / "out"
    run_action(reports=reports, dest=str(dest), template_html=str(tmp_path / "page.html.j2"),
               template_markdown=str(tmp_path / "summary.md.j2"))
    assert (dest / "fleet-report.html").read_text(encoding="utf-8") == (
        "<h1>conntrack debug report: 1 host(s), 5 invalid line(s)</h1>localhost &lt;b&gt;\n")
    assert (dest / "fleet-summary.md").read_text(encoding="utf-8") == "# Ours\n1 a\\|b\n"


def test_a_broken_template_fails_with_its_name(reports, tmp_path):
    (tmp_path / "bad.html.j2").write_text("{{ no_such_variable }}", encoding="utf-8")
    with pytest.raises(AnsibleActionFail, match="bad.html.j2|no_such_variable"):
        run_action(reports=reports, dest=str(tmp_path / "out"), template_html=str(tmp_path / "bad.html.j2"))
