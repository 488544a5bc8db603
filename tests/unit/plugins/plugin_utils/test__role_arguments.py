# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _role_arguments as role_arguments


@pytest.mark.parametrize("entry_point, one_variable", [
    ("enable", "conntrack_debug_install_tools"),
    ("revert", "conntrack_debug_revert_scope"),
    ("cleanup", "conntrack_debug_program_dir"),
    ("collect", "conntrack_debug_fetch_captures"),
])
def test_each_entry_point_an_action_validates_is_in_the_role_spec(entry_point, one_variable):
    """The actions name entry points of roles/debug/meta/argument_specs.yml; a renamed one must fail here."""
    assert entry_point in set(role_arguments.WINDOW_ENTRY_POINTS.values()) | {role_arguments.REPORT_ENTRY_POINT}
    options = role_arguments.entry_point_options(entry_point)
    assert one_variable in options and all(name.startswith("conntrack_debug_") for name in options)


def test_entry_point_options_are_a_copy():
    role_arguments.entry_point_options("enable")["conntrack_debug_duration"]["default"] = -1
    assert role_arguments.entry_point_options("enable")["conntrack_debug_duration"].get("default") != -1
