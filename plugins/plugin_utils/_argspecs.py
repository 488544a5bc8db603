# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Argument specs of the debug role's action plugins, in one place.

Note that this plugin util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins!

The documentation-only modules ``plugins/modules/conntrack_debug_window.py``, ``conntrack_debug_report.py`` and
``conntrack_fleet_files.py`` document these options; a unit test checks that they agree.
"""

from __future__ import annotations

from ansible_collections.netfilter.conntrack.plugins.module_utils._kernel_log import SOURCES
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._window_app import DEFAULT_PROGRAM_DIR

DEFAULT_FACTS_PATH = "/etc/ansible/facts.d/netfilter_conntrack.fact"

WINDOW_ARGUMENT_SPEC = {
    "state": {"type": "str", "choices": ["enabled", "reverted"], "default": "enabled"},
    "duration": {"type": "raw"},
    "protocol": {"type": "str", "default": "all"},
    "families": {"type": "list", "elements": "str", "default": ["ipv4", "ipv6"]},
    "backend": {"type": "str", "default": "auto"},
    "all_netns": {"type": "bool", "default": False},
    "dynamic_debug_sites": {"type": "list", "elements": "dict", "default": []},
    "netns": {"type": "list", "elements": "str", "default": []},
    "revert_scope": {"type": "str", "choices": ["selected", "all"], "default": "selected"},
    "program_dir": {"type": "path", "default": DEFAULT_PROGRAM_DIR},
}

REPORT_ARGUMENT_SPEC = {
    "netns": {"type": "list", "elements": "str", "default": []},
    "max_samples": {"type": "int", "default": 10},
    "local_facts": {"type": "bool", "default": True},
    "facts_path": {"type": "path", "default": DEFAULT_FACTS_PATH},
    "report_dir": {"type": "path"},
    "log_source": {"type": "str", "choices": list(SOURCES), "default": "auto"},
    "log_path": {"type": "path"},
    "program_dir": {"type": "path", "default": DEFAULT_PROGRAM_DIR},
}

FLEET_FILES_ARGUMENT_SPEC = {
    "reports": {"type": "list", "elements": "dict", "required": True},
    "failed": {"type": "list", "elements": "str", "default": []},
    "dest": {"type": "path", "required": True},
    "formats": {"type": "list", "elements": "str", "choices": ["json", "markdown", "html"],
                "default": ["json", "markdown", "html"]},
    "redact_addresses": {"type": "bool", "default": False},
}

__all__ = ("DEFAULT_FACTS_PATH", "FLEET_FILES_ARGUMENT_SPEC", "REPORT_ARGUMENT_SPEC", "WINDOW_ARGUMENT_SPEC")
