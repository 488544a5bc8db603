# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write the fleet report files on the controller (see plugins/modules/conntrack_fleet_files.py)."""

from __future__ import annotations

import json
import os
import typing as t

from ansible.errors import AnsibleActionFail, AnsibleFilterError
from ansible.plugins.action import ActionBase

from ansible_collections.netfilter.conntrack.plugins.filter.conntrack_fleet_report import conntrack_fleet_report
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._argspecs import FLEET_FILES_ARGUMENT_SPEC
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._controller_file import write_controller_file

FILE_NAMES = {"json": "fleet-summary.json", "markdown": "fleet-summary.md", "html": "fleet-report.html"}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=FLEET_FILES_ARGUMENT_SPEC)
        summary = conntrack_fleet_report(args["reports"], "summary", failed=args["failed"])
        texts = {"json": json.dumps(summary, indent=4, sort_keys=True) + "\n"}
        for name in sorted(set(args["formats"]) - {"json"}):
            try:
                texts[name] = conntrack_fleet_report(args["reports"], name, failed=args["failed"],
                                                     redact_addresses=args["redact_addresses"],
                                                     template=args[f"template_{name}"])
            except AnsibleFilterError as exc:  # a user's template: say which and why, write nothing
                raise AnsibleActionFail(exc.message) from exc
        dest = os.path.abspath(args["dest"])
        files = {}
        for name, text in texts.items():
            path = os.path.join(dest, FILE_NAMES[name])
            files[name] = {"path": path, "written": write_controller_file(path, text, check_mode=self._task.check_mode)}
        result.update(changed=any(one["written"] for one in files.values()), files=files)
        return result
