# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The documentation-only modules document exactly the options their action plugins validate."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.netfilter.conntrack.plugins.modules import conntrack_debug_report, conntrack_debug_window, conntrack_fleet_files
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._argspecs import (
    FLEET_FILES_ARGUMENT_SPEC,
    REPORT_ARGUMENT_SPEC,
    WINDOW_ARGUMENT_SPEC,
)

PAIRS = [
    ("conntrack_debug_window", conntrack_debug_window, WINDOW_ARGUMENT_SPEC),
    ("conntrack_debug_report", conntrack_debug_report, REPORT_ARGUMENT_SPEC),
    ("conntrack_fleet_files", conntrack_fleet_files, FLEET_FILES_ARGUMENT_SPEC),
]
FIELDS = ("type", "elements", "default", "choices", "required")


def documented(module):
    return yaml.safe_load(module.DOCUMENTATION)["options"]


@pytest.mark.parametrize("module, spec", [p[1:] for p in PAIRS], ids=[p[0] for p in PAIRS])
def test_same_option_names(module, spec):
    assert sorted(documented(module)) == sorted(spec)


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("module, spec", [p[1:] for p in PAIRS], ids=[p[0] for p in PAIRS])
def test_same_option_fields(module, spec, field):
    docs = documented(module)
    for name, option in spec.items():
        doc = docs.get(name, {})
        if field == "required":
            assert bool(doc.get("required")) == bool(option.get("required")), name
        else:
            assert doc.get(field) == option.get(field), f"{name}: {field}"


@pytest.mark.parametrize("module", [p[1] for p in PAIRS], ids=[p[0] for p in PAIRS])
def test_every_option_has_a_type_and_a_description(module):
    for name, option in documented(module).items():
        assert option.get("type"), name
        assert option.get("description"), name
        if option["type"] == "list":
            assert option.get("elements"), name


@pytest.mark.parametrize("module, spec", [p[1:] for p in PAIRS], ids=[p[0] for p in PAIRS])
def test_documented_defaults_are_valid_choices(module, spec):
    for name, option in spec.items():
        if "choices" in option and "default" in option:
            defaults = option["default"] if option["type"] == "list" else [option["default"]]
            assert set(defaults) <= set(option["choices"]), name
