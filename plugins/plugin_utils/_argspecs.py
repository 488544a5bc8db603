# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Argument specs of the debug role's action plugins, read from their documentation.

Note that this plugin util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins!

The documentation-only modules ``plugins/modules/conntrack_debug_window.py``, ``conntrack_debug_report.py`` and
``conntrack_fleet_files.py`` are the one source of each action's options: their DOCUMENTATION is turned into the
argument spec the action validates with, as ansible.utils' ``validate`` action does with its own, so the
documentation and the validation cannot disagree. Rules a spec cannot express (``required_if``) stay in the action.
"""

from __future__ import annotations

import typing as t

import yaml

from ansible_collections.netfilter.conntrack.plugins.modules import (
    conntrack_debug_report,
    conntrack_debug_window,
    conntrack_fleet_files,
)

# The keys of a documented option that AnsibleModule's argument spec also knows; description, version_added and
# the other documentation-only keys are left out, and suboptions become options.
SPEC_KEYS = ("type", "elements", "default", "choices", "required", "aliases", "no_log", "apply_defaults")


def option_spec(option: dict[str, t.Any]) -> dict[str, t.Any]:
    """The argument spec entry of one documented option (its suboptions included)."""
    spec = {key: option[key] for key in SPEC_KEYS if key in option}
    if "suboptions" in option:
        spec["options"] = options_spec(option["suboptions"])
    return spec


def options_spec(options: dict[str, t.Any] | None) -> dict[str, dict[str, t.Any]]:
    return {name: option_spec(option or {}) for name, option in (options or {}).items()}


# Every task on every host imports this module in a worker process of its own: libyaml's loader reads the three
# DOCUMENTATION strings in about 2 ms of CPU, the pure-Python one in about 25.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def argument_spec_from_documentation(documentation: str) -> dict[str, dict[str, t.Any]]:
    """The argument spec of a module's DOCUMENTATION (YAML) string."""
    doc = yaml.load(documentation, Loader=SAFE_LOADER) or {}
    return options_spec(doc.get("options"))


WINDOW_ARGUMENT_SPEC = argument_spec_from_documentation(conntrack_debug_window.DOCUMENTATION)
REPORT_ARGUMENT_SPEC = argument_spec_from_documentation(conntrack_debug_report.DOCUMENTATION)
FLEET_FILES_ARGUMENT_SPEC = argument_spec_from_documentation(conntrack_fleet_files.DOCUMENTATION)
DEFAULT_FACTS_PATH = REPORT_ARGUMENT_SPEC["facts_path"]["default"]

__all__ = ("DEFAULT_FACTS_PATH", "FLEET_FILES_ARGUMENT_SPEC", "REPORT_ARGUMENT_SPEC", "SAFE_LOADER", "SPEC_KEYS",
           "WINDOW_ARGUMENT_SPEC", "argument_spec_from_documentation", "option_spec", "options_spec")
