# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The actions' argument specs come from the documentation-only modules: what is documented is what is validated."""

from __future__ import annotations

import typing as t

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.netfilter.conntrack.plugins.module_utils._kernel_log import SOURCES
from ansible_collections.netfilter.conntrack.plugins.modules import conntrack_debug_report, conntrack_debug_window, conntrack_fleet_files
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._argspecs import (
    DEFAULT_FACTS_PATH,
    FLEET_FILES_ARGUMENT_SPEC,
    REPORT_ARGUMENT_SPEC,
    WINDOW_ARGUMENT_SPEC,
    argument_spec_from_documentation,
)
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._window_app import DEFAULT_PROGRAM_DIR

ACTIONS = [
    ("conntrack_debug_window", conntrack_debug_window, WINDOW_ARGUMENT_SPEC),
    ("conntrack_debug_report", conntrack_debug_report, REPORT_ARGUMENT_SPEC),
    ("conntrack_fleet_files", conntrack_fleet_files, FLEET_FILES_ARGUMENT_SPEC),
]
IDS = [one[0] for one in ACTIONS]
# A value of each documented type, for example arguments whose value is a template.
TYPED_VALUES = {"str": "x", "path": "/tmp/x", "int": 1, "bool": True, "raw": 1, "dict": {}, "list": []}
# A value each type refuses.
WRONG_VALUES = {"int": "many", "bool": "perhaps", "dict": "not a mapping", "list": {"a": 1}}


def examples_of(name: str, module: t.Any) -> list[dict[str, t.Any]]:
    """The arguments of every EXAMPLES task that calls this module."""
    tasks = yaml.safe_load(module.EXAMPLES)
    return [task[f"netfilter.conntrack.{name}"] or {} for task in tasks if f"netfilter.conntrack.{name}" in task]


def untemplated(args: dict[str, t.Any], spec: dict[str, dict[str, t.Any]]) -> dict[str, t.Any]:
    return {key: TYPED_VALUES[spec[key]["type"]] if isinstance(value, str) and "{{" in value else value
            for key, value in args.items()}


def test_derivation_keeps_what_a_spec_knows_and_nests_suboptions():
    documentation = """
options:
  mode:
    description: [The mode.]
    type: str
    choices: [a, b]
    default: a
    version_added: 1.0.0
  sites:
    description: [Sites.]
    type: list
    elements: dict
    suboptions:
      file:
        description: [A file.]
        type: str
        required: true
"""
    assert argument_spec_from_documentation(documentation) == {
        "mode": {"type": "str", "choices": ["a", "b"], "default": "a"},
        "sites": {"type": "list", "elements": "dict", "options": {"file": {"type": "str", "required": True}}},
    }


@pytest.mark.parametrize("name, module, spec", ACTIONS, ids=IDS)
def test_every_documented_option_is_validated(name, module, spec):
    documented = yaml.safe_load(module.DOCUMENTATION)["options"]
    assert sorted(spec) == sorted(documented)
    for option, entry in spec.items():
        assert entry["type"] in TYPED_VALUES, option
        if entry["type"] == "list":
            assert entry.get("elements"), option


@pytest.mark.parametrize("name, module, spec", ACTIONS, ids=IDS)
def test_doc_fragments_add_no_options(name, module, spec):
    """The derivation reads the module's own options: a fragment with options would go unvalidated."""
    fragments = yaml.safe_load(module.DOCUMENTATION).get("extends_documentation_fragment") or []
    assert all(fragment.startswith("netfilter.conntrack._attributes") for fragment in fragments)


@pytest.mark.parametrize("name, module, spec", ACTIONS, ids=IDS)
def test_the_documented_examples_validate(name, module, spec):
    examples = examples_of(name, module)
    assert examples
    for args in examples:
        result = ArgumentSpecValidator(spec).validate(untemplated(args, spec))
        assert not result.error_messages, (args, result.error_messages)


@pytest.mark.parametrize("name, module, spec", ACTIONS, ids=IDS)
def test_documented_defaults_pass_their_own_validation(name, module, spec):
    required = {key: TYPED_VALUES[entry["type"]] for key, entry in spec.items() if entry.get("required")}
    result = ArgumentSpecValidator(spec).validate(required)
    assert not result.error_messages
    for option, entry in spec.items():
        if "default" in entry:
            assert result.validated_parameters[option] == entry["default"], option


@pytest.mark.parametrize("name, module, spec", ACTIONS, ids=IDS)
def test_documented_types_and_choices_refuse(name, module, spec):
    required = {key: TYPED_VALUES[entry["type"]] for key, entry in spec.items() if entry.get("required")}
    for option, entry in spec.items():
        wrong = WRONG_VALUES.get(entry["type"])
        if "choices" in entry:
            wrong = ["no-such-choice"] if entry["type"] == "list" else "no-such-choice"
        if wrong is None:
            continue
        result = ArgumentSpecValidator(spec).validate(dict(required, **{option: wrong}))
        assert result.error_messages, option
    unknown = ArgumentSpecValidator(spec).validate(dict(required, no_such_option=1))
    assert unknown.error_messages


def test_documented_defaults_are_the_code_s():
    assert WINDOW_ARGUMENT_SPEC["program_dir"]["default"] == DEFAULT_PROGRAM_DIR
    assert REPORT_ARGUMENT_SPEC["program_dir"]["default"] == DEFAULT_PROGRAM_DIR
    assert REPORT_ARGUMENT_SPEC["log_source"]["choices"] == list(SOURCES)
    assert DEFAULT_FACTS_PATH == REPORT_ARGUMENT_SPEC["facts_path"]["default"]
