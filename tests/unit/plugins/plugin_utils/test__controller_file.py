# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import stat

from ansible_collections.netfilter.conntrack.plugins.plugin_utils._controller_file import write_controller_file


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
