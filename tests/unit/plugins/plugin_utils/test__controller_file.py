# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.netfilter.conntrack.plugins.plugin_utils._controller_file import (
    NAME_MAX,
    report_path,
    safe_file_name,
    write_controller_file,
)


def test_write_controller_file(tmp_path):
    path = str(tmp_path / "reports" / "h1.json")
    assert write_controller_file(path, "{}\n", check_mode=True) is True
    assert not os.path.exists(os.path.dirname(path)), "check mode creates nothing"
    assert write_controller_file(path, "{}\n") is True
    assert write_controller_file(path, "{}\n") is False
    assert write_controller_file(path, "{}\n", check_mode=True) is False
    assert write_controller_file(path, '{"a": 1}\n') is True
    with open(path, encoding="utf-8") as handle:
        assert handle.read() == '{"a": 1}\n'
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o750
    assert os.listdir(os.path.dirname(path)) == ["h1.json"], "no temporary file left"


def test_a_symlink_at_the_destination_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "root-only"
    victim.write_text("secret\n")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "fleet-summary.md").symlink_to(victim)
    assert write_controller_file(str(reports / "fleet-summary.md"), "report\n") is True
    assert victim.read_text() == "secret\n"
    assert not (reports / "fleet-summary.md").is_symlink()
    assert (reports / "fleet-summary.md").read_text() == "report\n"


def test_a_symlink_with_the_same_text_behind_it_is_still_replaced(tmp_path):
    victim = tmp_path / "elsewhere"
    victim.write_text("report\n")
    (tmp_path / "h1.json").symlink_to(victim)
    assert write_controller_file(str(tmp_path / "h1.json"), "report\n") is True
    assert not (tmp_path / "h1.json").is_symlink()


def test_a_fifo_at_the_destination_is_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "h1.json")
    assert write_controller_file(str(tmp_path / "h1.json"), "report\n") is True
    assert (tmp_path / "h1.json").read_text() == "report\n"


NAMES = [
    ("web1", "web1.json"),
    ("web1.example.com", "web1.example.com.json"),
    ("../../x", "%2E.%2F..%2Fx.json"),
    ("/abs/x", "%2Fabs%2Fx.json"),
    (".", "%2E.json"),
    ("..", "%2E..json"),
    (".hidden", "%2Ehidden.json"),
    ("a%2Fb", "a%252Fb.json"),
    ("a\\b", "a%5Cb.json"),
    ("nul\x00byte", "nul%00byte.json"),
    ("line\nbreak\t\x7f", "line%0Abreak%09%7F.json"),
    ("[::1]:22", "[::1]:22.json"),
    ("hôte", "hôte.json"),
]


@pytest.mark.parametrize("name, expected", NAMES, ids=[repr(one[0]) for one in NAMES])
def test_safe_file_name(name, expected):
    assert safe_file_name(name, ".json") == expected


def test_safe_file_names_are_distinct():
    names = [one[0] for one in NAMES] + ["%2E.", "%2F", "a/b", "a%2Fb"]
    assert len({safe_file_name(name) for name in names}) == len(set(names))


@pytest.mark.parametrize("name", ["", "x" * NAME_MAX])
def test_safe_file_name_refuses(name):
    with pytest.raises(ValueError):
        safe_file_name(name, ".json")


@pytest.mark.parametrize("name", [one[0] for one in NAMES], ids=[repr(one[0]) for one in NAMES])
def test_report_path_stays_in_the_directory(tmp_path, name):
    path = report_path(str(tmp_path / "reports"), name)
    assert os.path.dirname(path) == str(tmp_path / "reports")
    assert os.path.realpath(path).startswith(str(tmp_path / "reports") + os.sep)


def test_report_path_of_a_relative_directory_is_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert report_path("reports", "../../x") == str(tmp_path / "reports" / "%2E.%2F..%2Fx.json")
