# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The debug role's argument validation, run inside the action of the entry point instead of as a task of its own.

Note that this plugin util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins!

Ansible validates a role's variables in a task it adds at the start of the role, one more task per host for each
entry point (about 0.3 s at 10 hosts, 1-2 s at 50, on the controller). The collection's playbooks include the role
with ``rolespec_validate: false``, and the role's window and report tasks ask their action to run the same check:
the entry point's options from ``roles/debug/meta/argument_specs.yml``, the variables taken from the task's vars
and checked by ansible-core's own ``validate_argument_spec`` action, so the rules and the messages (which name
the role variables) are those of the role's own validation.
"""

from __future__ import annotations

import copy
import os
import typing as t

import yaml
from ansible.errors import AnsibleActionFail

from ansible_collections.netfilter.conntrack.plugins.plugin_utils._argspecs import SAFE_LOADER
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._builtin_actions import run_builtin_action

ROLE_NAME = "netfilter.conntrack.debug"
ROLE_ARGUMENT_SPECS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "roles", "debug",
                                   "meta", "argument_specs.yml")
# The window action's state names the entry point that runs it; the report action serves collect only.
WINDOW_ENTRY_POINTS = {"enabled": "enable", "reverted": "revert", "absent": "cleanup"}
REPORT_ENTRY_POINT = "collect"


def _read_entry_points() -> dict[str, t.Any]:
    with open(ROLE_ARGUMENT_SPECS, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=SAFE_LOADER)["argument_specs"]


# Read when the controller's main process imports the actions, before it forks a worker per host: read in each
# worker instead, the spec cost every host about 10 ms of CPU per entry point.
ENTRY_POINTS = _read_entry_points()


def entry_point_options(entry_point: str) -> dict[str, t.Any]:
    """The options of one entry point of the role's argument spec (a copy: the validator may fill in defaults)."""
    return copy.deepcopy(ENTRY_POINTS[entry_point].get("options") or {})


def validate_role_variables(action: t.Any, task_vars: dict[str, t.Any], entry_point: str) -> None:
    """Fail as the role's own validation task would, when the variables of ``entry_point`` do not pass."""
    result = run_builtin_action(action, "ansible.builtin.validate_argument_spec", {
        "argument_spec": entry_point_options(entry_point),
        "validate_args_context": {"type": "role", "name": ROLE_NAME, "argument_spec_name": entry_point,
                                  "checked_by": action._task.action}}, task_vars)
    if result.get("failed"):
        raise AnsibleActionFail(f"{ROLE_NAME}, entry point {entry_point}: {result.get('msg')}",
                                result={"argument_errors": result.get("argument_errors"),
                                        "validate_args_context": result.get("validate_args_context")})
